"""Layout of the local state directory (``~/.hgautomation`` by default).

Everything the tool keeps between runs lives here: private keys (0600),
pinned host keys, per-run known_hosts files, results and backups.
Nothing outside this directory (e.g. ``~/.ssh``) is ever written.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hgautomation.errors import ConfigurationError

DEFAULT_STATE_PATH = Path("~/.hgautomation")


_CHECKED: set[Path] = set()  # state directories proven writable by this process


def local_path(text: str | os.PathLike, what: str) -> Path:
    """``text`` with ``~``/``~user`` expanded, made absolute against the working directory.

    ``~unknownuser``, or ``~`` for a user with neither ``HOME`` nor a passwd entry, is a
    ConfigurationError naming ``what`` (e.g. ``--state-path``); so is a NUL byte.
    """
    raw = os.fspath(text)
    try:
        return Path(raw).expanduser().absolute()
    except RuntimeError:  # pathlib: "Could not determine home directory."
        head = str(raw).split(os.sep, 1)[0]
        if head == "~":
            check_home()
        raise ConfigurationError(f"{what} {raw}: no user {head[1:]!r} to expand {head!r}",
                                 hint="give an absolute path") from None
    except (OSError, ValueError) as exc:  # a NUL byte; a working directory gone
        raise ConfigurationError(f"{what}: not a usable path ({exc})") from None


def check_home() -> None:
    """The tool reads ~/.ssh and ~/.aws and keeps its state in ~/.hgautomation: a user
    with neither ``HOME`` nor a passwd entry is exit 3, before anything starts."""
    if os.path.expanduser("~") != "~":
        return
    who = f"user id {os.getuid()}" if hasattr(os, "getuid") else "this user"
    raise ConfigurationError(f"no home directory: HOME is unset and {who} has no "
                             "passwd entry", hint="set HOME")


def check_writable(directory: Path, what: str) -> None:
    """Write and remove a small file in *directory*: unreadable, read-only or full is exit 3."""
    try:
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".hgautomation-probe-")
        try:
            os.write(fd, b"x" * 4096)
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise ConfigurationError(f"{what} {directory} is not writable: {exc.strerror}") \
            from exc


@dataclass(frozen=True)
class StateDir:
    """Paths inside the state directory; :meth:`ensure` creates it 0700."""

    root: Path

    @classmethod
    def at(cls, path: str | os.PathLike | None) -> StateDir:
        return cls(local_path(path or DEFAULT_STATE_PATH, "state directory"))

    def ensure(self) -> StateDir:
        """Create the directory (0700) and prove it writable, once per process."""
        if self.root in _CHECKED:
            return self
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot create state directory {self.root}: {exc.strerror}") from exc
        if not self.root.is_dir():
            raise ConfigurationError(f"state path {self.root} is not a directory")
        check_writable(self.root, "state directory")
        _CHECKED.add(self.root)
        return self

    def subdir(self, name: str) -> Path:
        path = self.root / name
        self.ensure()
        try:
            path.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(f"cannot create {path}: {exc.strerror}") from exc
        return path

    @property
    def keys(self) -> Path:
        return self.subdir("keys")

    @property
    def known_hosts(self) -> Path:
        """Host keys the user accepted for static hosts (never ~/.ssh/known_hosts)."""
        self.ensure()
        return self.root / "known_hosts"

    @property
    def runs(self) -> Path:
        return self.subdir("runs")

    @property
    def results(self) -> Path:
        return self.subdir("results")

    @property
    def logs(self) -> Path:
        return self.subdir("logs")

    @property
    def backups(self) -> Path:
        return self.subdir("backups")

    @contextlib.contextmanager
    def run_dir(self, prefix: str) -> Iterator[Path]:
        """A private directory under ``runs/`` for one run (known_hosts), removed after."""
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=self.runs))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)


def write_private(path: Path, data: bytes) -> None:
    """Write a secret atomically, readable only by the owner from the start."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as exc:
        raise ConfigurationError(f"cannot write {path}: {exc.strerror}") from exc
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise ConfigurationError(f"cannot write {path}: {exc.strerror}") from exc
        raise

