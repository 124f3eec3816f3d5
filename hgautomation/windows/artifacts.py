"""Copy build artifacts back from a Windows host's dist directory, and report them.

OpenSSH for Windows names ``C:\\hgdev\\src\\dist`` as ``/C:/hgdev/src/dist`` over
SFTP; :func:`sftp_path` does that translation. The remote directory is a parameter
so the same code serves a POSIX directory (the tests' loopback sshd).
"""

from __future__ import annotations

import fnmatch
import stat
from collections.abc import Sequence
from pathlib import Path

from hgautomation import console
from hgautomation.artifacts import Artifact
from hgautomation.errors import ArtifactError, HostConnectionError


def sftp_path(path: str) -> str:
    r"""SFTP form of a path: C:\hgdev\src\dist -> /C:/hgdev/src/dist; POSIX paths unchanged."""
    if len(path) >= 2 and path[1] == ":" and path[0].isalpha():
        return "/" + path[0].upper() + ":" + path[2:].replace("\\", "/")
    return path


def newest_match(conn, remote_dir: str, pattern: str) -> tuple[str, int]:
    """(name, size) of the newest regular file in ``remote_dir`` matching ``pattern``.

    Matching ignores case, as Windows file names do.
    """
    directory = sftp_path(remote_dir)
    try:
        entries = conn.sftp.listdir_attr(directory)
    except FileNotFoundError as exc:
        raise ArtifactError(f"no {pattern} on {conn.target}: {remote_dir} does not exist") \
            from exc
    except OSError as exc:
        raise HostConnectionError(f"{conn.target}: cannot list {remote_dir}: {exc}") from exc
    matches = [e for e in entries
               if fnmatch.fnmatchcase(e.filename.lower(), pattern.lower())
               and e.st_mode is not None and stat.S_ISREG(e.st_mode)]
    if not matches:
        raise ArtifactError(f"no artifact matching {pattern} in {remote_dir} on {conn.target}")
    newest = max(matches, key=lambda e: (e.st_mtime or 0, e.filename))
    return newest.filename, newest.st_size or 0


def fetch(conn, remote_dir: str, pattern: str, local_dir: Path,
          expected: str | None = None) -> Artifact:
    """Copy the newest file matching ``pattern`` from ``remote_dir`` into ``local_dir``.

    With ``expected``, a file of another name is an error: the release process
    looks for exactly that name.
    """
    name, _size = newest_match(conn, remote_dir, pattern)
    if expected is not None and name != expected:
        raise ArtifactError(
            f"expected {expected} in {remote_dir} on {conn.target}, found {name} instead")
    local_dir = Path(local_dir)
    local_dir.mkdir(parents=True, exist_ok=True)
    local = local_dir / name
    remote = sftp_path(remote_dir).rstrip("/") + "/" + name
    conn.get(remote, local, description=name)  # .part + rename: no half file on failure
    return Artifact.of(local)


def report(artifacts: Sequence[Artifact], title: str | None = "artifacts") -> None:
    """The closing table: name, size, sha256 of each artifact."""
    con = console.get()
    con.table(["artifact", "size", "sha256"],
              [(a.name, a.size, con.digest(a.sha256)) for a in artifacts], title=title)
