"""Host keys: generated for our instances, pinned, verified; unknown or changed keys refused.

The tool generates each instance's host key (:func:`generate_host_key`): the private
half travels in the instance's user data, the public half is pinned before the first
connection, so nothing is ever accepted on trust. Keys are checked against
``known_hosts`` (the tool's file, the only one ever written, and only with
``accept_new``) plus any ``extra_known_hosts`` (read-only). Failures are raised with
their data (host name, offered and pinned key) for callers to branch on.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hgautomation import console, errors

USER_KNOWN_HOSTS = Path("~/.ssh/known_hosts")


@dataclass(frozen=True)
class HostKey:
    """A generated host key: OpenSSH private key text and its public line."""

    private_openssh: str
    public: str  # "ssh-ed25519 AAAA..."


def generate_host_key() -> HostKey:
    """A fresh ed25519 host key (cryptography, no ssh-keygen subprocess)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode("ascii")
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode("ascii")
    return HostKey(private, public)


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
    """Pin ``key_line`` ("type base64") for ``name`` in ``known_hosts``, replacing old pins."""
    known_hosts = Path(known_hosts)
    kept = []
    if known_hosts.exists():
        for line in known_hosts.read_text().splitlines():
            fields = line.split()
            if fields and name in fields[0].split(","):
                continue
            kept.append(line)
    kept.append(f"{name} {' '.join(key_line.split()[:2])}")
    known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = known_hosts.with_name(f".{known_hosts.name}.tmp")
    tmp.write_text("\n".join(kept) + "\n")
    os.replace(tmp, known_hosts)


def load_known_hosts(client, known_hosts: Path, extra_known_hosts: Iterable[Path],
                     accept_new: bool) -> None:
    """Give the paramiko ``client`` the pinned keys and the policy for unknown hosts."""
    for extra in extra_known_hosts:
        extra = Path(extra).expanduser()
        if extra.exists():
            client.load_system_host_keys(str(extra))  # read-only
    if known_hosts.exists():
        client.load_host_keys(str(known_hosts))
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
