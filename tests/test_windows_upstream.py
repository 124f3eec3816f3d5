"""The Windows flows checked against Mercurial's own tree (the cached 7.2.4 sdist): the
packaging CLI must accept every argv we send, the artifact names must be what its
packaging produces, and every path we use must be one its installer script creates."""

from __future__ import annotations

import re

import pytest
from harness import oracles

from hgautomation import platforms
from hgautomation.windows import recipes

VERSIONS = ("7.2.4", "7.3rc0", "6.9.5")


@pytest.fixture(scope="module")
def tree():
    path = oracles.sdist_tree()
    if path is None:
        pytest.skip("no Mercurial sdist in build/cache (tests/run downloads it)")
    return path


@pytest.fixture(scope="module")
def packaging_parser(tree):
    return oracles.packaging_cli().get_parser()


@pytest.mark.parametrize("version", VERSIONS)
def test_every_installer_argv_is_accepted_by_the_packaging_cli(packaging_parser, version):
    steps = [s for s in recipes.plan(recipes.NEEDS_VERSION, version)]
    assert len(steps) == len(platforms.WINDOWS_ARCHES) * 2
    for step in steps:
        argv = recipes.packaging_args(step.artifact, version)
        args = packaging_parser.parse_args(argv)  # SystemExit(2) on anything it refuses
        assert args.func.__name__ == f"build_{step.artifact.kind}"
        assert args.pyoxidizer_target == recipes.PYOXIDIZER_TARGETS[step.artifact.arch]
        assert args.version == version


def test_the_packaging_cli_refuses_what_it_should(packaging_parser):
    """The oracle is not a rubber stamp: a wrong target or kind is refused."""
    for argv in (["inno", "--pyoxidizer-target", "aarch64-pc-windows-msvc"],
                 ["msi", "--pyoxidizer-target", "x86_64-pc-windows-msvc"], ["wix"]):
        with pytest.raises(SystemExit):
            packaging_parser.parse_args(argv)


def test_installer_names_are_what_the_packaging_produces(tree):
    """Inno: OutputBaseFilename=Mercurial-{#VERSION}{#SUFFIX}, SUFFIX -x64 or -x86
    (hgpackaging/inno.py); WiX: "%s-%s-%s.msi" % (MSI_NAME, VERSION, platform) with
    MSI_NAME "mercurial" (rust/hgcli/pyoxidizer.bzl)."""
    iss = (tree / "contrib" / "packaging" / "inno" / "mercurial.iss").read_text()
    assert re.search(r"^OutputBaseFilename=Mercurial-\{#VERSION\}\{#SUFFIX\}$", iss, re.M)
    inno_py = (tree / "contrib" / "packaging" / "hgpackaging" / "inno.py").read_text()
    assert "'/dSUFFIX=-%s%s' % (arch, suffix)" in inno_py and "'/dSUFFIX=-x86%s'" in inno_py
    bzl = (tree / "rust" / "hgcli" / "pyoxidizer.bzl").read_text()
    assert '"%s-%s-%s.msi" % (MSI_NAME, VERSION, platform)' in bzl
    assert 'MSI_NAME = VARS.get("MSI_NAME", "mercurial")' in bzl
    for version in VERSIONS:
        for step in recipes.plan(recipes.NEEDS_VERSION, version):
            arch = step.artifact.arch
            produced = (f"Mercurial-{version}-{arch}.exe" if step.artifact.kind == "inno"
                        else f"mercurial-{version}-{arch}.msi")
            assert step.expected == produced


def test_wheel_names_follow_the_declared_cibuildwheel_archs(tree):
    """pyproject.toml [tool.cibuildwheel.windows] archs: each arch we build is declared
    there, with the platform tag cibuildwheel gives it."""
    import tomllib

    declared = tomllib.loads((tree / "pyproject.toml").read_text())
    archs = declared["tool"]["cibuildwheel"]["windows"]["archs"]
    archs = archs.replace(",", " ").split() if isinstance(archs, str) else archs
    cibw_tag = {"x86": "win32", "AMD64": "win_amd64", "ARM64": "win_arm64"}
    ours = {platforms.WHEEL_PLATFORM_TAGS[a] for a in platforms.WINDOWS_ARCHES}
    assert ours <= {cibw_tag[a] for a in archs}, (archs, ours)


def test_every_path_we_use_is_made_by_the_checkouts_installer(tree):
    script = (tree / "contrib" / "install-windows-dependencies.ps1").read_text()
    assert re.search(r'^\$prefix = "c:\\hgdev"$', script, re.M | re.I)
    made = {m.lower() for m in re.findall(
        r"Install-Python3 .* \$\{prefix\}\\(python\d+-x(?:86|64)) ", script)}
    for python in platforms.WINDOWS_PYTHONS:
        for arch in platforms.WINDOWS_ARCHES:
            path = recipes.python_path(python, arch)
            assert path.lower().startswith("c:\\hgdev\\")
            assert path[len("C:\\hgdev\\"):].split("\\")[0].lower() in made, path
    # The venv that receives pushes, and MinGW (its zip is unpacked into the prefix).
    assert re.search(r"-m venv \$\{prefix\}\\venv-bootstrap", script)
    assert recipes.BOOTSTRAP_PYTHON.lower() == "c:\\hgdev\\venv-bootstrap\\scripts\\python.exe"
    assert re.search(r"Expand-Archive -Path \$\{prefix\}\\assets\\MinGW\.zip "
                     r"-DestinationPath \"\$\{prefix\}\"", script)
    assert recipes.MSYS_SHELL.lower().startswith("c:\\hgdev\\mingw\\")


def test_the_pythons_we_build_for_are_the_ones_the_installer_declares(tree):
    script = (tree / "contrib" / "install-windows-dependencies.ps1").read_text()
    declared = sorted({f"{m[0]}.{m[1:]}" for m in re.findall(
        r"Install-Python3 \"Python [\d.]+ \d\d-bit\" \S+ \$\{prefix\}\\python(\d+)-x", script)},
        key=lambda v: tuple(map(int, v.split("."))))
    assert tuple(declared) == platforms.WINDOWS_PYTHONS


def test_installer_builds_use_the_rust_the_checkouts_installer_made(tree):
    script = (tree / "contrib" / "install-windows-dependencies.ps1").read_text()
    assert '$Env:RUSTUP_HOME = "${prefix}\\rustup"' in script
    assert '$Env:CARGO_HOME = "${prefix}\\cargo"' in script
    assert recipes.RUSTUP_HOME == "C:\\hgdev\\rustup" and recipes.CARGO_HOME == "C:\\hgdev\\cargo"


def test_the_checkouts_installer_parses_but_for_the_grammars_known_gap(tree):
    """We run contrib/install-windows-dependencies.ps1 as it is. tree-sitter-powershell
    mis-parses a variable directly followed by a backslash path (``${prefix}\\assets``,
    ``$prefix\\assets``), which PowerShell itself accepts as one argument; every error
    node it reports there is on such a line, and nothing else in the script trips it."""
    from harness import ps_tree

    text = (tree / "contrib" / "install-windows-dependencies.ps1").read_text()
    lines = text.splitlines()
    errors = ps_tree.syntax_errors(text)
    assert errors, "the grammar's gap is gone: make this test strict"
    for line, _kind, _snippet in errors:
        assert re.search(r"\$(\{\w+\}|\w+)\\", lines[line - 1]), lines[line - 1]
