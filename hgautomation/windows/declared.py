"""What a Mercurial checkout declares it builds on Windows, read from the checkout itself.

Three of its files say it, so older and newer branches each build what they declare:

- ``contrib/heptapod-ci.yml``, Mercurial's CI: the wheels its Windows wheel jobs build
  (each run's ``CIBW_BUILD``/``CIBW_ARCHS`` over pyproject's selectors). Where it has
  such jobs they are the release's wheels: 7.2.4's pyproject declares ARM64 for every
  CPython, its CI (and its release on PyPI) only for 3.11 and later.
- ``pyproject.toml`` ``[tool.cibuildwheel]`` (``build``, ``skip``) and
  ``[tool.cibuildwheel.windows]`` (``archs``): what cibuildwheel builds, for a
  revision whose CI builds no Windows wheels.
- ``contrib/install-windows-dependencies.ps1`` installs the interpreters
  ``C:\\hgdev\\python<XY>-<arch>`` (its ``Install-Python3`` lines) and, on branches that
  build wheels with cibuildwheel, cibuildwheel itself (``pipx install cibuildwheel==…``).
  A revision that declares no cibuildwheel wheels builds one ``pip wheel`` per
  interpreter, as Mercurial built them before.

The installers are the two PyOxidizer targets, built with one installed x64
interpreter running ``packaging.py``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping

from hgautomation import errors, platforms
from hgautomation.windows import heptapod_ci
from hgautomation.windows_builds import WindowsBuilds

INSTALL_SCRIPT = "contrib/install-windows-dependencies.ps1"
PYPROJECT = "pyproject.toml"
CI_FILE = heptapod_ci.CI_FILE

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


def _cibuildwheel_table(config: dict) -> dict:
    cibw = config.get("tool", {}).get("cibuildwheel", {})
    if not isinstance(cibw, dict):
        raise ValueError("[tool.cibuildwheel] is not a table")
    return cibw


def _cell_key(cell: tuple[str, str]) -> tuple[int, int]:
    return CIBW_PYTHONS.index(cell[0]), platforms.WINDOWS_WHEEL_ARCHES.index(cell[1])


def select(cibw: dict, env: Mapping[str, str] | None = None) -> tuple[tuple[str, str], ...]:
    """The (python, arch) cells cibuildwheel builds on an x64 Windows machine from
    pyproject's ``[tool.cibuildwheel]`` table ``cibw``, as the CIBW_BUILD, CIBW_SKIP,
    CIBW_ARCHS_WINDOWS and CIBW_ARCHS of ``env`` override it (cibuildwheel's rules)."""
    env = env or {}
    windows = cibw.get("windows", {})
    build = (_words(env["CIBW_BUILD"], "CIBW_BUILD") if "CIBW_BUILD" in env
             else _words(cibw.get("build", "*"), "build")) or ["*"]
    skip = (_words(env["CIBW_SKIP"], "CIBW_SKIP") if "CIBW_SKIP" in env
            else _words(cibw.get("skip", ""), "skip"))
    arch_key = next((k for k in ("CIBW_ARCHS_WINDOWS", "CIBW_ARCHS") if env.get(k)), None)
    if arch_key is not None:
        arch_words, where = _words(env[arch_key], arch_key), arch_key
    else:
        arch_words = _words(windows.get("archs", cibw.get("archs", "auto")), "archs")
        where = f"[tool.cibuildwheel{'.windows' if 'archs' in windows else ''}] archs"
    archs: list[str] = []
    for word in arch_words:
        for arch in CIBW_ARCH_ALIASES.get(word, (word,)):
            if arch not in CIBW_ARCHS:
                raise ValueError(f"{where}: unknown {arch!r}")
            if arch not in archs:
                archs.append(arch)
    cells = []
    for python in CIBW_PYTHONS:
        for arch in archs:
            identifier = f"cp{python.replace('.', '')}-" \
                         f"{platforms.WHEEL_PLATFORM_TAGS[CIBW_ARCHS[arch]]}"
            if (python, arch) not in CIBW_NOT_BUILT and _matches(identifier, build) \
                    and not _matches(identifier, skip):
                cells.append((python, CIBW_ARCHS[arch]))
    return tuple(sorted(cells, key=_cell_key))


def cibuildwheel_wheels(config: dict) -> tuple[tuple[str, str], ...] | None:
    """The (python, arch) cells cibuildwheel builds on an x64 Windows machine from
    pyproject's ``[tool.cibuildwheel]``; None when the checkout declares no Windows wheels
    there (no table, or no ``[tool.cibuildwheel.windows]``)."""
    cibw = config.get("tool", {}).get("cibuildwheel")
    if not isinstance(cibw, dict) or not isinstance(cibw.get("windows"), dict):
        return None
    return select(cibw)


def ci_wheels(ci: str, config: dict) -> tuple[tuple[str, str], ...] | None:
    """The (python, arch) cells the Windows wheel jobs of ``ci`` (the text of
    contrib/heptapod-ci.yml) build, each run over pyproject's selectors (``config``);
    None when it has no such job."""
    jobs = heptapod_ci.windows_wheel_jobs(ci)
    if not jobs:
        return None
    cibw = _cibuildwheel_table(config)
    cells: set[tuple[str, str]] = set()
    for job in jobs:
        for run in job.runs:
            try:
                found = select(cibw, dict(run))
            except ValueError as exc:
                raise ValueError(f"{CI_FILE} line {job.line}: job {job.name!r}: {exc}") \
                    from None
            if not found:
                selectors = " ".join(f"{k}={v}" for k, v in run) or "no CIBW_ variable"
                raise ValueError(f"{CI_FILE} line {job.line}: job {job.name!r} "
                                 f"({selectors}) selects no Windows wheel")
            cells.update(found)
    return tuple(sorted(cells, key=_cell_key))


def parse(install_script: str, pyproject: str | None, ci: str | None = None) -> WindowsBuilds:
    """The declaration in the text of the three files (``pyproject``, ``ci`` None when absent).

    Raises ValueError naming what does not make sense.
    """
    installed = interpreters(install_script)
    if not any(arch == "x64" for _, arch in installed):
        raise ValueError(f"{INSTALL_SCRIPT} installs no x64 Python (Install-Python3 lines)")
    pin = _CIBUILDWHEEL_PIN.search(install_script)
    config = _load_toml(pyproject) if pyproject is not None else {}
    # The CI's Windows wheel jobs are what Mercurial releases; pyproject alone says more.
    wheels = ci_wheels(ci, config) if ci is not None else None
    declared_by = CI_FILE
    if wheels is None:
        wheels, declared_by = cibuildwheel_wheels(config), PYPROJECT
    if wheels is None:
        # Before cibuildwheel: one `pip wheel` per interpreter the installer provides.
        return WindowsBuilds(installed, installed, "pip")
    if not wheels:
        raise ValueError("pyproject.toml [tool.cibuildwheel] selects no Windows wheel")
    return WindowsBuilds(installed, wheels, "cibuildwheel", pin.group(1) if pin else None,
                         declared_by)


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
    """The declaration at ``node`` of ``repo`` (an hgrepo.LocalRepo); a LocalRepoError says
    what is missing or wrong. ``install_script``: its text when the caller has read it."""
    if install_script is None:
        result = repo.run("cat", "-r", node, INSTALL_SCRIPT, check=False)
        install_script = result.stdout if result.returncode == 0 else None
    if install_script is None:
        raise errors.LocalRepoError(
            f"revision {node[:12]} of {repo.root} has no {INSTALL_SCRIPT}; the Windows "
            "builds follow the checkout's own declaration",
            hint="use a revision of Mercurial that ships it (-r)")
    texts = []
    for path in (PYPROJECT, CI_FILE):
        result = repo.run("cat", "-r", node, path, check=False)
        texts.append(result.stdout.decode("utf-8", "replace")
                     if result.returncode == 0 else None)
    try:
        return parse(install_script.decode("utf-8", "replace"), *texts)
    except ValueError as exc:
        raise errors.LocalRepoError(f"revision {node[:12]} of {repo.root}: {exc}") from None
