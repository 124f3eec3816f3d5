"""Mercurial's own code, from the cached sdist, loaded as test oracles (never copied).

`old_automation(name)`: a module of contrib/automation/hgautomation (the tool this one
replaces), imported under another package name so it cannot shadow ours; its imports
of WinRM and PyPI helpers get inert stand-ins (the oracles used are pure functions).
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

from . import hgsource

PACKAGE = "hgautomation_upstream"


def sdist_tree() -> Path | None:
    """The extracted sdist (a one-commit repository), or None before tests/run ran.

    Made once (as root, by the end-to-end tier or bench scripts); where it cannot be
    made (the unit tier as a plain user, a read-only cache) only an existing one is used.
    """
    sdist = hgsource.find_sdist()
    if sdist is None:
        return None
    existing = hgsource.CACHE_DIR / sdist.name.removesuffix(".tar.gz")
    if (existing / ".hg" / "store").is_dir():
        return existing
    try:
        return hgsource.build_cached_repo(sdist)
    except OSError:
        return None


def old_automation(name: str) -> types.ModuleType | None:
    tree = sdist_tree()
    if tree is None:
        return None
    if PACKAGE not in sys.modules:
        package = types.ModuleType(PACKAGE)
        package.__path__ = [str(tree / "contrib" / "automation" / "hgautomation")]
        sys.modules[PACKAGE] = package
        for stub, attrs in (("winrm", ("run_powershell", "wait_for_winrm")),
                            ("pypi", ("upload",))):
            module = types.ModuleType(f"{PACKAGE}.{stub}")
            for attr in attrs:
                setattr(module, attr, _unavailable)
            sys.modules[f"{PACKAGE}.{stub}"] = module
    return importlib.import_module(f"{PACKAGE}.{name}")


def packaging_cli() -> types.ModuleType | None:
    """contrib/packaging/hgpackaging/cli.py: the CLI behind packaging.py (its builders'
    third-party imports, jinja2, get an inert stand-in: only the parser is used)."""
    tree = sdist_tree()
    if tree is None:
        return None
    name = "hgpackaging_upstream"
    if name not in sys.modules:
        sys.modules.setdefault("jinja2", types.ModuleType("jinja2"))
        package = types.ModuleType(name)
        package.__path__ = [str(tree / "contrib" / "packaging" / "hgpackaging")]
        sys.modules[name] = package
    return importlib.import_module(f"{name}.cli")


def _unavailable(*args, **kwargs):
    raise AssertionError("an oracle module tried to reach a machine")
