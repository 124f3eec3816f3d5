"""The per-owner key pairs: generated locally, imported to EC2, kept in sync.

``hg-automation-<owner>`` (ed25519) is the owner's SSH key: Linux instances launch
with it, and Windows instances get it through their user data. Windows instances
launch with ``hg-automation-<owner>.windows`` (RSA 2048) instead, because EC2 refuses
ED25519 key pairs for Windows AMIs and encrypts the Administrator password (RDP)
with the launch key pair, which only an RSA key can decrypt. Private keys live 0600
under the state directory's ``keys/``. A mismatch or a half-present pair is
repaired by deleting the remote key and importing the local one again.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

from hgautomation import console, errors, keygen
from hgautomation.aws import tags as T
from hgautomation.aws.session import AWSSession, client_error_code, translate_errors

# "Amazon EC2 supports 2048-bit SSH-2 RSA keys for Linux and Windows instances ...
# ED25519 keys are not supported for Windows instances" (EC2 User Guide,
# create-key-pairs.html).
WINDOWS_RSA_BITS = 2048


@dataclass(frozen=True)
class KeySpec:
    """One of the owner's key pairs: its EC2 name and how its private key is made."""

    name: str
    key_type: str = keygen.ED25519
    bits: int = keygen.RSA_BITS  # RSA only
    private_format: str = keygen.OPENSSH


def key_spec(owner: str, *, windows: bool = False) -> KeySpec:
    """The owner's SSH key pair (ed25519), or with *windows* the RSA 2048 launch key
    pair of Windows instances, stored as PKCS#1 PEM for ``aws ec2 get-password-data
    --priv-launch-key``."""
    if windows:
        return KeySpec(T.windows_key_pair_name(owner), keygen.RSA, WINDOWS_RSA_BITS,
                       keygen.PKCS1)
    return KeySpec(T.key_pair_name(owner))


@dataclass(frozen=True)
class KeyPair:
    """A key pair known to EC2 and present locally."""

    name: str
    private_key_path: Path
    public_key: str  # OpenSSH "ssh-ed25519 AAAA..." / "ssh-rsa AAAA..."


def fingerprints(public_openssh: str) -> set[str]:
    """Every form in which EC2 (or moto) may report the fingerprint of this public key."""
    from cryptography.hazmat.primitives import serialization

    blob = base64.b64decode(public_openssh.split()[1])
    key = serialization.load_ssh_public_key(public_openssh.encode())
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)

    def colon(digest: bytes) -> str:
        return ":".join(f"{b:02x}" for b in digest)

    sha_b64 = base64.b64encode(hashlib.sha256(blob).digest()).decode()
    return {
        sha_b64, sha_b64.rstrip("="), "SHA256:" + sha_b64.rstrip("="),  # EC2: imported ed25519
        colon(hashlib.md5(der).digest()),  # EC2: imported RSA
        colon(hashlib.sha256(der).digest()),  # moto: ed25519
    }


def _same_key(remote: dict, public: str) -> bool:
    if remote.get("PublicKey"):
        return remote["PublicKey"].split()[:2] == public.split()[:2]
    return remote.get("KeyFingerprint", "") in fingerprints(public)


def describe_key_pair(session: AWSSession, name: str) -> dict | None:
    from botocore.exceptions import ClientError

    ec2 = session.client("ec2")
    with translate_errors(f"describe key pair {name}"):
        try:
            pairs = ec2.describe_key_pairs(KeyNames=[name], IncludePublicKey=True)["KeyPairs"]
        except ClientError as exc:
            if client_error_code(exc) == "InvalidKeyPair.NotFound":
                return None
            raise
    return pairs[0] if pairs else None


def ensure_key_pair(session: AWSSession, keys_dir: Path, owner: str, *,
                    windows: bool = False) -> KeyPair:
    """Make the local private key and EC2's key pair exist and match; repair otherwise.

    *windows*: the owner's Windows launch key pair (:func:`key_spec`).
    """
    con = console.get()
    spec = key_spec(owner, windows=windows)
    name = spec.name
    path = keys_dir / name
    public, created_locally = keygen.load_or_create(path, spec.key_type, bits=spec.bits,
                                                    private_format=spec.private_format)
    if created_locally:
        kind = "ed25519" if spec.key_type == keygen.ED25519 else f"RSA {spec.bits}"
        con.detail(f"generated {kind} key {path}")
    remote = describe_key_pair(session, name)
    ec2 = session.client("ec2")
    if remote is not None:
        remote_tags = T.tag_dict(remote.get("Tags"))
        if _same_key(remote, public):
            if not T.is_ours(remote_tags, owner):
                # Same key material (ours), imported by an older version: adopt it.
                with translate_errors(f"tag key pair {name}"):
                    ec2.create_tags(Resources=[remote["KeyPairId"]],
                                    Tags=T.tag_list(T.ours(owner)))
            return KeyPair(name, path, public)
        if not T.is_ours(remote_tags, owner):
            raise errors.AWSError(
                f"key pair {name} exists in EC2 with another key and is not tagged as ours",
                hint="delete it or choose another --owner")
        # One owner used from two machines (or a lost state directory): each run puts
        # its own key back, so the other machine's next launch replaces it again.
        created = remote.get("CreateTime")
        since = f", imported {created:%Y-%m-%d %H:%M} UTC" if hasattr(created, "strftime") else ""
        con.warn(f"key pair {name}: EC2 holds a different key{since} (another machine or "
                 f"state directory using owner {owner!r}); replacing it with {path}.pub "
                 "(give each machine its own --owner to keep both)")
        with translate_errors(f"delete key pair {name}"):
            ec2.delete_key_pair(KeyName=name)
    else:
        con.info(f"key pair {name}: importing {path.name}.pub")
    with translate_errors(f"import key pair {name}"):
        ec2.import_key_pair(KeyName=name, PublicKeyMaterial=public.encode(),
                            TagSpecifications=T.tag_specs("key-pair", T.ours(owner)))
    return KeyPair(name, path, public)
