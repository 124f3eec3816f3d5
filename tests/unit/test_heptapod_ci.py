"""hgautomation.windows.heptapod_ci: the Windows wheel jobs of Mercurial's CI file, read
by our own small YAML reader (PyYAML, present in the test venv through moto, is its
oracle)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from hgautomation.windows import heptapod_ci
from hgautomation.windows.heptapod_ci import CIError

from .helpers import CI_WINDOWS_WHEELS

SDIST = Path(__file__).resolve().parents[2] / "build" / "cache" / "sdist" / \
    "mercurial-7.2.4.tar.gz"


def pyyaml(text: str):
    yaml = pytest.importorskip("yaml", reason="PyYAML (through moto) is the oracle")
    return yaml.load(text, Loader=yaml.BaseLoader)  # every scalar a string, as ours


def test_the_7_2_4_file_reads_as_pyyaml_reads_it():
    """The whole file, not only its wheel jobs: any entry of it may be needed one day."""
    if not SDIST.is_file():
        pytest.skip(f"no {SDIST.name} in build/cache/sdist (tests/run downloads it)")
    with tarfile.open(SDIST) as tar:
        text = tar.extractfile(f"mercurial-7.2.4/{heptapod_ci.CI_FILE}").read().decode()
    ours = heptapod_ci.load(text)
    assert ours == pyyaml(text)
    assert len(ours) > 50  # a broken split would compare two small things


SNIPPETS = [
    # a sequence at its key's indentation, mappings in items, nested items
    "rules:\n- if: $A == \"b\"\n  when: never\n- if: x\n  variables:\n    K: 'v'\n"
    "stage: build\n",
    "a:\n  - - x\n    - y\n  -\n    k: v\n  - \"q: r\"\n",
    # quoted keys and values, escapes, comments everywhere
    "'quoted key': \"t\\tab \\\"q\\\" \\u00e9\" # comment\n\"k2\": 'it''s'\n# alone\n",
    # plain scalars over several lines (folded), blank lines inside, then a key
    "script:\n  - C:/x/sh.exe\n    --login -c 'a\n      && b'\n\n    tail\n  - next\n"
    "after: 1\n",
    "k: first\n  second   # comment ends it\nother:\n",
    # empty values and empty flow collections
    "needs: []\nvars: {}\nempty:\nnull_item:\n  -\n  - x\n",
    # a key given twice: the last one counts
    "job:\n  variables:\n    A: 1\n  variables:\n    B: 2\n",
    "k: value with 'quotes' and \"more\" and $VARS and ${X}/y:z\n",
    # one-line flow sequences of scalars
    "tags: [windows]\nneeds: [ a , \"b, c\" , 'd]' ,]  # comment\nx: []\n",
]


@pytest.mark.parametrize("text", SNIPPETS)
def test_snippets_read_as_pyyaml_reads_them(text):
    assert heptapod_ci.load(text) == pyyaml(text)


@pytest.mark.parametrize("text,line,message", [
    ("a: 1\nb: &anchor\n  c: 2\n", 2, "an anchor"),
    ("a:\n  <<: *base\n", 2, "an alias"),
    ("a: !reference [.x, script]\n", 1, "a tag"),
    ("a:\n  script: |\n    echo\n", 2, "a block scalar"),
    ("a: [x, [y]]\n", 1, "a flow collection"),
    ("a: {b: c}\n", 1, "a flow collection"),
    ("a: [x, y] z\n", 1, "a flow collection"),
    ("a: \"open\n  close\"\n", 1, "a quoted scalar over several lines"),
    ("a:\n    b: 1\n  c: 2\n", 3, "unexpected indentation"),
    ("a:\n  b: 1\n    c: 2\n", 3, "':' followed by a space"),
    ("a:\n  b: x: y\n", 2, "':' followed by a space"),
    ("a: \"\\q\"\n", 1, "unknown escape"),
])
def test_what_is_not_supported_is_named_with_its_line(text, line, message):
    with pytest.raises(CIError, match=message) as raised:
        heptapod_ci.load(text)
    assert raised.value.line == line
    assert str(raised.value).startswith(f"contrib/heptapod-ci.yml line {line}: ")


def test_a_tab_in_the_indentation_is_refused():
    with pytest.raises(CIError, match="line 2: a tab in the indentation"):
        heptapod_ci.entries("a:\n\tb: 1\n")


# -- the wheel jobs -------------------------------------------------------------------------

def runs_of(job):
    return [dict(run) for run in job.runs]


def test_the_wheel_job_of_7_2_4_and_its_runs():
    (job,) = heptapod_ci.windows_wheel_jobs(CI_WINDOWS_WHEELS)  # not the macOS one
    assert job.name == "build-c-wheel-windows"
    runs = runs_of(job)
    assert len(runs) == 6 * 2 + 4
    assert runs[0] == {"CIBW_BUILD": "cp39-*", "CIBW_ARCHS": "AMD64"}
    assert {r["CIBW_BUILD"] for r in runs if r["CIBW_ARCHS"] == "ARM64"} == \
        {"cp311-*", "cp312-*", "cp313-*", "cp314-*"}


def test_a_file_without_windows_wheel_jobs_declares_none():
    text = CI_WINDOWS_WHEELS.replace('"cibuildwheel.exe --output-dir wheels/win32"',
                                     "echo none")
    assert heptapod_ci.windows_wheel_jobs(text) == []
    assert heptapod_ci.windows_wheel_jobs("") == []


def test_variables_cascade_global_template_job_matrix():
    text = ("variables:\n  CIBW_BUILD: cp39-*\n  CIBW_SKIP: '*-win32'\n"
            ".win:\n  tags:\n    - windows\n"
            "  variables:\n    CIBW_ARCHS: x86\n    CIBW_SKIP: pp*\n"
            "w:\n  extends: .win\n  script:\n    - cibuildwheel\n"
            "  variables:\n    CIBW_ARCHS: AMD64\n    CIBW_ENVIRONMENT_WINDOWS: A=1\n"
            "  parallel:\n    matrix:\n      - CIBW_BUILD: [cp312-*, cp313-*]\n")
    (job,) = heptapod_ci.windows_wheel_jobs(text)
    assert runs_of(job) == [
        {"CIBW_ARCHS": "AMD64", "CIBW_BUILD": "cp312-*", "CIBW_SKIP": "pp*"},
        {"CIBW_ARCHS": "AMD64", "CIBW_BUILD": "cp313-*", "CIBW_SKIP": "pp*"}]


def test_a_numbered_parallel_job_runs_one_selection():
    text = "windows-wheels:\n  script:\n    - cibuildwheel.exe\n  parallel: 3\n"
    (job,) = heptapod_ci.windows_wheel_jobs(text)
    assert job.runs == ((),)


def test_unreadable_entries_matter_only_where_wheels_may_be():
    unrelated = ".tests: &tests\n  script: [a]\n" + CI_WINDOWS_WHEELS
    (job,) = heptapod_ci.windows_wheel_jobs(unrelated)
    assert job.name == "build-c-wheel-windows"
    relevant = CI_WINDOWS_WHEELS.replace("    when: manual  #", "    when: &m manual  #")
    with pytest.raises(CIError, match=r"line 10: an anchor .* \(in '\.windows', which "
                                      r"'build-c-wheel-windows' extends\)"):
        heptapod_ci.windows_wheel_jobs(relevant)
    builds_on_it = ".t: &t\n  x: 1\n" + CI_WINDOWS_WHEELS.replace(
        "build-c-wheel-windows:\n", "build-c-wheel-windows:\n    y: *t\n")
    with pytest.raises(CIError, match="in 'build-c-wheel-windows'"):
        heptapod_ci.windows_wheel_jobs(builds_on_it)


@pytest.mark.parametrize("change,message", [
    (("    stage: build\n", "    stage: build\n    variables:\n      CIBW_ENABLE: pypy\n"),
     "sets CIBW_ENABLE, which may change the wheels"),
    (('- "ARM64"', "- $ARCH"), r"CIBW_ARCHS is not a plain string \('\$ARCH'\)"),
    (("--output-dir wheels/win32", "--only cp312-win32"), "runs 'cibuildwheel.exe --only"),
    (("variables:\n    PYTHON: python\n", "include: other.yml\n"),
     "includes other files"),
    (("    stage: build\n", "    stage: build\n    rules:\n      - variables:\n"
      "          CIBW_BUILD: cp39-*\n"), "sets CIBW_ variables in its rules"),
    (("    extends: .windows\n", "    extends: .nowhere\n"), "extends '.nowhere', which "
     "is not defined"),
    (("    parallel:\n", "    parallel:\n      count: 2\n    unused:\n"),
     "parallel is neither a number nor a matrix"),
    (("build-c-wheel-macos:\n    extends: .all\n    tags:\n      - $WHEEL_MACOS_TAG",
      "build-c-wheel-other:\n    extends: .all\n    tags:\n      - $RUNNER"),
     "job 'build-c-wheel-other' runs "
     "cibuildwheel for a platform its name, extends, tags and command do not tell"),
    (("    extends: .windows\n", "    extends:\n      - a: b\n"),
     "extends of 'build-c-wheel-windows' is not a name or a list of names"),
    ((".all:\n  when: on_success", ".all:\n  extends: .windows\n  when: on_success"),
     "extends of '.windows' loops"),
])
def test_what_a_wheel_job_does_not_say_plainly_is_refused(change, message):
    text = CI_WINDOWS_WHEELS.replace(*change)
    assert text != CI_WINDOWS_WHEELS
    with pytest.raises(CIError, match=message):
        heptapod_ci.windows_wheel_jobs(text)
