"""hgautomation.keygen: the one key generator, its files, and its users (no ssh-keygen)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from hgautomation import errors, hosts, keygen
from hgautomation.ssh import hostkeys

PACKAGE = Path(__file__).resolve().parents[2] / "hgautomation"


def _public_of(private_openssh: str | bytes) -> str:
    data = private_openssh.encode() if isinstance(private_openssh, str) else private_openssh
    key = serialization.load_ssh_private_key(data, password=None)
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode()


def test_ed25519_is_the_default_and_the_halves_match():
    pair = keygen.generate()
    assert pair.public.startswith("ssh-ed25519 ") and len(pair.public.split()) == 2
    assert _public_of(pair.private) == pair.public
    assert keygen.generate().public != pair.public


def test_rsa_keys_have_4096_bits():
    pair = keygen.generate(keygen.RSA, comment="windows")
    key = serialization.load_ssh_private_key(pair.private.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 4096
    assert pair.public.startswith("ssh-rsa ") and pair.public.endswith(" windows")


def test_rsa_2048_in_pkcs1_pem_for_the_aws_cli():
    """The Windows launch key: ``aws ec2 get-password-data --priv-launch-key`` reads only
    PKCS#1 ("BEGIN RSA PRIVATE KEY")."""
    pair = keygen.generate(keygen.RSA, bits=2048, private_format=keygen.PKCS1)
    assert pair.private.startswith("-----BEGIN RSA PRIVATE KEY-----\n")
    key = serialization.load_pem_private_key(pair.private.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert pair.public.split()[0] == "ssh-rsa"
    with pytest.raises(ValueError, match="unknown private key format"):
        keygen.generate(private_format="ppk")


def test_load_or_create_keeps_an_rsa_key_of_the_asked_size_and_form(tmp_path):
    path = tmp_path / "k"
    public, created = keygen.load_or_create(path, keygen.RSA, bits=2048,
                                            private_format=keygen.PKCS1)
    assert created and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keygen.load_or_create(path, keygen.RSA, bits=2048,
                                 private_format=keygen.PKCS1) == (public, False)
    with pytest.raises(errors.ConfigurationError, match="RSA key of 2048 bits; an RSA key "
                                                        "of 4096 bits is needed"):
        keygen.load_or_create(path, keygen.RSA, bits=4096)


def test_unknown_key_type_is_refused():
    with pytest.raises(ValueError, match="unknown key type 'dsa'"):
        keygen.generate("dsa")


def test_write_is_private_from_the_start_and_leaves_no_temporary(tmp_path, monkeypatch):
    modes = []
    real_replace = os.replace

    def replace(src, dst):
        modes.append(stat.S_IMODE(os.stat(src).st_mode))  # before it has its name
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    pair = keygen.generate(comment="me")
    path = tmp_path / "keys" / "k"
    keygen.write(pair, path)
    assert modes == [0o600]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == pair.private
    assert (tmp_path / "keys" / "k.pub").read_text() == pair.public + "\n"
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["k", "k.pub"]


def test_load_or_create_reuses_and_tightens_an_existing_key(tmp_path):
    path = tmp_path / "k"
    public, created = keygen.load_or_create(path)
    assert created and _public_of(path.read_bytes()) == public
    path.chmod(0o644)
    (tmp_path / "k.pub").unlink()
    again, created = keygen.load_or_create(path)
    assert (again, created) == (public, False)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (tmp_path / "k.pub").read_text() == public + "\n"


def test_an_unreadable_key_is_a_configuration_error(tmp_path):
    (tmp_path / "k").write_text("not a key\n")
    with pytest.raises(errors.ConfigurationError, match="cannot read private key"):
        keygen.load_or_create(tmp_path / "k")


def test_host_keys_come_from_the_generator():
    key = hostkeys.generate_host_key()
    assert isinstance(key, keygen.KeyPair) and key.public.startswith("ssh-ed25519 ")
    assert _public_of(key.private) == key.public


def test_the_static_host_key_is_made_in_process(tmp_path, monkeypatch):
    """The tool's key for static hosts once came from an ssh-keygen subprocess."""
    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"subprocess started: {args!r}")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    monkeypatch.setattr(subprocess, "Popen", no_subprocess)
    path = hosts.tool_key(tmp_path / "keys", create=True)
    assert path == tmp_path / "keys" / hosts.TOOL_KEY_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    public = (tmp_path / "keys" / f"{hosts.TOOL_KEY_NAME}.pub").read_text().split()
    assert public[0] == "ssh-ed25519" and public[2:] == ["hgautomation"]
    assert public[:2] == _public_of(path.read_bytes()).split()
    before = path.read_bytes()
    assert hosts.tool_key(tmp_path / "keys", create=True) == path
    assert path.read_bytes() == before  # made once, then kept


def test_no_ssh_keygen_in_the_package():
    found = [str(p.relative_to(PACKAGE)) for p in sorted(PACKAGE.rglob("*"))
             if p.is_file() and p.suffix != ".pyc" and b"ssh-keygen" in p.read_bytes()]
    assert found == []
