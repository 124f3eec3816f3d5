"""SSH key pairs: the one generator (cryptography, in-process) and the one way to store them.

Used for the host keys injected into instances (``ssh.hostkeys``), the per-owner
EC2 key pair (``aws.keys``) and the tool's key for static hosts (``hosts``). A
private key is written 0600 from the start and atomically (``state.write_private``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hgautomation import errors
from hgautomation.state import write_private

ED25519 = "ed25519"
RSA = "rsa"
KEY_TYPES = (ED25519, RSA)
RSA_BITS = 4096


@dataclass(frozen=True)
class KeyPair:
    """A generated key: OpenSSH private key text and its public line."""

    private_openssh: str
    public: str  # "ssh-ed25519 AAAA... [comment]"


def generate(key_type: str = ED25519, *, comment: str = "") -> KeyPair:
    """A fresh key pair of ``key_type`` (ed25519, or rsa of RSA_BITS bits)."""
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    if key_type == ED25519:
        key = ed25519.Ed25519PrivateKey.generate()
    elif key_type == RSA:
        key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    else:
        raise ValueError(f"unknown key type {key_type!r} (known: {', '.join(KEY_TYPES)})")
    return _pair(key, comment)


def _pair(key, comment: str) -> KeyPair:
    from cryptography.hazmat.primitives import serialization

    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode("ascii")
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode("ascii")
    return KeyPair(private, f"{public} {comment}" if comment else public)


def public_path(path: Path) -> Path:
    """Where the public half of the private key at ``path`` lives (``<path>.pub``)."""
    return path.with_name(path.name + ".pub")


def write(pair: KeyPair, path: Path) -> None:
    """The private key at ``path`` (0600, atomically), the public line at ``path``.pub."""
    write_private(path, pair.private_openssh.encode("ascii"))
    write_public(pair.public, path)


def write_public(public: str, path: Path) -> None:
    """The public line beside the private key at ``path``, unless it already says so."""
    pub = public_path(path)
    try:
        if not pub.exists() or pub.read_text().split()[:2] != public.split()[:2]:
            pub.write_text(public + "\n")
    except OSError as exc:
        raise errors.ConfigurationError(f"cannot write {pub}: {exc.strerror}") from exc


def load_or_create(path: Path, key_type: str = ED25519, *,
                   comment: str = "") -> tuple[str, bool]:
    """The public line of the private key at ``path``, generating and writing one if
    absent; True when it was generated. A readable key is tightened to 0600."""
    from cryptography.hazmat.primitives import serialization

    if not path.exists():
        pair = generate(key_type, comment=comment)
        write(pair, path)
        return pair.public, True
    try:
        key = serialization.load_ssh_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise errors.ConfigurationError(
            f"cannot read private key {path}: {exc}",
            hint="move it away; a new key pair is then generated") from exc
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    public = _pair(key, comment).public
    write_public(public, path)
    return public, False
