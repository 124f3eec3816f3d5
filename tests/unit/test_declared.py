"""hgautomation.windows.declared: a checkout's Windows builds, read from its own files."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from hgautomation import errors, platforms
from hgautomation.platforms import WindowsArtifact
from hgautomation.windows import declared

from .helpers import (
    CI_WINDOWS_WHEELS,
    PYPROJECT_CIBUILDWHEEL,
    cibuildwheel_builds,
    install_script,
    pip_builds,
    release_builds,
)

PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13", "3.14")
SDIST = Path(__file__).resolve().parents[2] / "build" / "cache" / "sdist" / \
    "mercurial-7.2.4.tar.gz"
# The Windows wheels of Mercurial 7.2.4 as released (PyPI, mercurial 7.2.4 file list,
# recorded 2026-12-07): no win_arm64 wheel for cp39 or cp310.
PYPI_7_2_4_WINDOWS_WHEELS = sorted(
    [f"mercurial-7.2.4-{t}-{t}-{plat}.whl"
     for t in ("cp39", "cp310", "cp311", "cp312", "cp313", "cp314")
     for plat in ("win32", "win_amd64")]
    + [f"mercurial-7.2.4-{t}-{t}-win_arm64.whl" for t in ("cp311", "cp312", "cp313", "cp314")])


def test_the_7_2_4_sdist_declares_the_wheels_pypi_has():
    """Read offline from the sdist: its CI's Windows wheel jobs name exactly the 16
    wheels of the real release (its pyproject.toml alone would name 18, with cp39 and
    cp310 for win_arm64, which Mercurial never shipped)."""
    if not SDIST.is_file():
        pytest.skip(f"no {SDIST.name} in build/cache/sdist (tests/run downloads it; "
                    "the CI run always has it)")
    with tarfile.open(SDIST) as tar:
        def text(path):
            return tar.extractfile(f"mercurial-7.2.4/{path}").read().decode()

        builds = declared.parse(text(declared.INSTALL_SCRIPT), text(declared.PYPROJECT),
                                text(declared.CI_FILE))
        pyproject_only = declared.parse(text(declared.INSTALL_SCRIPT),
                                        text(declared.PYPROJECT))
    assert len(PYPI_7_2_4_WINDOWS_WHEELS) == 16
    wheels = [c.filename("7.2.4") for c in builds.matrix() if c.kind == "wheel"]
    assert sorted(wheels) == PYPI_7_2_4_WINDOWS_WHEELS
    assert builds.declared_by == declared.CI_FILE and builds.wheel_builder == "cibuildwheel"
    assert len(pyproject_only.wheels) == 18  # what the fallback alone would have asked for
    assert [c.filename("7.2.4") for c in builds.matrix()[16:]] == [
        "Mercurial-7.2.4-x86.exe", "Mercurial-7.2.4-x64.exe",
        "mercurial-7.2.4-x86.msi", "mercurial-7.2.4-x64.msi"]


def test_the_ci_wheel_jobs_name_the_release_wheels():
    builds = release_builds()
    assert builds.declared_by == declared.CI_FILE
    assert builds.cibuildwheel == "cibuildwheel==3.3.0"
    assert builds.wheels == tuple(
        (py, arch) for py in PYTHONS for arch in ("x86", "x64", "arm64")
        if arch != "arm64" or py not in ("3.9", "3.10"))  # the matrix's order


def test_pyproject_is_the_fallback_where_the_ci_builds_no_windows_wheel():
    """A CI file without a Windows wheel job (older branches): pyproject decides."""
    ci = CI_WINDOWS_WHEELS.replace("cibuildwheel.exe --output-dir wheels/win32",
                                   "echo no wheels here")
    builds = declared.parse(install_script(), PYPROJECT_CIBUILDWHEEL, ci)
    assert builds == cibuildwheel_builds() and builds.declared_by == declared.PYPROJECT
    # Without either declaration: one pip wheel per interpreter.
    assert declared.parse(install_script(cibuildwheel=None), None, ci) == pip_builds()


def test_the_ci_runs_are_read_over_pyprojects_selectors():
    """CIBW_BUILD replaces pyproject's build, CIBW_ARCHS_WINDOWS wins over CIBW_ARCHS,
    pyproject's skip still applies (cibuildwheel 3.3's cascade)."""
    ci = ("build-wheel-windows:\n"
          "  tags:\n    - windows\n"
          "  script:\n    - cibuildwheel --platform windows\n"
          "  variables:\n    CIBW_ARCHS: x86\n    CIBW_ARCHS_WINDOWS: AMD64 ARM64\n"
          "  parallel:\n    matrix:\n      - CIBW_BUILD: cp312-* cp313-*\n")
    pyproject = PYPROJECT_CIBUILDWHEEL.replace('skip = "pp*"', 'skip = "cp313-win_arm64"')
    builds = declared.parse(install_script(), pyproject, ci)
    assert builds.wheels == (("3.12", "x64"), ("3.12", "arm64"), ("3.13", "x64"))


def test_a_ci_run_that_selects_nothing_is_named():
    ci = CI_WINDOWS_WHEELS.replace('"cp311-*"\n          - "cp312-*"', '"cp27-*"\n'
                                   '          - "cp312-*"')
    with pytest.raises(ValueError, match=r"contrib/heptapod-ci.yml line \d+: job "
                       r"'build-c-wheel-windows' \(CIBW_ARCHS=AMD64 CIBW_BUILD=cp27-\*\) "
                       "selects no Windows wheel"):
        declared.parse(install_script(), PYPROJECT_CIBUILDWHEEL, ci)
    ci = CI_WINDOWS_WHEELS.replace('- "ARM64"', '- "IA64"')
    with pytest.raises(ValueError, match="job 'build-c-wheel-windows': CIBW_ARCHS: "
                                         "unknown 'IA64'"):
        declared.parse(install_script(), PYPROJECT_CIBUILDWHEEL, ci)


def test_interpreters_are_read_from_the_install_lines():
    pairs = declared.interpreters(install_script(("3.9", "3.12")))
    assert pairs == (("3.9", "x86"), ("3.9", "x64"), ("3.12", "x86"), ("3.12", "x64"))
    # Downloads and other mentions of the paths are not installs.
    text = ('Secure-Download $URL ${prefix}\\assets\\python311-x64.exe $SHA\n'
            'Invoke-Process "$prefix\\python39-x64\\python.exe" "-m venv x"\n')
    assert declared.interpreters(text) == ()


def test_a_cibuildwheel_checkout_builds_what_its_selectors_select():
    builds = cibuildwheel_builds()
    assert builds.wheel_builder == "cibuildwheel"
    assert builds.cibuildwheel == "cibuildwheel==3.3.0"
    assert set(builds.wheels) == {(py, arch) for py in PYTHONS
                                  for arch in ("x86", "x64", "arm64")}
    assert len(builds.wheels) == 18


def test_an_older_checkout_builds_one_pip_wheel_per_interpreter():
    builds = pip_builds()
    assert builds.wheel_builder == "pip" and builds.cibuildwheel is None
    assert builds.wheels == builds.interpreters
    assert {arch for _, arch in builds.wheels} == {"x86", "x64"}
    # A pyproject.toml without a Windows cibuildwheel table is the same.
    same = declared.parse(install_script(cibuildwheel=None),
                          "[tool.cibuildwheel]\nbuild = 'cp3*'\n[tool.black]\n")
    assert same == builds


@pytest.mark.parametrize("table,expected", [
    ('build = "cp312-* cp313-*"\n[tool.cibuildwheel.windows]\narchs = "auto"',
     {("3.12", "x86"), ("3.12", "x64"), ("3.13", "x86"), ("3.13", "x64")}),
    ('build = "cp3{11,12}-*"\nskip = ["*-win32"]\n[tool.cibuildwheel.windows]\n'
     'archs = ["all"]',
     {("3.11", "x64"), ("3.11", "arm64"), ("3.12", "x64"), ("3.12", "arm64")}),
    ('build = "*"\nskip = "cp38-* pp*"\n[tool.cibuildwheel.windows]\n'
     'archs = "ARM64"', {(py, "arm64") for py in PYTHONS + ("3.14t",)}),
    # cibuildwheel 3.3 also builds 3.14 free-threaded (cp314t) unless told not to.
    ('[tool.cibuildwheel.windows]\narchs = "auto64"',
     {(py, "x64") for py in ("3.8",) + PYTHONS + ("3.14t",)}),
    ('build = "cp38-*"\n[tool.cibuildwheel.windows]\narchs = "all"',
     {("3.8", "x86"), ("3.8", "x64")}),
])
def test_selectors(table, expected):
    builds = declared.parse(install_script(), "[tool.cibuildwheel]\n" + table + "\n")
    assert set(builds.wheels) == expected


@pytest.mark.parametrize("table,expected", [
    # Top-level archs apply to Windows when its own table does not say.
    ('build = "cp312-*"\narchs = "ARM64"\n[tool.cibuildwheel.windows]',
     {("3.12", "arm64")}),
    ('build = "cp312-*"\narchs = ["x86", "ARM64"]\n[tool.cibuildwheel.windows]\n'
     'build-verbosity = 1', {("3.12", "x86"), ("3.12", "arm64")}),
    # The Windows table's own archs win over the top-level ones.
    ('build = "cp312-*"\narchs = "ARM64"\n[tool.cibuildwheel.windows]\narchs = "x86"',
     {("3.12", "x86")}),
    # Neither: cibuildwheel's "auto" (x64 and x86 on an x64 machine).
    ('build = "cp312-*"\n[tool.cibuildwheel.windows]', {("3.12", "x86"), ("3.12", "x64")}),
])
def test_top_level_archs(table, expected):
    """A top-level ``[tool.cibuildwheel] archs`` is cibuildwheel's for every platform,
    Windows included. Breaking it looks like reading only the Windows table's archs
    (``windows.get("archs", "auto")``): the wheels of "auto" built instead of those
    declared, or the top-level value winning over the Windows one."""
    builds = declared.parse(install_script(), "[tool.cibuildwheel]\n" + table + "\n")
    assert set(builds.wheels) == expected


@pytest.mark.parametrize("pyproject,message", [
    ("[tool.cibuildwheel]\nbuild = 'cp2*'\n[tool.cibuildwheel.windows]\n",
     "selects no Windows wheel"),
    ("[tool.cibuildwheel.windows]\narchs = ['IA64']\n",
     "[tool.cibuildwheel.windows] archs: unknown 'IA64'"),
    ("[tool.cibuildwheel]\narchs = 'IA64'\n[tool.cibuildwheel.windows]\n",
     "[tool.cibuildwheel] archs: unknown 'IA64'"),
    ("[tool.cibuildwheel]\nbuild = 3\n[tool.cibuildwheel.windows]\n",
     "build is neither a string nor a list"),
    ("[tool.cibuildwheel\n", "pyproject.toml: "),
])
def test_bad_declarations_are_named(pyproject, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        declared.parse(install_script(), pyproject)


def test_an_installer_without_x64_pythons_is_refused():
    with pytest.raises(ValueError, match="installs no x64 Python"):
        declared.parse("Write-Output nothing\n", None)


def test_the_installer_python_is_the_default_or_the_newest_x64():
    assert cibuildwheel_builds().installer_python == platforms.INSTALLER_PYTHON
    older = declared.parse(install_script(("3.9", "3.10", "3.11")), None)
    assert older.installer_python == "3.11"


def test_matrix_is_wheels_then_both_installers_per_arch():
    matrix = cibuildwheel_builds().matrix()
    assert len(matrix) == 18 + 4 and len(set(matrix)) == len(matrix)
    kinds = [c.kind for c in matrix]
    assert kinds == sorted(kinds, key=lambda k: k != "wheel")
    assert matrix[18:] == [WindowsArtifact(k, "3.12", a)
                           for k in ("inno", "wix") for a in ("x86", "x64")]
    names = [c.filename("7.2.4") for c in matrix]
    assert "mercurial-7.2.4-cp39-cp39-win_arm64.whl" in names
    assert len(set(names)) == len(names)


def test_describe():
    assert release_builds().describe() == \
        "16 wheels (cibuildwheel; x86, x64, arm64) in contrib/heptapod-ci.yml, " \
        "installers with Python 3.12 x64"
    assert cibuildwheel_builds().describe() == \
        "18 wheels (cibuildwheel; x86, x64, arm64) in pyproject.toml, " \
        "installers with Python 3.12 x64"
    assert pip_builds().describe() == \
        "12 wheels (pip wheel; x86, x64) in contrib/install-windows-dependencies.ps1, " \
        "installers with Python 3.12 x64"


class FakeRepo:
    root = "/src/hg"

    def __init__(self, files):
        self.files = files
        self.read: list[str] = []

    def run(self, *args, check=True):
        from types import SimpleNamespace

        assert args[:3] == ("cat", "-r", "f" * 40)
        self.read.append(args[3])
        data = self.files.get(args[3])
        return SimpleNamespace(returncode=0 if data is not None else 1,
                               stdout=(data or "").encode())


def test_read_from_a_revision():
    repo = FakeRepo({declared.INSTALL_SCRIPT: install_script(),
                     declared.PYPROJECT: PYPROJECT_CIBUILDWHEEL,
                     declared.CI_FILE: CI_WINDOWS_WHEELS})
    assert declared.read(repo, "f" * 40) == release_builds()
    repo = FakeRepo({declared.INSTALL_SCRIPT: install_script(),
                     declared.PYPROJECT: PYPROJECT_CIBUILDWHEEL})
    assert declared.read(repo, "f" * 40) == cibuildwheel_builds()
    repo = FakeRepo({declared.INSTALL_SCRIPT: install_script(cibuildwheel=None)})
    assert declared.read(repo, "f" * 40) == pip_builds()


def test_an_install_script_already_read_is_not_read_again():
    repo = FakeRepo({declared.PYPROJECT: PYPROJECT_CIBUILDWHEEL})
    script = install_script().encode()
    assert declared.read(repo, "f" * 40, script) == cibuildwheel_builds()
    assert repo.read == [declared.PYPROJECT, declared.CI_FILE]


def test_read_names_what_is_wrong():
    with pytest.raises(errors.LocalRepoError, match="has no contrib/install-windows"):
        declared.read(FakeRepo({}), "f" * 40)
    repo = FakeRepo({declared.INSTALL_SCRIPT: install_script(),
                     declared.PYPROJECT: "[tool.cibuildwheel.windows]\narchs = 'MIPS'\n"})
    with pytest.raises(errors.LocalRepoError, match="ffffffffffff of /src/hg: "
                                                    r"\[tool.cibuildwheel.windows\]"):
        declared.read(repo, "f" * 40)
    repo = FakeRepo({declared.INSTALL_SCRIPT: install_script(),
                     declared.PYPROJECT: PYPROJECT_CIBUILDWHEEL,
                     declared.CI_FILE: CI_WINDOWS_WHEELS.replace("--output-dir",
                                                                 "--archs ARM64 --output-dir")})
    with pytest.raises(errors.LocalRepoError, match=r"ffffffffffff of /src/hg: contrib/"
                       r"heptapod-ci\.yml line 16: job 'build-c-wheel-windows' runs "):
        declared.read(repo, "f" * 40)
