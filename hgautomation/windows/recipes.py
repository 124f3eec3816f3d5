"""Which script runs with which parameters, for every cell of the Windows release matrix.

The matrix (wheels and installers) is what the checkout declares
(:mod:`hgautomation.windows.declared`); this module only maps a cell to its
script, Python path, artifact pattern and expected file name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hgautomation import platforms
from hgautomation.errors import UsageError
from hgautomation.platforms import WindowsArtifact
from hgautomation.windows.declared import CIBW_ARCH_NAMES
from hgautomation.windows.powershell import Script
from hgautomation.windows_builds import WindowsBuilds

# The Windows host contract (docs/contract.rst).
HGDEV = "C:\\hgdev"
SOURCE = HGDEV + "\\src"
DIST = SOURCE + "\\dist"
HG = HGDEV + "\\venv-bootstrap\\Scripts\\hg.exe"
BOOTSTRAP_PYTHON = HGDEV + "\\venv-bootstrap\\Scripts\\python.exe"
MSYS_SHELL = HGDEV + "\\MinGW\\msys\\1.0\\bin\\sh.exe"
# Where the checkout's installer puts Rust (its Install-Rust): PyOxidizer needs it.
RUSTUP_HOME = HGDEV + "\\rustup"
CARGO_HOME = HGDEV + "\\cargo"
# Test runs: a short TEMP without 8.3 names (profile paths change quoting in outputs).
TEST_TEMP = "C:\\Temp"
PROVISION_DIR = HGDEV + "\\provision"
# What `hg push` asks the remote to run (forward slashes: no quoting by Mercurial).
REMOTE_HG_CMD = "C:/hgdev/venv-bootstrap/Scripts/hg.exe"
REMOTE_SOURCE_URL_PATH = "C:/hgdev/src"

# Mercurial for the bootstrap venv (the receiving end of `hg push`).
BOOTSTRAP_MERCURIAL = "mercurial==7.2.4"

PYOXIDIZER_TARGETS = {"x86": "i686-pc-windows-msvc", "x64": "x86_64-pc-windows-msvc"}
KINDS = ("wheel", "inno", "wix")
NEEDS_VERSION = ("inno", "wix")



def python_path(python: str, arch: str) -> str:
    r"""C:\hgdev\python<XY>-<arch>\python.exe for "3.12", "x64"."""
    # Any Python 3 a checkout's installer may install (older branches: 3.7, 3.8).
    if not re.fullmatch(r"3\.\d{1,2}", python) or arch not in platforms.WINDOWS_ARCHES:
        raise ValueError(f"no Windows Python {python} for {arch}")
    return f"{HGDEV}\\python{python.replace('.', '')}-{arch}\\python.exe"


def msys_path(windows_path: str) -> str:
    r"""C:\hgdev\src -> /c/hgdev/src (how the MSYS shell names it)."""
    drive, rest = windows_path.split(":", 1)
    return "/" + drive.lower() + rest.replace("\\", "/")


def check_version(version: str | None, needed_for: str) -> str:
    """The version (validated by :func:`hgautomation.options.version`), or a UsageError
    naming what needs it."""
    if not version:
        raise UsageError(f"{needed_for} needs --version (the version in the package names)")
    return version


def artifact_pattern(artifact: WindowsArtifact) -> str:
    """Glob matching the file a build of ``artifact`` leaves in dist\\ (any version)."""
    return artifact.filename("*")


@dataclass(frozen=True)
class BuildStep:
    """One cell of the matrix, ready to run: script, Python and what must come out."""

    artifact: WindowsArtifact
    python: str | None  # Windows path of the interpreter; None: cibuildwheel brings its own
    pattern: str  # glob in DIST
    expected: str | None  # exact file name when the version is known
    script: Script

    @property
    def label(self) -> str:
        a = self.artifact
        return f"{a.kind} {a.python} {a.arch}"


def packaging_args(artifact: WindowsArtifact, version: str) -> list[str]:
    """The arguments of ``contrib\\packaging\\packaging.py`` (the checkout's own packaging
    CLI, hgpackaging/cli.py) for an installer cell."""
    return [artifact.kind, "--pyoxidizer-target", PYOXIDIZER_TARGETS[artifact.arch],
            "--version", version]


def cibuildwheel_selection(artifact: WindowsArtifact) -> dict[str, str]:
    """CIBW_BUILD and CIBW_ARCHS selecting exactly one wheel, as Mercurial's CI selects
    its Windows wheel jobs (``cp312-*`` × ``AMD64``)."""
    return {"CIBW_BUILD": f"cp{artifact.python.replace('.', '')}-*",
            "CIBW_ARCHS": CIBW_ARCH_NAMES[artifact.arch]}


def build_step(artifact: WindowsArtifact, version: str | None = None,
               wheel_builder: str = "pip") -> BuildStep:
    """The script and expectations for building ``artifact`` (``wheel_builder``: how the
    checkout builds wheels, "pip" or "cibuildwheel")."""
    pattern = artifact_pattern(artifact)
    params = {"Source": SOURCE, "Dist": DIST, "Arch": artifact.arch, "Pattern": pattern}
    python: str | None
    if artifact.kind == "wheel" and wheel_builder == "cibuildwheel":
        python = None
        selection = cibuildwheel_selection(artifact)
        params.update(Build=selection["CIBW_BUILD"], Archs=selection["CIBW_ARCHS"])
        script = Script.load("build_wheel_cibuildwheel.ps1", params)
    elif artifact.kind == "wheel":
        python = python_path(artifact.python, artifact.arch)
        script = Script.load("build_wheel.ps1", dict(params, Python=python))
    elif artifact.kind in NEEDS_VERSION:
        # packaging.py only drives the build (PyOxidizer embeds its own Python): it runs
        # with the x64 interpreter for both targets, as Mercurial's own tooling runs it.
        python = python_path(artifact.python, "x64")
        version = check_version(version, f"building the {artifact.kind} installer")
        params.update(Python=python, Kind=artifact.kind,
                      Target=PYOXIDIZER_TARGETS[artifact.arch],
                      Version=version, PackagingArgs=packaging_args(artifact, version),
                      RustupHome=RUSTUP_HOME, CargoHome=CARGO_HOME,
                      BootstrapScripts=HGDEV + "\\venv-bootstrap\\Scripts")
        script = Script.load("build_installer.ps1", params)
    else:
        raise ValueError(f"unknown artifact kind {artifact.kind!r}")
    expected = artifact.filename(version) if version else None
    return BuildStep(artifact, python, pattern, expected, script)


def _pairs(pairs: Iterable[tuple[str, str]]) -> str:
    return ", ".join(f"{py} {arch}" for py, arch in pairs)


def select(builds: WindowsBuilds, kinds: Iterable[str], pythons: Sequence[str] | None = None,
           arches: Sequence[str] | None = None) -> list[WindowsArtifact]:
    """Cells of the checkout's matrix of the given kinds, for the given Pythons/arches
    (None: all it declares).

    Installers are built with one Python; asking for another one builds with that
    Python instead of the release default. Asking for a wheel or an interpreter the
    checkout does not declare is a UsageError that lists what it declares.
    """
    kinds = tuple(kinds)
    cells: list[WindowsArtifact] = []
    for cell in builds.matrix():
        if cell.kind not in kinds or (arches is not None and cell.arch not in arches):
            continue
        if pythons is None or (cell.kind == "wheel" and cell.python in pythons):
            cells.append(cell)
        elif cell.kind != "wheel":
            cells.extend(WindowsArtifact(cell.kind, py, cell.arch) for py in pythons)
    if "wheel" in kinds:
        built = {(c.python, c.arch) for c in cells if c.kind == "wheel"}
        if pythons is not None and arches is not None:
            absent = [pair for pair in ((py, arch) for py in pythons for arch in arches)
                      if pair not in built]
        else:
            absent = [(py, "(any arch)") for py in pythons or ()
                      if not any(p == py for p, _ in built)]
            absent += [("(any Python)", arch) for arch in arches or ()
                       if not any(a == arch for _, a in built)]
        if absent:
            raise UsageError(f"this revision builds no Windows wheel for {_pairs(absent)}; "
                             f"it declares {_pairs(builds.wheels)}")
    missing = sorted({c.python for c in cells if c.kind != "wheel"}
                     - {py for py, arch in builds.interpreters if arch == "x64"})
    if missing:
        raise UsageError(f"this revision's Windows image has no Python {', '.join(missing)} "
                         f"x64 to run packaging.py; it installs {_pairs(builds.interpreters)}")
    return cells


def plan(builds: WindowsBuilds, kinds: Iterable[str], version: str | None,
         pythons: Sequence[str] | None = None,
         arches: Sequence[str] | None = None) -> list[BuildStep]:
    """Every build step of a command: wheels in matrix order, then the installers grouped
    by arch and Python (Inno then WiX), so the two installers of an arch share one
    PyOxidizer build (see :func:`purges`). Version errors come before any machine starts."""
    steps = [build_step(cell, version, builds.wheel_builder)
             for cell in select(builds, kinds, pythons, arches)]
    wheels = [s for s in steps if s.artifact.kind == "wheel"]
    installers = [s for s in steps if s.artifact.kind != "wheel"]
    arch_order = {a: n for n, a in enumerate(platforms.INSTALLER_ARCHES)}
    installers.sort(key=lambda s: (arch_order[s.artifact.arch], s.artifact.python,
                                   KINDS.index(s.artifact.kind)))
    return wheels + installers


def purges(steps: Sequence[BuildStep]) -> list[bool]:
    """Whether the source tree is purged before each step: before every wheel, and before
    the first installer of each arch/Python. The installers of one arch then reuse the
    PyOxidizer build in build\\ (their artifacts, .exe and .msi, cannot be mistaken for
    each other, and the purge before the group removes any older one)."""
    result = []
    previous = None
    for step in steps:
        a = step.artifact
        shares = (previous is not None and a.kind != "wheel"
                  and previous.kind != "wheel" and (previous.arch, previous.python)
                  == (a.arch, a.python))
        result.append(not shares)
        previous = a
    return result


def update_source_script(node: str) -> Script:
    """Bring C:\\hgdev\\src to ``node`` and purge it."""
    if not re.fullmatch(r"[0-9a-f]{40}", node):
        raise ValueError(f"not a full node: {node!r}")
    return Script.load("update_source.ps1", {"Hg": HG, "Source": SOURCE, "Node": node})


def run_tests_script(python: str, arch: str, test_flags: str) -> Script:
    """run-tests.py with the chosen Python under the MSYS shell."""
    if '"' in test_flags:
        # Windows PowerShell 5.1 passes embedded double quotes to native programs
        # unescaped, so sh.exe would see a different command than the user typed.
        raise UsageError("--test-flags cannot contain double quotes on Windows; "
                         "use single quotes")
    return Script.load("run_tests.ps1", {
        "Temp": TEST_TEMP,
        "MsysShell": MSYS_SHELL,
        "TestsDir": msys_path(SOURCE + "\\tests"),
        "Python": msys_path(python_path(python, arch)),
        "TestFlags": test_flags,
    })


def provision_script(deps_script_remote: str) -> Script:
    """Provisioning over SSH: the checkout's dependency installer, then the bootstrap venv."""
    return Script.load("provision.ps1", {
        "DepsScript": deps_script_remote,
        "BootstrapPython": BOOTSTRAP_PYTHON,
        "MercurialRequirement": BOOTSTRAP_MERCURIAL,
    })


def prepare_image_script() -> Script:
    """AV verified on, keys removed, EC2Launch reset: the instance is ready to be imaged."""
    return Script.load("prepare_image.ps1")


def user_data(authorized_key: str, host_key_private: str, host_key_public: str) -> str:
    """EC2 user data (``<powershell>`` block) for the first boot of a Windows instance."""
    script = Script.load("userdata.ps1", {
        "AuthorizedKey": authorized_key.strip(),
        "HostKey": host_key_private,
        "HostKeyPub": host_key_public.strip(),
    })
    return f"<powershell>\n{script.text}</powershell>\n"
