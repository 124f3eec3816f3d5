"""SSH key pairs: the one generator (cryptography, in-process) and the one way to store them.

Used for the host keys injected into instances (``ssh.hostkeys``), the per-owner
EC2 key pairs (``aws.keys``) and the tool's key for static hosts (``hosts``). A
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
# How the private key is written: OpenSSH's own format, or PKCS#1 PEM ("BEGIN RSA
# PRIVATE KEY", RSA only), the one `aws ec2 get-password-data --priv-launch-key` reads.
OPENSSH = "openssh"
PKCS1 = "pkcs1"
_PKCS1_HEADER = b"-----BEGIN RSA PRIVATE KEY-----"


@dataclass(frozen=True)
class KeyPair:
    """A generated key: the private key text (OpenSSH or PKCS#1 PEM) and its public line."""

    private: str
    public: str  # "ssh-ed25519 AAAA... [comment]"


def generate(key_type: str = ED25519, *, comment: str = "", bits: int = RSA_BITS,
             private_format: str = OPENSSH) -> KeyPair:
    """A fresh key pair of ``key_type`` (ed25519, or rsa of ``bits`` bits)."""
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    if key_type == ED25519:
        key = ed25519.Ed25519PrivateKey.generate()
    elif key_type == RSA:
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    else:
        raise ValueError(f"unknown key type {key_type!r} (known: {', '.join(KEY_TYPES)})")
    return _pair(key, comment, private_format)


def _pair(key, comment: str, private_format: str = OPENSSH) -> KeyPair:
    from cryptography.hazmat.primitives import serialization

    if private_format == PKCS1:
        # TraditionalOpenSSL of an RSA key is PKCS#1 ("BEGIN RSA PRIVATE KEY").
        fmt = serialization.PrivateFormat.TraditionalOpenSSL
    elif private_format == OPENSSH:
        fmt = serialization.PrivateFormat.OpenSSH
    else:
        raise ValueError(f"unknown private key format {private_format!r}")
    private = key.private_bytes(serialization.Encoding.PEM, fmt,
                                serialization.NoEncryption()).decode("ascii")
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode("ascii")
    return KeyPair(private, f"{public} {comment}" if comment else public)


def public_path(path: Path) -> Path:
    """Where the public half of the private key at ``path`` lives (``<path>.pub``)."""
    return path.with_name(path.name + ".pub")


def write(pair: KeyPair, path: Path) -> None:
    """The private key at ``path`` (0600, atomically), the public line at ``path``.pub."""
    write_private(path, pair.private.encode("ascii"))
    write_public(pair.public, path)


def write_public(public: str, path: Path) -> None:
    """The public line beside the private key at ``path``, unless it already says so."""
    pub = public_path(path)
    try:
        if not pub.exists() or pub.read_text().split()[:2] != public.split()[:2]:
            pub.write_text(public + "\n")
    except OSError as exc:
        raise errors.ConfigurationError(f"cannot write {pub}: {exc.strerror}") from exc


def load_or_create(path: Path, key_type: str = ED25519, *, comment: str = "",
                   bits: int = RSA_BITS, private_format: str = OPENSSH) -> tuple[str, bool]:
    """The public line of the private key at ``path``, generating and writing one if
    absent; True when it was generated. A readable key is tightened to 0600; an RSA
    key asked for must be one of ``bits`` bits in ``private_format``."""
    if not path.exists():
        pair = generate(key_type, comment=comment, bits=bits, private_format=private_format)
        write(pair, path)
        return pair.public, True
    key = _load(path)
    if key_type == RSA:
        _check_rsa(path, key, bits, private_format)
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    public = _pair(key, comment).public
    write_public(public, path)
    return public, False


def _load(path: Path):
    from cryptography.hazmat.primitives import serialization

    data = path.read_bytes()
    try:
        if data.lstrip().startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----"):
            return serialization.load_ssh_private_key(data, password=None)
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise errors.ConfigurationError(
            f"cannot read private key {path}: {exc}",
            hint="move it away; a new key pair is then generated") from exc


def _check_rsa(path: Path, key, bits: int, private_format: str) -> None:
    """An RSA key of the wrong size or file format would fail later, remotely: say so now."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size != bits:
        what = f"an RSA key of {key.key_size} bits" if isinstance(key, rsa.RSAPrivateKey) \
            else "not an RSA key"
        raise errors.ConfigurationError(
            f"private key {path} is {what}; an RSA key of {bits} bits is needed",
            hint="move it away; a new key pair is then generated")
    if private_format == PKCS1 and not path.read_bytes().lstrip().startswith(_PKCS1_HEADER):
        raise errors.ConfigurationError(
            f"private key {path} is not in PKCS#1 PEM form (BEGIN RSA PRIVATE KEY)",
            hint="move it away; a new key pair is then generated")
