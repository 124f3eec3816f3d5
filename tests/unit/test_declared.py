"""hgautomation.windows.declared: a checkout's Windows builds, read from its own files."""

from __future__ import annotations

import pytest

from hgautomation import errors, platforms
from hgautomation.platforms import WindowsArtifact
from hgautomation.windows import declared

from .helpers import PYPROJECT_CIBUILDWHEEL, cibuildwheel_builds, install_script, pip_builds

PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13", "3.14")


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


@pytest.mark.parametrize("pyproject,message", [
    ("[tool.cibuildwheel]\nbuild = 'cp2*'\n[tool.cibuildwheel.windows]\n",
     "selects no Windows wheel"),
    ("[tool.cibuildwheel.windows]\narchs = ['IA64']\n", "unknown 'IA64'"),
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
    assert cibuildwheel_builds().describe() == \
        "18 wheels (cibuildwheel; x86, x64, arm64), installers with Python 3.12 x64"
    assert pip_builds().describe() == \
        "12 wheels (pip wheel; x86, x64), installers with Python 3.12 x64"


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
                     declared.PYPROJECT: PYPROJECT_CIBUILDWHEEL})
    assert declared.read(repo, "f" * 40) == cibuildwheel_builds()
    repo = FakeRepo({declared.INSTALL_SCRIPT: install_script(cibuildwheel=None)})
    assert declared.read(repo, "f" * 40) == pip_builds()


def test_an_install_script_already_read_is_not_read_again():
    repo = FakeRepo({declared.PYPROJECT: PYPROJECT_CIBUILDWHEEL})
    script = install_script().encode()
    assert declared.read(repo, "f" * 40, script) == cibuildwheel_builds()
    assert repo.read == [declared.PYPROJECT]


def test_read_names_what_is_wrong():
    with pytest.raises(errors.LocalRepoError, match="has no contrib/install-windows"):
        declared.read(FakeRepo({}), "f" * 40)
    repo = FakeRepo({declared.INSTALL_SCRIPT: install_script(),
                     declared.PYPROJECT: "[tool.cibuildwheel.windows]\narchs = 'MIPS'\n"})
    with pytest.raises(errors.LocalRepoError, match="ffffffffffff of /src/hg: "
                                                    r"\[tool.cibuildwheel.windows\]"):
        declared.read(repo, "f" * 40)
