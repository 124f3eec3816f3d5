"""Host keys the tool generates for the instances it starts.

The private half travels in the instance's user data and becomes sshd's only
host key; the public half is pinned before the instance exists, so the first
connection is verified and nothing is ever accepted on trust.
"""

from __future__ import annotations

from dataclasses import dataclass


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
