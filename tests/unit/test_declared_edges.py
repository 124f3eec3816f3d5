"""windows.declared at its edges: a top-level ``archs``, an empty ``build``, CIBW_SKIP, the
order of the cells, messages naming the offending option, reading a revision whose files
are missing or not UTF-8. Breaking it looks like: another set or order of wheels, or an
error that names the wrong thing."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from hgautomation import errors
from hgautomation.windows import declared

from .helpers import CI_WINDOWS_WHEELS, PYPROJECT_CIBUILDWHEEL, install_script

NODE = "0123456789abcdef" * 2 + "01234567"


def _parse(table: str, **kwargs):
    return declared.parse(install_script(**kwargs), "[tool.cibuildwheel]\n" + table + "\n")


def test_a_top_level_archs_applies_to_windows():
    builds = _parse('build = "cp312-*"\narchs = "x86"\n[tool.cibuildwheel.windows]')
    assert builds.wheels == (("3.12", "x86"),)
    builds = _parse('build = "cp312-*"\narchs = "x86"\n[tool.cibuildwheel.windows]\n'
                    'archs = "ARM64"')
    assert builds.wheels == (("3.12", "arm64"),)


def test_an_empty_build_selects_everything():
    assert _parse('build = ""\n[tool.cibuildwheel.windows]') == \
        _parse('build = "*"\n[tool.cibuildwheel.windows]')


def test_cells_in_python_then_arch_order():
    builds = _parse('build = "cp39-* cp310-*"\n[tool.cibuildwheel.windows]\narchs = "all"')
    assert builds.wheels == (("3.9", "x86"), ("3.9", "x64"), ("3.9", "arm64"),
                             ("3.10", "x86"), ("3.10", "x64"), ("3.10", "arm64"))


def test_ci_skip_replaces_pyprojects_skip():
    cibw = {"build": "cp312-* cp313-*", "skip": "cp312-*", "windows": {"archs": "AMD64"}}
    assert declared.select(cibw) == (("3.13", "x64"),)
    assert declared.select(cibw, {"CIBW_SKIP": "cp313-*"}) == (("3.12", "x64"),)
    assert declared.select(cibw, {"CIBW_SKIP": ""}) == (("3.12", "x64"), ("3.13", "x64"))


@pytest.mark.parametrize("table, message", [
    ('skip = 3\n[tool.cibuildwheel.windows]',
     "[tool.cibuildwheel] skip is neither a string nor a list of strings"),
    ('archs = 3\n[tool.cibuildwheel.windows]',
     "[tool.cibuildwheel] archs is neither a string nor a list of strings"),
    ('build = "cp2*"\n[tool.cibuildwheel.windows]',
     "pyproject.toml [tool.cibuildwheel] selects no Windows wheel"),
])
def test_messages_name_the_option(table, message):
    with pytest.raises(ValueError) as raised:
        _parse(table)
    assert str(raised.value) == message


def test_ci_jobs_without_a_cibuildwheel_table():
    builds = declared.parse(install_script(), None, CI_WINDOWS_WHEELS)
    assert builds.declared_by == declared.CI_FILE and builds.wheels
    with pytest.raises(ValueError) as raised:
        declared.parse(install_script(), "[tool]\ncibuildwheel = 3\n", CI_WINDOWS_WHEELS)
    assert str(raised.value) == "[tool.cibuildwheel] is not a table"


def test_a_ci_run_without_variables_that_selects_nothing():
    ci = ("build-wheel-windows:\n  tags:\n    - windows\n"
          "  script:\n    - cibuildwheel --platform windows\n")
    pyproject = '[tool.cibuildwheel]\nbuild = "cp2*"\n[tool.cibuildwheel.windows]\n'
    with pytest.raises(ValueError) as raised:
        declared.parse(install_script(), pyproject, ci)
    assert str(raised.value).endswith("job 'build-wheel-windows' (no CIBW_ variable) selects "
                                      "no Windows wheel")


def test_only_x86_interpreters_are_refused():
    script = install_script().replace("-x64.exe", "-x86.exe").replace("-x64 ", "-x86 ")
    assert all(arch == "x86" for _, arch in declared.interpreters(script))
    with pytest.raises(ValueError) as raised:
        declared.parse(script, None)
    assert str(raised.value) == ("contrib/install-windows-dependencies.ps1 installs no x64 "
                                 "Python (Install-Python3 lines)")


def test_a_last_install_line_without_newline_counts():
    script = ('    Install-Python3 "Python 3.12 64-bit" a\\python312-x64.exe '
              '${prefix}\\python312-x64')
    assert declared.interpreters(script) == (("3.12", "x64"),)


def test_cibuildwheel_wheels_without_a_pin():
    builds = declared.parse(install_script(cibuildwheel=None), PYPROJECT_CIBUILDWHEEL)
    assert builds.wheel_builder == "cibuildwheel" and builds.cibuildwheel is None


class Repo:
    root = "/src/hg"

    def __init__(self, files):
        self.files = files
        self.checks = []

    def run(self, *args, check=True):
        assert args[:3] == ("cat", "-r", NODE)
        self.checks.append(check)
        data = self.files.get(args[3])
        if data is None:  # hg cat's own complaint, on a failure
            return SimpleNamespace(returncode=1, stdout=b"[tool\nabort: no such file\n")
        return SimpleNamespace(returncode=0, stdout=data)


def test_read_does_not_stop_at_a_missing_file_and_takes_no_complaint_for_text():
    repo = Repo({declared.INSTALL_SCRIPT: install_script().encode() + b"# \xff\n"})
    builds = declared.read(repo, NODE)
    assert builds.wheel_builder == "pip" and repo.checks == [False, False, False]


def test_read_replaces_bytes_that_are_not_utf8():
    repo = Repo({declared.INSTALL_SCRIPT: install_script().encode(),
                 declared.PYPROJECT: PYPROJECT_CIBUILDWHEEL.encode() + b"# \xff\n"})
    assert declared.read(repo, NODE).declared_by == declared.PYPROJECT


def test_read_messages():
    with pytest.raises(errors.LocalRepoError) as raised:
        declared.read(Repo({}), NODE)
    assert raised.value.message == (
        "revision 0123456789ab of /src/hg has no contrib/install-windows-dependencies.ps1; "
        "the Windows builds follow the checkout's own declaration")
    assert raised.value.hint == "use a revision of Mercurial that ships it (-r)"
    repo = Repo({declared.INSTALL_SCRIPT: b"nothing\n"})
    with pytest.raises(errors.LocalRepoError) as raised:
        declared.read(repo, NODE)
    assert raised.value.message == (
        "revision 0123456789ab of /src/hg: contrib/install-windows-dependencies.ps1 installs "
        "no x64 Python (Install-Python3 lines)")


def test_a_table_without_a_windows_part_builds_cibuildwheels_default_archs():
    assert declared.select({"build": "cp312-*"}) == (("3.12", "x86"), ("3.12", "x64"))
    assert declared.select({"build": "cp312-*", "archs": "ARM64"}) == (("3.12", "arm64"),)
