"""Host keys: generated for our instances, pinned, verified; unknown or changed keys refused.

The tool generates each instance's host key (:func:`generate_host_key`): the private
half travels in the instance's user data, the public half is pinned before the first
connection, so nothing is ever accepted on trust. Keys are checked against
``known_hosts`` (the tool's file, the only one ever written, and only with
``accept_new``) plus any ``extra_known_hosts`` (read-only). Failures are raised with
their data (host name, offered and pinned key) for callers to branch on.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from hgautomation import console, errors, keygen

USER_KNOWN_HOSTS = Path("~/.ssh/known_hosts")


# A generated host key: OpenSSH private key text and its public line.
HostKey = keygen.KeyPair


def generate_host_key() -> HostKey:
    """A fresh ed25519 host key (:func:`hgautomation.keygen.generate`)."""
    return keygen.generate(keygen.ED25519)


def fingerprint(key) -> str:
    """OpenSSH-style SHA256 fingerprint of a paramiko key."""
    import base64
    import hashlib

    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _key_text(key) -> str:
    """``"type SHA256:..."``: how a key is named in messages and error data."""
    return f"{key.get_name()} {fingerprint(key)}"


def pin_host_key(known_hosts: Path, name: str, key_line: str) -> None:
    """Pin ``key_line`` ("type base64") for ``name`` in ``known_hosts``, replacing old pins.

    Other names on a line pinned for several (``box,192.0.2.1 ...``) keep their pin.
    The file is replaced atomically through a temporary file of its own, so
    concurrent pins (parallel shards) never write the same temporary file.
    """
    import tempfile

    known_hosts = Path(known_hosts)
    kept = []
    try:
        if known_hosts.exists():
            for line in known_hosts.read_text(errors="replace").splitlines():
                fields = line.split()
                names = fields[0].split(",") if fields else []
                if name in names:
                    others = [n for n in names if n != name]
                    if not others:
                        continue
                    line = " ".join([",".join(others), *fields[1:]])
                kept.append(line)
        kept.append(f"{name} {' '.join(key_line.split()[:2])}")
        known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=known_hosts.parent, prefix=f".{known_hosts.name}.")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write("\n".join(kept) + "\n")
            os.replace(tmp, known_hosts)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise errors.ConfigurationError(
            f"cannot pin the host key of {name} in {known_hosts}: {exc.strerror}") from exc


def check_known_hosts(known_hosts: Path, *, writable: bool) -> None:
    """Before connecting: the tool's known_hosts is a readable file (writable if it is
    to take a new pin), so a local fault is exit 3, not a connection failure."""
    known_hosts = Path(known_hosts)
    if known_hosts.exists() and not known_hosts.is_file():
        raise errors.ConfigurationError(f"{known_hosts} is not a file (known_hosts)")
    if known_hosts.exists() and not os.access(known_hosts, os.R_OK):
        raise errors.ConfigurationError(f"cannot read {known_hosts} (known_hosts)")
    if writable:
        where = known_hosts if known_hosts.exists() else known_hosts.parent
        if where.exists() and not os.access(where, os.W_OK):
            raise errors.ConfigurationError(
                f"cannot write {where}: a new host key could not be pinned",
                hint="fix its permissions or use --state-path")


def check_extra_known_hosts(paths: Iterable[Path]) -> None:
    """Before connecting: each read-only known_hosts file (UserKnownHostsFile) that
    exists is a regular file (or /dev/null, which configs use to mean none): a FIFO
    or a device would block the read, or never end it."""
    for path in paths:
        path = Path(path).expanduser()
        try:
            mode = path.stat().st_mode
        except OSError:
            continue  # missing or unreadable: skipped (with a warning) when read
        if not stat.S_ISREG(mode) and str(path) != os.devnull:
            raise errors.ConfigurationError(
                f"{path} is not a regular file (UserKnownHostsFile)",
                hint="point UserKnownHostsFile in the ssh config at a file")


def _add_known_hosts(client, path: Path, *, ours: bool) -> None:
    """Add a known_hosts file's keys to ``client``; a malformed line is skipped with a
    warning naming file and line, as OpenSSH does."""
    import paramiko

    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return
    except OSError as exc:
        console.get().warn(f"cannot read {path}: {exc.strerror}; ignoring it")
        return
    keys = client.get_host_keys() if ours else client._system_host_keys
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            entry = paramiko.hostkeys.HostKeyEntry.from_line(text, number)
        except Exception as exc:  # noqa: BLE001 - any unreadable line is skipped
            entry, reason = None, f"{type(exc).__name__}: {exc}"
        else:
            reason = "not a host key line"
        if entry is None or entry.key is None:
            console.get().warn(f"{path}, line {number}: skipped ({reason})")
            continue
        for hostname in entry.hostnames:
            keys.add(hostname, entry.key.get_name(), entry.key)


def load_known_hosts(client, known_hosts: Path, extra_known_hosts: Iterable[Path],
                     accept_new: bool) -> None:
    """Give the paramiko ``client`` the pinned keys and the policy for unknown hosts."""
    for extra in extra_known_hosts:
        _add_known_hosts(client, Path(extra).expanduser(), ours=False)  # read-only
    _add_known_hosts(client, Path(known_hosts), ours=True)
    client.set_missing_host_key_policy(missing_key_policy(known_hosts, accept_new))


def missing_key_policy(known_hosts: Path, accept_new: bool):
    """A paramiko policy: refuse unknown keys, or pin them in ``known_hosts``."""
    import paramiko

    class Policy(paramiko.MissingHostKeyPolicy):
        def missing_host_key(self, client, hostname, key):
            # Only called when nothing at all is pinned under this name (a pinned
            # key of another type is a mismatch in paramiko too).
            if not accept_new:
                raise errors.UnknownHostKeyError(
                    f"unknown host key for {hostname}: {_key_text(key)}",
                    hostname=hostname, offered=_key_text(key),
                    hint="verify it, then pass --accept-new-host-key to pin it")
            pin_host_key(known_hosts, hostname, f"{key.get_name()} {key.get_base64()}")
            console.get().info(f"pinned new host key for {hostname}: "
                               f"{_key_text(key)} in {known_hosts}")

    return Policy()


def key_changed(name: str, offered, expected, known_hosts: Path) -> errors.HostKeyMismatchError:
    """The error for a host offering ``offered`` where ``expected`` is pinned for ``name``."""
    return errors.HostKeyMismatchError(
        f"host key for {name} has changed: server offers {_key_text(offered)}, "
        f"pinned is {_key_text(expected)}",
        hostname=name, offered=_key_text(offered), expected=_key_text(expected),
        hint=f"possible man-in-the-middle; if the host was rebuilt, remove its "
             f"line from {known_hosts}")
