"""bootstrap-debian.sh's package lists, resolved against each distro's own package index.

``apt-get install --simulate`` with an empty dpkg status, offline, against the indexes
tests/linux/fetch-apt-indexes.sh downloads before the test namespace. Every name the
script may install must be a real package of that release (a name only *provided* by
another, such as ``libncursesw5-dev`` on trixie, counts as wrong: apt substitutes it
with a note today and drops it without notice tomorrow). Ubuntu's archive is not
reachable from CI, so Ubuntu's lists are named here as unverified.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from hgautomation import platforms

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "hgautomation" / "linux" / "scripts" / "bootstrap-debian.sh"
INDEXES = ROOT / "build" / "cache" / "apt-indexes"

# platforms.py's distro -> the codename bootstrap-debian.sh keys its lists with.
CODENAMES = {"debian12": "bookworm", "debian13": "trixie",
             "ubuntu22.04": "jammy", "ubuntu24.04": "noble"}
VERIFIED = ("bookworm", "trixie")  # what fetch-apt-indexes.sh downloads
UNVERIFIED = {"jammy": "Ubuntu's archive is not reachable from CI",
              "noble": "Ubuntu's archive is not reachable from CI"}


_LIST = re.compile(r'^([A-Z]+_PACKAGES(?:_[a-z]+)?|UNPACKAGED_[a-z]+)="([^"]*)"', re.M)


def _lists() -> dict[str, list[str]]:
    """The script's package lists by variable name (``UNPACKAGED_noble`` too)."""
    return {m.group(1): m.group(2).split() for m in _LIST.finditer(SCRIPT.read_text())}


def wanted(codename: str) -> list[str]:
    """Everything the script may install on ``codename`` (every option on)."""
    lists = _lists()
    names = (lists["BASE_PACKAGES"] + lists["TEST_PACKAGES"]
             + lists.get(f"TEST_PACKAGES_{codename}", []) + lists["PYENV_PACKAGES"]
             + ["curl"])  # the RUST option's
    return sorted(set(names) - set(lists.get(f"UNPACKAGED_{codename}", [])))


def simulate(codename: str, packages: list[str], cache: Path) -> subprocess.CompletedProcess:
    """``apt-get install --simulate`` of ``packages`` against the cached index of ``codename``."""
    base = INDEXES / codename
    cache.mkdir(parents=True, exist_ok=True)
    options = {
        "Dir::Etc::sourcelist": base / "sources.list",
        "Dir::Etc::sourceparts": base / "empty",
        "Dir::Etc::preferencesparts": base / "empty",
        "Dir::State::Lists": base / "lists",
        "Dir::State::status": base / "status",
        "Dir::Cache": cache,
        "APT::Architecture": "amd64",
        "APT::Architectures": "amd64",
    }
    argv = ["apt-get", "install", "--simulate", "--no-install-recommends", "-q"]
    for key, value in options.items():
        argv += ["-o", f"{key}={value}"]
    return subprocess.run(argv + packages, check=False, capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, LC_ALL="C"))


def test_every_distro_is_verified_or_named_unverified():
    codenames = {CODENAMES[d] for d in platforms.LINUX_DISTROS}
    assert codenames == set(VERIFIED) | set(UNVERIFIED)
    assert not set(VERIFIED) & set(UNVERIFIED)
    lists = _lists()
    per_distro = {name.removeprefix("TEST_PACKAGES_") for name in lists
                  if name.startswith("TEST_PACKAGES_")}
    assert per_distro == codenames  # no list for a distro platforms.py does not have
    unpackaged = {name.removeprefix("UNPACKAGED_") for name in lists
                  if name.startswith("UNPACKAGED_")}
    assert unpackaged <= codenames
    assert "libncurses-dev" in wanted("trixie") and "darcs" not in wanted("noble")


@pytest.mark.parametrize("codename", VERIFIED)
def test_package_list_resolves_in_its_release(codename, tmp_path):
    """Breaks as ``libncursesw5-dev`` on trixie broke: a name the release has no package for."""
    index = f"*_dists_{codename}_main_binary-amd64_Packages*"
    if not list((INDEXES / codename / "lists").glob(index)):
        pytest.fail(f"no apt index for {codename} in {INDEXES}: tests/run fetches it "
                    "(tests/linux/fetch-apt-indexes.sh)")
    packages = wanted(codename)
    result = simulate(codename, packages, tmp_path / "cache")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    installed = set(re.findall(r"^Inst (\S+) ", result.stdout, re.M))
    virtual = sorted(set(packages) - installed)
    assert not virtual, (f"{codename} has no package named {', '.join(virtual)} "
                         "(at most another package provides it)")


def test_a_name_the_release_lacks_fails_the_check(tmp_path):
    """The check itself: a missing name exits non-zero; a provided-only name is not Inst'ed."""
    missing = simulate("trixie", ["no-such-package-hgautomation"], tmp_path / "a")
    assert missing.returncode != 0
    assert "Unable to locate package no-such-package-hgautomation" in missing.stderr
    provided = simulate("trixie", ["libncursesw5-dev"], tmp_path / "b")
    assert provided.returncode == 0
    assert not re.search(r"^Inst libncursesw5-dev ", provided.stdout, re.M)
    assert re.search(r"^Inst libncurses-dev ", provided.stdout, re.M)
