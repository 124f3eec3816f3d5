"""hgautomation.windows.recipes: matrix cells to scripts, paths and expected artifacts."""

from __future__ import annotations

import fnmatch
import re

import pytest

from hgautomation import errors, platforms
from hgautomation.windows import recipes
from hgautomation.windows.artifacts import sftp_path

from .helpers import pip_builds, release_builds

CIBW = release_builds()  # 7.2.4's: cibuildwheel, as its CI builds them
PIP = pip_builds()


def params_of(text: str) -> dict[str, str]:
    """The generated ``$Name = '<value>'`` assignments of a rendered script."""
    block = text.split("# -- parameters (generated) --\n", 1)[1].split("\n\n# -- ", 1)[0]
    found = {}
    for name, literal in re.findall(r"^\$([A-Za-z0-9]+) = ('(?:[^']|'')*')$", block, re.M):
        found[name] = literal[1:-1].replace("''", "'")
    return found


# -- paths -------------------------------------------------------------------------------

@pytest.mark.parametrize("python,arch,path", [
    ("3.12", "x64", "C:\\hgdev\\python312-x64\\python.exe"),
    ("3.9", "x86", "C:\\hgdev\\python39-x86\\python.exe"),
    ("3.14", "x86", "C:\\hgdev\\python314-x86\\python.exe"),
])
def test_python_path(python, arch, path):
    assert recipes.python_path(python, arch) == path


@pytest.mark.parametrize("python,arch", [("2.7", "x64"), ("3.12", "arm64"), ("", "x86"),
                                         ("system3", "x64"), ("pypy3.10", "x64")])
def test_python_path_refuses_what_the_hosts_do_not_have(python, arch):
    with pytest.raises(ValueError, match="no Windows Python"):
        recipes.python_path(python, arch)


@pytest.mark.parametrize("windows,msys", [
    ("C:\\hgdev\\src\\tests", "/c/hgdev/src/tests"),
    ("D:\\", "/d/"),
    ("c:\\x y\\z", "/c/x y/z"),
])
def test_msys_path(windows, msys):
    assert recipes.msys_path(windows) == msys


@pytest.mark.parametrize("path,expected", [
    ("C:\\hgdev\\src\\dist", "/C:/hgdev/src/dist"),
    ("c:\\hgdev", "/C:/hgdev"),
    ("D:", "/D:"),
    ("/srv/dist", "/srv/dist"),
    ("dist", "dist"),
    ("1:\\x", "1:\\x"),  # not a drive letter
])
def test_sftp_path(path, expected):
    assert sftp_path(path) == expected


# -- versions and steps -----------------------------------------------------------------------

@pytest.mark.parametrize("version", [None, ""])
def test_installers_need_a_version(version):
    with pytest.raises(errors.UsageError, match="building the wix installer needs --version"):
        recipes.plan(CIBW, ["wix"], version)
    with pytest.raises(errors.UsageError):
        recipes.check_version(version, "x")


def test_check_version_passes_a_version_through():
    assert recipes.check_version("7.2rc0", "x") == "7.2rc0"


def test_wheels_take_the_version_from_the_source():
    steps = recipes.plan(PIP, ["wheel"], None)
    assert len(steps) == 2 * 6
    assert all(s.expected is None for s in steps)
    with_version = recipes.plan(PIP, ["wheel"], "7.2.4", ["3.11"], ["x86"])
    assert [s.expected for s in with_version] == ["mercurial-7.2.4-cp311-cp311-win32.whl"]


def test_pip_wheel_step():
    (step,) = recipes.plan(PIP, ["wheel"], None, ["3.13"], ["x64"])
    assert step.label == "wheel 3.13 x64"
    assert step.python == "C:\\hgdev\\python313-x64\\python.exe"
    assert step.pattern == "mercurial-*-cp313-cp313-win_amd64.whl"
    assert step.script.name == "build_wheel.ps1"
    assert params_of(step.script.text) == {
        "Source": "C:\\hgdev\\src", "Dist": "C:\\hgdev\\src\\dist",
        "Python": "C:\\hgdev\\python313-x64\\python.exe", "Arch": "x64",
        "Pattern": "mercurial-*-cp313-cp313-win_amd64.whl"}


@pytest.mark.parametrize("py,arch,cibw_arch,tag", [
    ("39", "x86", "x86", "win32"), ("39", "x64", "AMD64", "win_amd64"),
    ("311", "arm64", "ARM64", "win_arm64")])
def test_cibuildwheel_wheel_step(py, arch, cibw_arch, tag):
    (step,) = recipes.plan(CIBW, ["wheel"], "7.2.4", [f"{py[0]}.{py[1:]}"], [arch])
    assert step.python is None
    assert step.expected == f"mercurial-7.2.4-cp{py}-cp{py}-{tag}.whl"
    assert step.script.name == "build_wheel_cibuildwheel.ps1"
    assert params_of(step.script.text) == {
        "Source": "C:\\hgdev\\src", "Dist": "C:\\hgdev\\src\\dist", "Arch": arch,
        "Pattern": f"mercurial-*-cp{py}-cp{py}-{tag}.whl", "Build": f"cp{py}-*",
        "Archs": cibw_arch}


@pytest.mark.parametrize("kind,arch,target,name", [
    ("inno", "x86", "i686-pc-windows-msvc", "Mercurial-7.2.4-x86.exe"),
    ("wix", "x64", "x86_64-pc-windows-msvc", "mercurial-7.2.4-x64.msi"),
])
def test_installer_step(kind, arch, target, name):
    (step,) = recipes.plan(CIBW, [kind], "7.2.4", arches=[arch])
    assert step.expected == name
    assert fnmatch.fnmatchcase(name, step.pattern)
    assert step.script.name == "build_installer.ps1"
    params = params_of(step.script.text)
    assert params["Kind"] == kind and params["Target"] == target
    assert params["Version"] == "7.2.4"
    # packaging.py runs with the x64 interpreter for both targets.
    assert params["Python"] == "C:\\hgdev\\python312-x64\\python.exe"


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown artifact kind 'zip'"):
        recipes.build_step(platforms.WindowsArtifact("zip", "3.12", "x64"), "7.2")


@pytest.mark.parametrize("builds", [CIBW, PIP], ids=["cibuildwheel", "pip"])
def test_patterns_find_their_own_artifact_only(builds):
    steps = recipes.plan(builds, recipes.KINDS, "7.2.4")
    assert len(steps) == len(builds.wheels) + 4
    for step in steps:
        owners = [s.label for s in steps if fnmatch.fnmatchcase(s.expected, step.pattern)]
        assert owners == [step.label]


# -- select ------------------------------------------------------------------------------------

def test_select_everything_is_the_declared_matrix():
    assert recipes.select(CIBW, recipes.KINDS) == CIBW.matrix()
    assert recipes.select(PIP, recipes.KINDS) == PIP.matrix()


def test_select_filters_kinds_pythons_and_arches():
    cells = recipes.select(PIP, ["wheel", "inno"], ["3.10", "3.12"], ["x86"])
    assert cells == [platforms.WindowsArtifact("wheel", "3.10", "x86"),
                     platforms.WindowsArtifact("wheel", "3.12", "x86"),
                     platforms.WindowsArtifact("inno", "3.10", "x86"),
                     platforms.WindowsArtifact("inno", "3.12", "x86")]


def test_wheels_of_a_python_default_to_every_declared_arch():
    assert [c.arch for c in recipes.select(CIBW, ["wheel"], ["3.12"])] == \
        ["x86", "x64", "arm64"]
    # 7.2.4's CI builds ARM64 from 3.11 on.
    assert [c.arch for c in recipes.select(CIBW, ["wheel"], ["3.9"])] == ["x86", "x64"]
    assert [c.arch for c in recipes.select(PIP, ["wheel"], ["3.12"])] == ["x86", "x64"]


@pytest.mark.parametrize("pythons,arches,message", [
    (["3.12"], ["arm64"], "no Windows wheel for 3.12 arm64; it declares 3.9 x86, "),
    (["3.8"], None, r"no Windows wheel for 3.8 \(any arch\)"),
    (None, ["arm64"], r"no Windows wheel for \(any Python\) arm64"),
])
def test_undeclared_wheels_are_refused(pythons, arches, message):
    with pytest.raises(errors.UsageError, match=message):
        recipes.select(PIP, ["wheel"], pythons, arches)


def test_wheels_the_release_does_not_have_are_refused():
    """7.2.4's pyproject.toml would build a 3.9/3.10 ARM64 wheel; its CI and its release
    do not."""
    with pytest.raises(errors.UsageError, match=r"no Windows wheel for 3\.10 arm64; it "
                                                r"declares 3\.9 x86, 3\.9 x64, 3\.10 x86, "):
        recipes.select(CIBW, ["wheel"], ["3.10", "3.11"], ["arm64"])


def test_installers_follow_the_python_option():
    assert recipes.select(CIBW, ["wix"], ["3.13"]) == [
        platforms.WindowsArtifact("wix", "3.13", "x86"),
        platforms.WindowsArtifact("wix", "3.13", "x64")]
    assert recipes.select(CIBW, ["wix"]) == [
        platforms.WindowsArtifact("wix", platforms.INSTALLER_PYTHON, "x86"),
        platforms.WindowsArtifact("wix", platforms.INSTALLER_PYTHON, "x64")]
    with pytest.raises(errors.UsageError, match=r"no Python 3\.8 x64 to run packaging\.py"):
        recipes.select(CIBW, ["wix"], ["3.8"])


def test_select_nothing():
    assert recipes.select(CIBW, []) == []


# -- other scripts ------------------------------------------------------------------------------

def test_update_source_script():
    node = "0123456789abcdef" * 2 + "01234567"
    script = recipes.update_source_script(node)
    assert params_of(script.text) == {"Hg": "C:\\hgdev\\venv-bootstrap\\Scripts\\hg.exe",
                                      "Source": "C:\\hgdev\\src", "Node": node}


@pytest.mark.parametrize("node", ["tip", "0" * 39, "0" * 41, "A" * 40, "g" * 40,
                                  "0" * 40 + "\n", ""])
def test_update_source_needs_a_full_lowercase_node(node):
    with pytest.raises(ValueError, match="not a full node"):
        recipes.update_source_script(node)


def test_run_tests_script():
    script = recipes.run_tests_script("3.11", "x86", "-j8 --retest 'test-a b.t'")
    assert params_of(script.text) == {
        "Temp": "C:\\Temp",
        "MsysShell": "C:\\hgdev\\MinGW\\msys\\1.0\\bin\\sh.exe",
        "TestsDir": "/c/hgdev/src/tests",
        "Python": "/c/hgdev/python311-x86/python.exe",
        "TestFlags": "-j8 --retest 'test-a b.t'"}


def test_run_tests_script_refuses_double_quotes():
    with pytest.raises(errors.UsageError, match="cannot contain double quotes") as raised:
        recipes.run_tests_script("3.12", "x64", '-k "a b"')
    assert raised.value.exit_code == 2


def test_provision_script():
    script = recipes.provision_script("C:\\hgdev\\provision\\deps.ps1")
    assert params_of(script.text) == {
        "DepsScript": "C:\\hgdev\\provision\\deps.ps1",
        "BootstrapPython": "C:\\hgdev\\venv-bootstrap\\Scripts\\python.exe",
        "MercurialRequirement": recipes.BOOTSTRAP_MERCURIAL}


def test_user_data_is_one_powershell_block_with_stripped_keys():
    data = recipes.user_data("ssh-ed25519 AAAA me\n", "-----BEGIN-----\nx\n-----END-----\n",
                             "  ssh-ed25519 BBBB\n")
    assert data.startswith("<powershell>\n") and data.endswith("</powershell>\n")
    assert data.count("<powershell>") == 1
    assert params_of(data) == {"AuthorizedKey": "ssh-ed25519 AAAA me",
                               "HostKey": "-----BEGIN-----\nx\n-----END-----\n",
                               "HostKeyPub": "ssh-ed25519 BBBB"}
