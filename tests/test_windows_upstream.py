"""The Windows flows checked against Mercurial's own tree (the cached 7.2.4 sdist): the
build matrix is what the tree's CI builds (cibuildwheel itself, run as each CI job runs
it, is the oracle for its wheels, and for pyproject's, the fallback), the packaging CLI
must accept every argv we send, the artifact names must be what its packaging produces,
and every path we use must be one its installer creates."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from harness import oracles

from hgautomation import platforms
from hgautomation.windows import declared, heptapod_ci, recipes

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


@pytest.fixture(scope="module")
def builds(tree):
    """What the tree declares, read by our own reader from its three files."""
    return declared.parse((tree / declared.INSTALL_SCRIPT).read_text(),
                          (tree / declared.PYPROJECT).read_text(),
                          (tree / declared.CI_FILE).read_text())


@pytest.fixture(scope="module")
def pyproject_builds(tree):
    """What pyproject.toml alone declares: the fallback for a CI without wheel jobs."""
    return declared.parse((tree / declared.INSTALL_SCRIPT).read_text(),
                          (tree / declared.PYPROJECT).read_text())


CIBUILDWHEEL = Path(sys.executable).parent / "cibuildwheel"


def cibuildwheel_identifiers(project: Path, **env: str) -> list[str]:
    """What cibuildwheel itself would build on Windows for `project` (no build is run)."""
    result = subprocess.run(
        [str(CIBUILDWHEEL), "--print-build-identifiers", "--platform", "windows",
         str(project)], check=False, capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("CIBW_")} | env)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def identifier(python: str, arch: str) -> str:
    return f"cp{python.replace('.', '')}-{platforms.WHEEL_PLATFORM_TAGS[arch]}"


def test_the_checkout_builds_its_wheels_with_the_cibuildwheel_it_installs(builds, tree):
    assert builds.wheel_builder == "cibuildwheel"
    dev_pin = re.search(r"^(cibuildwheel==\S+)", (Path(__file__).parents[1]
                        / "requirements-dev.txt").read_text(), re.M).group(1)
    assert builds.cibuildwheel == dev_pin, "the oracle must be the checkout's cibuildwheel"


def test_the_ci_wheels_are_what_cibuildwheel_builds_in_each_ci_run(builds, tree):
    """Every run of the CI's Windows wheel jobs (its parallel matrix), given to
    cibuildwheel itself with the tree's pyproject.toml: together, our 16 wheels."""
    jobs = heptapod_ci.windows_wheel_jobs((tree / declared.CI_FILE).read_text())
    assert [job.name for job in jobs] == ["build-c-wheel-windows"]
    theirs = [i for job in jobs for run in job.runs
              for i in cibuildwheel_identifiers(tree, **dict(run))]
    ours = [identifier(py, arch) for py, arch in builds.wheels]
    assert sorted(ours) == sorted(theirs)  # each run builds a wheel no other run builds
    assert builds.declared_by == declared.CI_FILE and len(ours) == 16
    assert not any(i in ours for i in ("cp39-win_arm64", "cp310-win_arm64"))


def test_the_pyproject_wheels_are_what_cibuildwheel_would_build(pyproject_builds, tree):
    """The fallback (a revision whose CI builds no Windows wheel) is cibuildwheel's own
    reading of pyproject.toml."""
    theirs = cibuildwheel_identifiers(tree)
    ours = [identifier(py, arch) for py, arch in pyproject_builds.wheels]
    assert sorted(ours) == sorted(theirs)
    assert len(ours) == 18 and "cp39-win_arm64" in ours


def test_each_wheel_step_selects_exactly_its_own_wheel(builds, tree):
    """The CIBW_BUILD/CIBW_ARCHS a step sets make cibuildwheel build that one wheel."""
    for step in recipes.plan(builds, ["wheel"], "7.2.4"):
        selection = recipes.cibuildwheel_selection(step.artifact)
        only = cibuildwheel_identifiers(tree, **selection)
        assert only == [identifier(step.artifact.python, step.artifact.arch)], selection
        assert step.expected.endswith(f"-{only[0]}.whl")


@pytest.mark.parametrize("table", [
    'build = "cp312-* cp313-*"\n[tool.cibuildwheel.windows]\narchs = "auto"',
    'build = "cp3{11,12}-*"\nskip = ["*-win32"]\n[tool.cibuildwheel.windows]\n'
    'archs = ["all"]',
    'build = "*"\nskip = "cp38-* pp*"\n[tool.cibuildwheel.windows]\narchs = "ARM64"',
    '[tool.cibuildwheel.windows]\narchs = "auto64"',
    'build = ["cp39-*", "cp314-*"]\n[tool.cibuildwheel.windows]\narchs = "auto32 ARM64"',
    'build = "cp38-*"\n[tool.cibuildwheel.windows]\narchs = "all"',
])
def test_our_reading_of_selectors_is_cibuildwheels(tmp_path, builds, table):
    pyproject = "[tool.cibuildwheel]\n" + table + "\n"
    (tmp_path / "pyproject.toml").write_text(pyproject)
    (tmp_path / "setup.py").write_text("")
    ours = declared.parse((Path(oracles.sdist_tree()) / declared.INSTALL_SCRIPT).read_text(),
                          pyproject)
    assert sorted(identifier(py, a) for py, a in ours.wheels) == \
        sorted(cibuildwheel_identifiers(tmp_path))


@pytest.mark.parametrize("version", VERSIONS)
def test_every_installer_argv_is_accepted_by_the_packaging_cli(packaging_parser, builds,
                                                               version):
    steps = [s for s in recipes.plan(builds, recipes.NEEDS_VERSION, version)]
    assert len(steps) == len(platforms.INSTALLER_ARCHES) * 2
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


def test_installer_names_are_what_the_packaging_produces(tree, builds):
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
        for step in recipes.plan(builds, recipes.NEEDS_VERSION, version):
            arch = step.artifact.arch
            produced = (f"Mercurial-{version}-{arch}.exe" if step.artifact.kind == "inno"
                        else f"mercurial-{version}-{arch}.msi")
            assert step.expected == produced


def test_every_path_we_use_is_made_by_the_checkouts_installer(tree, builds):
    script = (tree / "contrib" / "install-windows-dependencies.ps1").read_text()
    assert re.search(r'^\$prefix = "c:\\hgdev"$', script, re.M | re.I)
    made = {m.lower() for m in re.findall(
        r"Install-Python3 .* \$\{prefix\}\\(python\d+-x(?:86|64)) ", script)}
    assert len(made) == 12
    used = [s.python for s in recipes.plan(builds, recipes.KINDS, "7.2.4") if s.python]
    used += [recipes.python_path(py, arch) for py, arch in builds.interpreters]  # tests
    assert used
    for path in used:
        assert path.lower().startswith("c:\\hgdev\\")
        assert path[len("C:\\hgdev\\"):].split("\\")[0].lower() in made, path
    # The venv that receives pushes, and MinGW (its zip is unpacked into the prefix).
    assert re.search(r"-m venv \$\{prefix\}\\venv-bootstrap", script)
    assert recipes.BOOTSTRAP_PYTHON.lower() == "c:\\hgdev\\venv-bootstrap\\scripts\\python.exe"
    assert re.search(r"Expand-Archive -Path \$\{prefix\}\\assets\\MinGW\.zip "
                     r"-DestinationPath \"\$\{prefix\}\"", script)
    assert recipes.MSYS_SHELL.lower().startswith("c:\\hgdev\\mingw\\")


def test_the_interpreters_we_read_are_the_ones_the_installer_installs(tree, builds):
    """Read here with an independent pattern: every Install-Python3 destination."""
    script = (tree / "contrib" / "install-windows-dependencies.ps1").read_text()
    found = [(f"{m[0][0]}.{m[0][1:]}", m[1]) for m in re.findall(
        r"Install-Python3 \"Python [\d.]+ \d\d-bit\" \S+ \$\{prefix\}\\python(\d+)-(x86|x64)",
        script)]
    assert list(builds.interpreters) == found
    assert {py for py, _ in found} == set(platforms.WINDOWS_PYTHONS)
    assert builds.installer_python == platforms.INSTALLER_PYTHON


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
