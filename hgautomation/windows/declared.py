"""What a Mercurial checkout declares it builds on Windows, read from the checkout itself.

Two of its files say it, so older and newer branches each build what they declare:

- ``contrib/install-windows-dependencies.ps1`` installs the interpreters
  ``C:\\hgdev\\python<XY>-<arch>`` (its ``Install-Python3`` lines) and, on branches that
  build wheels with cibuildwheel, cibuildwheel itself (``pipx install cibuildwheel==…``).
- ``pyproject.toml`` ``[tool.cibuildwheel]`` (``build``, ``skip``) and
  ``[tool.cibuildwheel.windows]`` (``archs``) select the wheels cibuildwheel builds.

Where cibuildwheel is declared, the wheels are the identifiers it would build
(``cp312-win_arm64`` …); elsewhere one ``pip wheel`` per installed interpreter, as
Mercurial built them before. The installers are the two PyOxidizer targets, built
with one installed x64 interpreter running ``packaging.py``.
"""

from __future__ import annotations

import fnmatch
import re

from hgautomation import errors, platforms
from hgautomation.windows_builds import WindowsBuilds

INSTALL_SCRIPT = "contrib/install-windows-dependencies.ps1"
PYPROJECT = "pyproject.toml"

# cibuildwheel's Windows architectures and ours (the C:\hgdev\python<XY>-<arch> suffixes).
CIBW_ARCHS = {"x86": "x86", "AMD64": "x64", "ARM64": "arm64"}
CIBW_ARCH_NAMES = {ours: theirs for theirs, ours in CIBW_ARCHS.items()}
# Its special values for `archs` on an x64 Windows machine (cibuildwheel's options docs).
CIBW_ARCH_ALIASES = {"auto": ("AMD64", "x86"), "auto64": ("AMD64",), "auto32": ("x86",),
                     "native": ("AMD64",), "all": ("x86", "AMD64", "ARM64")}
# The CPythons cibuildwheel 3.3 (the checkout's pin) builds on Windows without `enable`:
# 3.8 not for ARM64, and 3.14's free-threaded build, tagged cp314t. Checked against
# cibuildwheel itself in the tests.
CIBW_PYTHONS = ("3.8",) + platforms.CPYTHON_VERSIONS + ("3.14t",)
CIBW_NOT_BUILT = {("3.8", "ARM64")}

_INSTALL_PYTHON = re.compile(
    r"^\s*Install-Python3\b.*?[\\/]python(\d)(\d+)-(x86|x64)\s", re.M)
_CIBUILDWHEEL_PIN = re.compile(r"pipx\s+install\s+[\"']?(cibuildwheel==[0-9][0-9A-Za-z.]*)")


def interpreters(install_script: str) -> tuple[tuple[str, str], ...]:
    """(python, arch) of every ``Install-Python3 … ${prefix}\\python<XY>-<arch>`` line."""
    found = []
    for major, minor, arch in _INSTALL_PYTHON.findall(install_script + "\n"):
        pair = (f"{major}.{minor}", arch)
        if pair not in found:
            found.append(pair)
    return tuple(found)


def _words(value: object, key: str) -> list[str]:
    """A cibuildwheel option given as a string (whitespace-separated) or a list of strings."""
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [w for v in value for w in v.split()]
    raise ValueError(f"[tool.cibuildwheel] {key} is neither a string nor a list of strings")


def _expand_braces(pattern: str) -> list[str]:
    """cibuildwheel's ``cp3{9,10}-*`` form (one level, as its docs show) as plain globs."""
    match = re.search(r"\{([^{}]*)\}", pattern)
    if not match:
        return [pattern]
    head, tail = pattern[:match.start()], pattern[match.end():]
    return [p for choice in match.group(1).split(",")
            for p in _expand_braces(head + choice + tail)]


def _matches(identifier: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(identifier, glob)
               for pattern in patterns for glob in _expand_braces(pattern))


def cibuildwheel_wheels(config: dict) -> tuple[tuple[str, str], ...] | None:
    """The (python, arch) cells cibuildwheel builds on an x64 Windows machine from
    pyproject's ``[tool.cibuildwheel]``; None when the checkout declares no Windows wheels
    there (no table, or no ``[tool.cibuildwheel.windows]``)."""
    cibw = config.get("tool", {}).get("cibuildwheel")
    if not isinstance(cibw, dict) or not isinstance(cibw.get("windows"), dict):
        return None
    build = _words(cibw.get("build", "*"), "build")
    skip = _words(cibw.get("skip", ""), "skip")
    arch_words = _words(cibw["windows"].get("archs", cibw.get("archs", "auto")), "archs")
    archs: list[str] = []
    for word in arch_words:
        for arch in CIBW_ARCH_ALIASES.get(word, (word,)):
            if arch not in CIBW_ARCHS:
                raise ValueError(f"[tool.cibuildwheel.windows] archs: unknown {arch!r}")
            if arch not in archs:
                archs.append(arch)
    cells = []
    for python in CIBW_PYTHONS:
        for arch in sorted(archs, key=lambda a: platforms.WINDOWS_WHEEL_ARCHES.index(
                CIBW_ARCHS[a])):
            identifier = f"cp{python.replace('.', '')}-" \
                         f"{platforms.WHEEL_PLATFORM_TAGS[CIBW_ARCHS[arch]]}"
            if (python, arch) not in CIBW_NOT_BUILT and _matches(identifier, build) \
                    and not _matches(identifier, skip):
                cells.append((python, CIBW_ARCHS[arch]))
    return tuple(cells)


def parse(install_script: str, pyproject: str | None) -> WindowsBuilds:
    """The declaration in the text of the two files (`pyproject` None when absent).

    Raises ValueError naming what does not make sense.
    """
    installed = interpreters(install_script)
    if not any(arch == "x64" for _, arch in installed):
        raise ValueError(f"{INSTALL_SCRIPT} installs no x64 Python (Install-Python3 lines)")
    wheels = None
    if pyproject is not None:
        wheels = cibuildwheel_wheels(_load_toml(pyproject))
    if wheels is None:
        # Before cibuildwheel: one `pip wheel` per interpreter the installer provides.
        return WindowsBuilds(installed, installed, "pip")
    pin = _CIBUILDWHEEL_PIN.search(install_script)
    if not wheels:
        raise ValueError("pyproject.toml [tool.cibuildwheel] selects no Windows wheel")
    return WindowsBuilds(installed, wheels, "cibuildwheel", pin.group(1) if pin else None)


def _load_toml(text: str) -> dict:
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"pyproject.toml: {exc}") from None


def read(repo, node: str, install_script: bytes | None = None) -> WindowsBuilds:
    """The declaration at `node` of `repo` (an hgrepo.LocalRepo); a LocalRepoError says
    what is missing or wrong. `install_script`: its text when the caller has read it."""
    if install_script is None:
        result = repo.run("cat", "-r", node, INSTALL_SCRIPT, check=False)
        install_script = result.stdout if result.returncode == 0 else None
    if install_script is None:
        raise errors.LocalRepoError(
            f"revision {node[:12]} of {repo.root} has no {INSTALL_SCRIPT}; the Windows "
            "builds follow the checkout's own declaration",
            hint="use a revision of Mercurial that ships it (-r)")
    pyproject = repo.run("cat", "-r", node, PYPROJECT, check=False)
    try:
        return parse(install_script.decode("utf-8", "replace"),
                     pyproject.stdout.decode("utf-8", "replace")
                     if pyproject.returncode == 0 else None)
    except ValueError as exc:  # parse()'s own complete messages: the traceback adds nothing
        raise errors.LocalRepoError(f"revision {node[:12]} of {repo.root}: {exc}") from None
