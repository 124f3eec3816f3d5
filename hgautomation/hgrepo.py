"""Local Mercurial: resolve a revision, push it over ssh with a temporary config, diffs.

The ``hg`` used is the one on PATH or ``--hg``; it runs with ``HGPLAIN=1`` so the
user's aliases and defaults cannot change its output.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hgautomation import console, errors, ssh

REMOTE_HG = "/hgdev/venv-bootstrap/bin/hg"
REMOTE_CLONE = "/hgdev/src"
PUSH_TIMEOUT = 3600
NULL_NODE = "0" * 40


@dataclass(frozen=True)
class LocalRepo:
    """A local checkout and the ``hg`` executable to drive it with."""

    root: Path
    hg: str = "hg"

    def command(self, *args: str) -> list[str]:
        return [self.hg, "--cwd", str(self.root), *args]

    def run(self, *args: str, timeout: float = 300, check: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        full_env = dict(os.environ, HGPLAIN="1", **(env or {}))
        try:
            result = subprocess.run(self.command(*args), capture_output=True, check=False,
                                    env=full_env, timeout=timeout, stdin=subprocess.DEVNULL)
        except FileNotFoundError as exc:
            import shutil

            found = shutil.which(self.hg)
            if found:  # it exists: what is missing is the interpreter its #! line names
                raise errors.ConfigurationError(
                    f"cannot run Mercurial: {found}: its interpreter (#! line) is missing",
                    hint="reinstall Mercurial, or put another hg first on PATH") from exc
            raise errors.ConfigurationError(
                f"cannot run Mercurial: {self.hg!r} not found",
                hint="is Mercurial installed and on PATH?") from exc
        except OSError as exc:  # not executable, a directory, a bad interpreter line
            where = exc.filename if exc.filename and exc.filename != self.hg else None
            raise errors.ConfigurationError(
                f"cannot run Mercurial: {self.hg!r}: {exc.strerror or exc}"
                + (f" ({where})" if where else ""),
                hint="is the hg on PATH (or --hg) an executable file?") from exc
        except subprocess.TimeoutExpired as exc:
            raise errors.WaitTimeout(
                f"'hg {' '.join(args[:2])}' did not finish within {timeout:.0f}s") from exc
        if check and result.returncode != 0:
            raise errors.LocalRepoError(_error_line(result.stderr) or
                                        f"hg {args[0]} exited {result.returncode}")
        return result


def _last_line(data: bytes) -> str:
    lines = [ln for ln in data.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1].strip() if lines else ""


def _error_line(data: bytes) -> str:
    """hg's reason for failing: its ``abort:`` or ``hg: parse error`` line, else the last line.

    (A parse error is followed by lines that only point at the position.)
    """
    for line in data.decode("utf-8", "replace").splitlines():
        if line.startswith(("abort: ", "hg: ")):
            return line.removeprefix("abort: ").removeprefix("hg: ").strip()
    return _last_line(data)


@dataclass(frozen=True)
class Revision:
    """One changeset a revset names: its local number, full node and phase."""

    rev: int
    node: str
    phase: str


def _log(repo: LocalRepo, revision: str, template: str) -> str:
    result = repo.run("log", "-r", revision, "-T", template, check=False)
    if result.returncode != 0:
        raise errors.LocalRepoError(
            f"cannot resolve revision {revision!r} in {repo.root}: "
            f"{_error_line(result.stderr)}")
    return result.stdout.decode()


def resolve_revset(repo: LocalRepo, revset: str) -> list[Revision]:
    """Every changeset ``revset`` names, in the revset's order (possibly none)."""
    lines = _log(repo, revset, "{rev} {phase} {node}\\n").splitlines()
    return [Revision(int(rev), node, phase)
            for rev, phase, node in (line.split() for line in lines if line.strip())]


def resolve_revision(repo: LocalRepo, revision: str) -> str:
    """The full node of ``revision`` (exactly one changeset) or a LocalRepoError."""
    nodes = _log(repo, revision, "{node}\\n").split()
    if len(nodes) != 1:
        raise errors.LocalRepoError(
            f"revision {revision!r} names {len(nodes)} changesets in {repo.root}; "
            "name exactly one")
    if nodes[0] == NULL_NODE:
        raise errors.LocalRepoError(
            f"revision {revision!r} is the null revision: {repo.root} has no changeset "
            "checked out", hint="commit first, or name a revision with -r")
    return nodes[0]


def working_copy_diff(repo: LocalRepo) -> bytes:
    """Uncommitted changes of tracked files as a git-style diff (binary-safe)."""
    return repo.run("diff", "--git").stdout


@dataclass
class PushResult:
    pushed: bool  # False when the remote already had everything
    changesets: int
    output: list[str]


_ADDED = re.compile(r"added (\d+) changesets?")


def push(repo: LocalRepo, node: str, target: ssh.Target, known_hosts: Path,
         *, remote_path: str = REMOTE_CLONE, remote_hg: str = REMOTE_HG,
         extra_known_hosts: Sequence[Path] = (), label: str = "") -> PushResult:
    """``hg push -f -r NODE -r 'file(.hgtags)'`` to ``target`` over OpenSSH.

    A temporary ssh config pins the host key and identity; exit 1 (nothing to
    push) counts as success.
    """
    with tempfile.TemporaryDirectory(prefix="hgautomation-ssh-") as tmp:
        config = Path(tmp) / "ssh_config"
        config.write_text(ssh.openssh_config(target, known_hosts, extra_known_hosts))
        ssh_cmd = f"ssh -F {shlex.quote(str(config))}"
        url = f"ssh://{ssh.ALIAS}/{remote_path}"
        args = ["--config", f"ui.ssh={ssh_cmd}", "--config", f"ui.remotecmd={remote_hg}",
                "push", "-v", "-f", "-r", node, "-r", "file(.hgtags)", url]
        result = repo.run(*args, timeout=PUSH_TIMEOUT, check=False)
    text = (result.stdout + result.stderr).decode("utf-8", "replace")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    out = console.get()
    for line in lines:
        out.detail(f"{label}{line}")
    if result.returncode == 1:  # hg's "nothing to push"
        return PushResult(False, 0, lines)
    if result.returncode != 0:
        raise errors.RemoteCommandError(
            f"hg push to {target} failed (exit {result.returncode}): "
            f"{_last_line(result.stderr) or _last_line(result.stdout)}",
            command="hg push", status=result.returncode, output_tail="\n".join(lines[-20:]))
    added = sum(int(m.group(1)) for m in _ADDED.finditer(text))
    return PushResult(True, added, lines)
