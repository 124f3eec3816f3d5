"""Linux recipes (provisioners): which shipped script runs when, on a connected host.

Scripts live in ``hgautomation/linux/scripts/`` and are fed to ``bash -s`` over SSH,
so nothing is left behind on the host. Paths follow the contract in docs/contract.rst.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hgautomation import errors, hgrepo, ssh

SCRIPTS = Path(__file__).parent / "scripts"
WORK = "/hgwork"
TESTS_DIR = f"{WORK}/src/tests"
REPORT = f"{TESTS_DIR}/report.json"
REMOTE_HG = hgrepo.REMOTE_HG
BUILD_CACHE = "/hgdev/builds"
WHEELHOUSE = "/hgdev/wheelhouse"


def script(name: str) -> bytes:
    """The text of a shipped script."""
    return (SCRIPTS / name).read_bytes()


def script_exit_codes(name: str) -> dict[str, int]:
    """The ``EXIT_<WHAT>=<n>`` lines of a shipped script: its exit codes by name, declared
    once for the script that exits with them and the code that reads them."""
    return {m.group(1).decode(): int(m.group(2))
            for m in re.finditer(rb"^(EXIT_[A-Z_]+)=(\d+)\b", script(name), re.M)}


def run_script(conn: ssh.Connection, name: str, *args: str, prefix: str = "",
               sudo: bool = False, check: bool = True, quiet: bool = False,
               sink: list[str] | None = None, timeout: float | None = None) -> int:
    """Run a shipped script on the host with ``bash -s`` (as root with ``sudo``)."""
    argv = ["bash", "-s", "--", *args]
    if sudo:
        argv = ["sudo", "-n", *argv]
    return conn.run(argv, stdin=script(name), prefix=prefix, check=check, quiet=quiet,
                    sink=sink, timeout=timeout)


def python_path(version: str) -> str:
    """The interpreter for ``--python-version`` on a contract host."""
    if version == "system3":
        return "/usr/bin/python3"
    if version.startswith("pypy"):
        return f"/hgdev/pyenv/shims/{version}"
    return f"/hgdev/pyenv/shims/python{version}"


# -- a test run, step by step -------------------------------------------------------

def prepare(conn: ssh.Connection, filesystem: str, device: str | None, prefix: str = "",
            node: str = "") -> bool:
    """Create ``/hgwork`` (on ``filesystem``) and ``/hgwork/tmp``; True when ``node`` is
    in ``/hgdev/src`` already (nothing to push)."""
    lines: list[str] = []
    status = run_script(conn, "prepare-run.sh", filesystem, device or "", node, prefix=prefix,
                        check=False, sink=lines)
    last = lines[-1] if lines else ""
    codes = script_exit_codes("prepare-run.sh")
    if status == codes["EXIT_CANNOT_PREPARE"]:
        raise errors.ConfigurationError(f"{conn.target}: {last}")
    if status == codes["EXIT_NOT_CONTRACT"]:
        raise errors.HostContractError(f"{conn.target}: {last}")
    if status != 0:
        raise errors.RemoteCommandError(
            f"{conn.target}: preparing {WORK} failed (exit {status}): {last}",
            command="prepare-run.sh", status=status, output_tail="\n".join(lines[-20:]))
    return bool(node) and bool(lines) and lines[-1] == f"/hgdev/src has {node}"


def checkout(conn: ssh.Connection, node: str, diff: bytes | None, prefix: str = "") -> None:
    """Bring ``/hgwork/src`` to ``node`` (clean), then apply ``diff`` if any."""
    run_script(conn, "checkout.sh", node, prefix=prefix)
    if diff:
        conn.run(["env", "HGPLAIN=1", REMOTE_HG, "--cwd", f"{WORK}/src", "import",
                  "--no-commit", "-"], stdin=diff, prefix=prefix)


# -- the build the tests use ---------------------------------------------------------

# run-tests.py flags that choose the hg under test themselves: no build of ours.
_OWN_HG_FLAGS = ("--with-hg", "--hg-wheel", "--pyoxidized", "--with-chg", "--with-rhg")
_MODE_FLAGS = {"--pure": "pure", "--rust": "rust"}
_EXTRA_FLAGS = {"--chg": "chg", "--rhg": "rhg"}


@dataclass(frozen=True)
class BuildPlan:
    """How the hg under test comes about.

    ``mode`` None: run-tests.py's own way (its temporary pip install, or the hg the
    flags name); otherwise ``build.py`` gives the work tree a build of that flavour
    (reused while its inputs are unchanged) and the tests run with ``--local``.
    """

    mode: str | None
    extras: tuple[str, ...] = ()
    why: str = ""

    @property
    def local(self) -> bool:
        return self.mode is not None


def build_plan(flags: Sequence[str], full_install: bool = False) -> BuildPlan:
    """The plan for run-tests.py ``flags`` (exact spellings; abbreviations are not read)."""
    names = [f.split("=", 1)[0] for f in flags if f.startswith("-")]
    own = [n for n in names if n in _OWN_HG_FLAGS]
    if own:
        return BuildPlan(None, why=f"{own[0]} names the hg to test")
    if full_install:
        return BuildPlan(None, why="--full-install: run-tests.py installs the revision")
    modes = {_MODE_FLAGS[n] for n in names if n in _MODE_FLAGS}
    mode = "pure" if "pure" in modes else "rust" if "rust" in modes else "default"
    extras = tuple(sorted({_EXTRA_FLAGS[n] for n in names if n in _EXTRA_FLAGS}))
    return BuildPlan(mode, extras)


@dataclass(frozen=True)
class BuildOutcome:
    how: str  # "reused" (already in the work tree), "restored" (from the cache), "built"
    key: str
    seconds: float


_BUILD_LINE = re.compile(r"^build: (reused|restored|built) ([0-9a-f]+) ([0-9.]+)$")


def build(conn: ssh.Connection, python: str, plan: BuildPlan, *, rebuild: bool = False,
          prefix: str = "") -> BuildOutcome:
    """Give ``/hgwork/src`` the build ``plan`` asks for (``build.py``, run by ``python``)."""
    recipe = hashlib.sha256(script("build.py")).hexdigest()
    argv = ["env", f"HGAUTOMATION_BUILD_RECIPE={recipe}", python, "-", f"{WORK}/src",
            BUILD_CACHE, plan.mode or "default",
            *(f"--{e}" for e in plan.extras), *(["--rebuild"] if rebuild else [])]
    lines: list[str] = []
    status = conn.run(argv, stdin=script("build.py"), prefix=prefix, check=False, sink=lines)
    found = _BUILD_LINE.match(lines[-1]) if lines else None
    if status != 0 or found is None:
        raise errors.RemoteCommandError(
            f"{conn.target}: building the revision failed (exit {status})"
            + (f": {lines[-1]}" if lines else ""),
            hint="its output is above; --full-install lets run-tests.py build instead",
            command="build.py", status=status, output_tail="\n".join(lines[-20:]))
    return BuildOutcome(found.group(1), found.group(2), float(found.group(3)))


# -- running the harness --------------------------------------------------------------

def test_command(python: str, flags: Sequence[str], shard: tuple[int, int] | None,
                 local: bool = False) -> list[str]:
    """The argv that runs the test harness in ``/hgwork/src/tests``.

    It gets no stdin, so the communicator stops its whole process group when the
    connection goes away (Ctrl-C, SIGTERM, a killed tool). ``local``: test the
    work tree's build (``--local``). Otherwise run-tests.py pip-installs the
    revision, from the host's wheelhouse of build requirements when it has one.
    """
    args = [python, "run-tests.py", "--json"]
    if local and "--local" not in flags and "-l" not in flags:
        args.append("--local")
    if shard is not None and shard[1] > 1:
        args += ["--shard-index", str(shard[0]), "--shard-total", str(shard[1])]
    args += list(flags)
    wrapper = ('cd "$1" && rm -f report.json && shift && '
               f'if [ -d {WHEELHOUSE} ]; then export PIP_FIND_LINKS={WHEELHOUSE}; fi && '
               'exec "$@"')
    return ["sh", "-c", wrapper, "sh", TESTS_DIR, "env", f"TMPDIR={WORK}/tmp", *args]


def run_tests(conn: ssh.Connection, python: str, flags: Sequence[str],
              shard: tuple[int, int] | None = None, prefix: str = "",
              local: bool = False) -> int:
    """Run the harness and return its exit status (streamed to the console)."""
    return conn.run(test_command(python, flags, shard, local), check=False, prefix=prefix)


def fetch_report(conn: ssh.Connection, local: Path) -> bool:
    """Copy the harness's JSON report to ``local``; False when there is none."""
    if not conn.exists(REPORT):
        return False
    local.parent.mkdir(parents=True, exist_ok=True)
    conn.get(REPORT, local)
    return True


# -- reports -------------------------------------------------------------------------

@dataclass
class Report:
    """Outcome of one or several harness runs, merged."""

    results: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Report:
        """Parse run-tests.py's ``report.json`` ("testreport =" followed by JSON)."""
        text = path.read_text(encoding="utf-8", errors="replace").lstrip()
        if text.startswith("testreport"):
            text = text.partition("=")[2]
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise errors.ArtifactError(f"cannot parse test report {path}: {exc}") from exc
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            raise errors.ArtifactError(f"unexpected test report format in {path}")
        return cls(results=data)

    def merge(self, other: Report) -> None:
        self.results.update(other.results)

    def names(self, outcome: str) -> list[str]:
        return sorted(n for n, r in self.results.items() if r.get("result") == outcome)

    @property
    def passed(self) -> list[str]:
        return self.names("success")

    @property
    def failed(self) -> list[str]:
        return self.names("failure")

    @property
    def skipped(self) -> list[str]:
        return self.names("skip")

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.results, indent=2, sort_keys=True) + "\n")


# -- provisioning and checks -----------------------------------------------------------

def provision(conn: ssh.Connection, user: str, public_key: str, pythons: Sequence[str],
              mercurial_requirement: str = "mercurial", prefix: str = "",
              pip_index_url: str | None = None, clone_url: str | None = None,
              rust: bool = True) -> None:
    """Run the Debian/Ubuntu bootstrap script as root on the connected host.

    ``clone_url``: clone that repository into an empty ``/hgdev/src`` (images bake in
    Mercurial's history, so runs push only what the public repository lacks); the
    clone's per-Python test requirements are then installed too. ``rust``: the
    pinned Rust toolchain.
    """
    remote_key = f"/tmp/hgautomation-key-{int(time.time())}.pub"
    with_sudo = conn.output(["id", "-u"]).strip() != "0"
    data = public_key.strip().encode() + b"\n"
    conn.putfo(io.BytesIO(data), remote_key, size=len(data))
    try:
        run_script(conn, "bootstrap-debian.sh", user, remote_key, ",".join(pythons),
                   mercurial_requirement, pip_index_url or "", clone_url or "",
                   "rust" if rust else "", prefix=prefix, sudo=with_sudo)
    finally:
        conn.run(["rm", "-f", remote_key], check=False, quiet=True)
    if clone_url:
        install_test_requirements(conn, user, pip_index_url, prefix=prefix)


def install_test_requirements(conn: ssh.Connection, user: str,
                              pip_index_url: str | None = None, prefix: str = "") -> None:
    """The checkout's per-Python test requirements (from ``/hgdev/src``'s tip) into each
    pyenv Python, as ``user``; what cannot be installed is listed, not fatal."""
    conn.run(["sudo", "-n", "-u", user, "-H", "bash", "-s", "--", pip_index_url or ""],
             stdin=script("python-requirements.sh"), prefix=prefix)


@dataclass(frozen=True)
class CheckItem:
    status: str  # "ok", "missing", "info"
    required: bool
    item: str
    detail: str


# check-host.sh's last line: the check ran to its end (no verdict is no pass).
CHECK_END = "check-host: complete"
CHECK_TIMEOUT = 120.0  # seconds for check-host.sh (a few on a healthy host)


def check(conn: ssh.Connection) -> list[CheckItem]:
    """Every contract item, as reported by ``check-host.sh`` plus an SFTP probe.

    A run of the script that does not end with its ``CHECK_END`` line checked
    nothing: HostContractError, with the last line it printed.
    """
    items = []
    try:
        conn.sftp.stat(".")
        items.append(CheckItem("ok", True, "sftp", "subsystem available"))
    except (errors.HgAutomationError, OSError) as exc:
        items.append(CheckItem("missing", True, "sftp", str(exc)))
    lines: list[str] = []
    run_script(conn, "check-host.sh", quiet=True, sink=lines, timeout=CHECK_TIMEOUT)
    if not lines or lines[-1] != CHECK_END:
        raise errors.HostContractError(
            f"{conn.target}: the contract check did not run to its end ("
            + (f"last output: {lines[-1][:200]}" if lines else "no output") + ")",
            hint="something in the host's shell startup (~/.bashrc, BASH_ENV) ends or "
                 "silences bash before the check runs")
    for line in lines[:-1]:
        parts = line.split("\t")
        if len(parts) == 4:
            items.append(CheckItem(parts[0], parts[1] == "required", parts[2], parts[3]))
    return items
