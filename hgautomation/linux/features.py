"""The test suite's features: what tests ``#require``, which a host has, what gets skipped.

A test whose top-level ``#require`` names a feature the host lacks is skipped whole.
Only features a host *provides* (tools and packages) are reported here; the others
are facts of the platform (``windows``, ``osx``) or of the run (``--chg``, ``--rust``,
``--allow-slow-tests``, the hg under test), not something to install.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from hgautomation import errors, ssh

# Features that come from packages on the host (tests/hghave.py's checks), from the
# research behind bootstrap-debian.sh's package lists. (The TLS and CA checks import
# the hg under test, so they are the run's facts, not the host's.)
HOST_FEATURES = (
    "baz", "black", "bzr", "cargo", "clang-format", "clang-libfuzzer", "curses", "cvs",
    "cvs112", "cvsnt", "darcs", "debdeps", "debhelper", "docker",
    "docutils", "emacs", "ensurepip", "fuzzywuzzy", "gettext", "git", "git19", "gpg", "gpg2",
    "gpg21", "hypothesis", "jshint", "lfs-test-server", "lzma", "mtn", "p4", "py3exe",
    "pyflakes", "pygit2", "pygments", "pylint", "pytype", "rustfmt", "sqlite", "ssl", "svn",
    "svn-bindings", "svn13", "svn15", "tic", "tla", "unziplinks", "vcr",
    "virtualenv", "xz",
)
# Seconds for hghave's checks on the host (each runs a tool or imports a module).
CHECK_TIMEOUT = 300.0

# Why a feature stays missing on a provisioned host: not packaged, or left out on purpose.
_EVERYWHERE = ("debian12", "debian13", "ubuntu22.04", "ubuntu24.04")
_NEEDS_RUSTUP = "needs rustup: bootstrap-linux-dev installs it unless --no-rust"
# The longest reason check-host's table shows whole (longer ones are cut unless -v):
# with the feature and count columns the table stays within 100 columns.
WHY_WIDTH = 64
WHY_MISSING: dict[str, dict[str, str]] = {
    "baz": dict.fromkeys(_EVERYWHERE, "not packaged (GNU Arch baz is dead upstream)"),
    "cvsnt": dict.fromkeys(_EVERYWHERE, "not packaged"),
    "mtn": dict.fromkeys(_EVERYWHERE, "not packaged (monotone left Debian after stretch)"),
    "p4": dict.fromkeys(_EVERYWHERE, "proprietary (Perforce): not packaged"),
    "lfs-test-server": dict.fromkeys(_EVERYWHERE, "not packaged (a Go program)"),
    "jshint": dict.fromkeys(_EVERYWHERE, "not packaged (npm only)"),
    "clang-libfuzzer": dict.fromkeys(
        _EVERYWHERE, "hghave reads one digit of clang's version: false since clang 10"),
    "debhelper": dict.fromkeys(
        _EVERYWHERE, "the check wants dh_python2, which no supported distro ships"),
    "debdeps": dict.fromkeys(
        _EVERYWHERE, "left out: test-debian-packages.t also needs --allow-slow-tests"),
    "docker": dict.fromkeys(
        _EVERYWHERE, "left out: test-docker-packaging.t also needs --allow-slow-tests"),
    "pytype": dict.fromkeys(_EVERYWHERE, "left out: no test requires it"),
    "pygit2": dict.fromkeys(_EVERYWHERE,
                            "left out: its test also needs missing-correct-output, never true"),
    "tla": {"debian13": "not packaged for Debian 13"},
    "darcs": {"ubuntu24.04": "not packaged for Ubuntu 24.04"},
    "cargo": dict.fromkeys(_EVERYWHERE, _NEEDS_RUSTUP),
    "rustfmt": dict.fromkeys(_EVERYWHERE, _NEEDS_RUSTUP),
}


def parse_requires(text: str) -> set[str]:
    """The features a test file's top-level ``#require`` lines name (as run-tests.py reads
    them: outside ``#if`` blocks; a word starting with ``#`` ends the list)."""
    features: set[str] = set()
    depth = 0
    for line in text.splitlines():
        if line.startswith("#if"):
            depth += 1
        elif line.startswith("#endif"):
            depth = max(depth - 1, 0)
        elif line.startswith("#require") and depth == 0:
            for word in line.split()[1:]:
                if word.startswith("#"):
                    break
                features.add(word)
    return features


def test_requirements(tests_dir: Path) -> dict[str, set[str]]:
    """Top-level requirements of every ``test-*.t`` of a checkout."""
    found = {}
    for path in sorted(tests_dir.glob("test-*.t")):
        found[path.name] = parse_requires(path.read_text(encoding="utf-8", errors="replace"))
    return found


@dataclass(frozen=True)
class FeatureRow:
    feature: str
    present: bool
    skipped_tests: int  # tests this feature's absence alone would skip
    why: str  # for a missing feature: why it stays missing, if known


@dataclass(frozen=True)
class FeatureReport:
    rows: list[FeatureRow]
    tests: int  # test-*.t files counted
    skipped: int  # tests skipped for at least one missing host feature

    @property
    def missing(self) -> list[FeatureRow]:
        return [r for r in self.rows if not r.present]


def build_report(results: Mapping[str, object], requirements: Mapping[str, set[str]],
                 distro: str | None) -> FeatureReport:
    missing = {f for f, ok in results.items() if ok is not True}
    rows = []
    for feature in sorted(results):
        present = feature not in missing
        count = sum(1 for reqs in requirements.values() if feature in reqs)
        why = "" if present else WHY_MISSING.get(feature, {}).get(distro or "", "")
        if not present and isinstance(results[feature], str):
            why = why or str(results[feature])
        rows.append(FeatureRow(feature, present, count, why))
    skipped = sum(1 for reqs in requirements.values() if reqs & missing)
    return FeatureReport(rows, len(requirements), skipped)


def host_distro(conn: ssh.Connection) -> str | None:
    """"debian12", "ubuntu24.04", ... from /etc/os-release; None if unknown."""
    text = conn.output(["sh", "-c", ". /etc/os-release && echo \"$ID $VERSION_ID\""],
                       check=False)
    parts = text.split()
    return "".join(parts) if len(parts) == 2 else None


def check_features(conn: ssh.Connection, python: str, checkout: Path,
                   features: Iterable[str] = HOST_FEATURES) -> dict[str, object]:
    """Run the checkout's ``tests/hghave.py`` checks on the host with ``python``."""
    from hgautomation import linux

    hghave = checkout / "tests" / "hghave.py"
    if not hghave.is_file():
        raise errors.LocalRepoError(f"{checkout} has no tests/hghave.py to check features with")
    remote_dir = conn.output(["mktemp", "-d", "/tmp/hgautomation-hghave.XXXXXX"]).strip()
    try:
        conn.put(hghave, f"{remote_dir}/hghave.py")
        lines: list[str] = []
        status = conn.run(["env", "-u", "HGRCPATH", f"TESTDIR={remote_dir}", python, "-",
                           remote_dir, *features],
                          stdin=linux.script("features.py"), check=False, quiet=True,
                          sink=lines, timeout=CHECK_TIMEOUT)
    finally:
        conn.run(["rm", "-rf", remote_dir], check=False, quiet=True, timeout=60)
    try:
        results = json.loads(lines[-1]) if status == 0 and lines else None
    except ValueError:
        results = None
    if not isinstance(results, dict):
        raise errors.RemoteCommandError(
            f"{conn.target}: checking features with {python} failed (exit {status})"
            + (f": {lines[-1]}" if lines else ""), command="features.py", status=status,
            output_tail="\n".join(lines[-20:]))
    return results
