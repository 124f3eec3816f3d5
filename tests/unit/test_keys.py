"""hgautomation.aws.keys: fingerprints as EC2 reports them; ensure_key_pair (Stubber)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import stat

import pytest
from botocore.stub import ANY
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from hgautomation import errors
from hgautomation.aws import keys
from hgautomation.aws import tags as T

NAME = "hg-automation-alice"
WHEN = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
OURS = [{"Key": T.MANAGED, "Value": "1"}, {"Key": T.CREATED_AT, "Value": "2025-01-02T03:04:05Z"},
        {"Key": T.OWNER, "Value": "alice"}]


def _public(key) -> str:
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode()


def _private_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                             serialization.NoEncryption())


# -- fingerprints ---------------------------------------------------------------------

def test_ed25519_fingerprints_include_ec2s_documented_form():
    public = _public(ed25519.Ed25519PrivateKey.generate())
    blob = base64.b64decode(public.split()[1])
    sha = base64.b64encode(hashlib.sha256(blob).digest()).decode()
    found = keys.fingerprints(public)
    assert sha.rstrip("=") in found and sha in found and "SHA256:" + sha.rstrip("=") in found


def test_rsa_fingerprint_is_the_md5_of_the_der_public_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    md5 = ":".join(f"{b:02x}" for b in hashlib.md5(der).digest())
    assert md5 in keys.fingerprints(_public(key))


def test_fingerprints_of_different_keys_do_not_overlap():
    a = keys.fingerprints(_public(ed25519.Ed25519PrivateKey.generate()))
    b = keys.fingerprints(_public(ed25519.Ed25519PrivateKey.generate()))
    assert a and b and not a & b


def test_fingerprints_ignore_the_comment():
    public = _public(ed25519.Ed25519PrivateKey.generate())
    assert keys.fingerprints(public + " alice@example") == keys.fingerprints(public)


# -- ensure_key_pair ----------------------------------------------------------------------

@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch):
    monkeypatch.setattr(T, "now", lambda: WHEN)


def _describe(stub, pairs=None, error=None):
    params = {"KeyNames": [NAME], "IncludePublicKey": True}
    if error:
        stub("ec2").add_client_error("describe_key_pairs", error, "x", expected_params=params)
    else:
        stub("ec2").add_response("describe_key_pairs", {"KeyPairs": pairs}, params)


def _import(stub, public=ANY):
    stub("ec2").add_response("import_key_pair", {"KeyName": NAME, "KeyPairId": "key-new"}, {
        "KeyName": NAME, "PublicKeyMaterial": public,
        "TagSpecifications": [{"ResourceType": "key-pair", "Tags": OURS}]})


def test_first_run_generates_a_private_key_and_imports_it(stub, aws_session, tmp_path,
                                                          captured):
    _describe(stub, error="InvalidKeyPair.NotFound")
    _import(stub)
    pair = keys.ensure_key_pair(aws_session, tmp_path / "keys", "alice")
    private = tmp_path / "keys" / NAME
    assert pair.name == NAME and pair.private_key_path == private
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    loaded = serialization.load_ssh_private_key(private.read_bytes(), password=None)
    assert _public(loaded) == pair.public_key
    assert (tmp_path / "keys" / f"{NAME}.pub").read_text() == pair.public_key + "\n"
    assert pair.public_key.startswith("ssh-ed25519 ")


def test_existing_matching_pair_is_reused_without_mutation(stub, aws_session, tmp_path,
                                                          captured):
    key = ed25519.Ed25519PrivateKey.generate()
    (tmp_path / NAME).write_bytes(_private_pem(key))
    (tmp_path / NAME).chmod(0o644)
    _describe(stub, [{"KeyName": NAME, "KeyPairId": "key-1", "Tags": OURS,
                      "PublicKey": _public(key) + " imported-openssh-key"}])
    pair = keys.ensure_key_pair(aws_session, tmp_path, "alice")
    assert pair.public_key == _public(key)
    assert aws_session.counter.mutating == 0
    assert stat.S_IMODE((tmp_path / NAME).stat().st_mode) == 0o600  # tightened


def test_matching_by_fingerprint_when_ec2_gives_no_public_key(stub, aws_session, tmp_path,
                                                             captured):
    key = ed25519.Ed25519PrivateKey.generate()
    (tmp_path / NAME).write_bytes(_private_pem(key))
    blob = base64.b64decode(_public(key).split()[1])
    ec2_fp = base64.b64encode(hashlib.sha256(blob).digest()).decode()
    _describe(stub, [{"KeyName": NAME, "KeyPairId": "key-1", "Tags": OURS,
                      "KeyFingerprint": ec2_fp}])
    keys.ensure_key_pair(aws_session, tmp_path, "alice")
    assert aws_session.counter.mutating == 0


def test_same_key_imported_by_an_older_version_is_adopted(stub, aws_session, tmp_path,
                                                         captured):
    key = ed25519.Ed25519PrivateKey.generate()
    (tmp_path / NAME).write_bytes(_private_pem(key))
    _describe(stub, [{"KeyName": NAME, "KeyPairId": "key-1", "PublicKey": _public(key)}])
    stub("ec2").add_response("create_tags", {}, {"Resources": ["key-1"], "Tags": OURS})
    keys.ensure_key_pair(aws_session, tmp_path, "alice")
    assert aws_session.counter.calls == {"DescribeKeyPairs": 1, "CreateTags": 1}


def test_a_different_key_of_ours_is_replaced(stub, aws_session, tmp_path, captured):
    key = ed25519.Ed25519PrivateKey.generate()
    (tmp_path / NAME).write_bytes(_private_pem(key))
    other = _public(ed25519.Ed25519PrivateKey.generate())
    _describe(stub, [{"KeyName": NAME, "KeyPairId": "key-1", "Tags": OURS,
                      "PublicKey": other}])
    stub("ec2").add_response("delete_key_pair", {}, {"KeyName": NAME})
    _import(stub, _public(key).encode())
    keys.ensure_key_pair(aws_session, tmp_path, "alice")
    assert ("warning: key pair hg-automation-alice: EC2 holds a different key (another "
            "machine or state directory using owner 'alice'); replacing it with "
            f"{tmp_path / NAME}.pub (give each machine its own --owner to keep both)"
            ) in captured.err_text


def test_a_different_key_not_ours_is_refused(stub, aws_session, tmp_path, captured):
    key = ed25519.Ed25519PrivateKey.generate()
    (tmp_path / NAME).write_bytes(_private_pem(key))
    other = _public(ed25519.Ed25519PrivateKey.generate())
    _describe(stub, [{"KeyName": NAME, "KeyPairId": "key-1", "PublicKey": other}])
    with pytest.raises(errors.AWSError, match="exists in EC2 with another key"):
        keys.ensure_key_pair(aws_session, tmp_path, "alice")
    assert aws_session.counter.mutating == 0


def test_unreadable_private_key_is_a_configuration_error(stub, aws_session, tmp_path):
    stub("ec2")
    (tmp_path / NAME).write_text("not a key\n")
    with pytest.raises(errors.ConfigurationError) as raised:
        keys.ensure_key_pair(aws_session, tmp_path, "alice")
    assert raised.value.exit_code == 3
    assert str(tmp_path / NAME) in raised.value.message
    assert aws_session.counter.total == 0


def test_other_describe_errors_propagate(stub, aws_session, tmp_path, captured):
    _describe(stub, error="UnauthorizedOperation")
    with pytest.raises(errors.AWSError) as raised:
        keys.ensure_key_pair(aws_session, tmp_path, "alice")
    assert raised.value.code == "UnauthorizedOperation"


# -- the Windows launch key pair ----------------------------------------------------------

WINDOWS_NAME = "hg-automation-alice.windows"


def test_windows_key_pair_is_rsa_2048_pkcs1_and_imported_under_its_own_name(
        stub, aws_session, tmp_path, captured):
    """EC2 refuses ed25519 key pairs for Windows AMIs, and the AWS CLI's
    ``get-password-data --priv-launch-key`` reads only PKCS#1 PEM: an ed25519 key, an
    RSA key of another size or an OpenSSH-format file fails here."""
    params = {"KeyNames": [WINDOWS_NAME], "IncludePublicKey": True}
    stub("ec2").add_client_error("describe_key_pairs", "InvalidKeyPair.NotFound", "x",
                                 expected_params=params)
    imported = []
    stub("ec2").add_response("import_key_pair", {"KeyName": WINDOWS_NAME, "KeyPairId": "k"}, {
        "KeyName": WINDOWS_NAME, "PublicKeyMaterial": ANY,
        "TagSpecifications": [{"ResourceType": "key-pair", "Tags": OURS}]})
    events = aws_session.client("ec2").meta.events
    event = "before-parameter-build.ec2.ImportKeyPair"
    events.register(event, lambda params, **_: imported.append(params["PublicKeyMaterial"]),
                    unique_id="test-windows-import")
    try:
        pair = keys.ensure_key_pair(aws_session, tmp_path / "keys", "alice", windows=True)
    finally:
        events.unregister(event, unique_id="test-windows-import")  # the client is shared
    private = tmp_path / "keys" / WINDOWS_NAME
    assert (pair.name, pair.private_key_path) == (WINDOWS_NAME, private)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    data = private.read_bytes()
    assert data.startswith(b"-----BEGIN RSA PRIVATE KEY-----\n")
    key = serialization.load_pem_private_key(data, password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert pair.public_key.startswith("ssh-rsa ") and _public(key) == pair.public_key
    assert imported == [pair.public_key.encode()]


def test_the_windows_key_decrypts_the_administrator_password(stub, aws_session, tmp_path,
                                                              captured):
    """What GetPasswordData returns (the password encrypted by EC2 with the launch key
    pair's public key, PKCS#1 v1.5, base64) is readable with the stored private key, as
    ``aws ec2 get-password-data --priv-launch-key`` reads it."""
    from cryptography.hazmat.primitives.asymmetric import padding

    stub("ec2").add_client_error("describe_key_pairs", "InvalidKeyPair.NotFound", "x")
    stub("ec2").add_response("import_key_pair", {"KeyName": WINDOWS_NAME, "KeyPairId": "k"})
    pair = keys.ensure_key_pair(aws_session, tmp_path, "alice", windows=True)
    # EC2's side: only the imported public half.
    ec2_public = serialization.load_ssh_public_key(pair.public_key.encode())
    password_data = base64.b64encode(ec2_public.encrypt(b"Pa55-w0rd!", padding.PKCS1v15()))
    private = serialization.load_pem_private_key(pair.private_key_path.read_bytes(), None)
    assert private.decrypt(base64.b64decode(password_data), padding.PKCS1v15()) == \
        b"Pa55-w0rd!"


def test_an_existing_windows_key_of_the_wrong_kind_is_refused_before_aws(stub, aws_session,
                                                                        tmp_path):
    stub("ec2")
    (tmp_path / WINDOWS_NAME).write_bytes(_private_pem(ed25519.Ed25519PrivateKey.generate()))
    with pytest.raises(errors.ConfigurationError, match="not an RSA key"):
        keys.ensure_key_pair(aws_session, tmp_path, "alice", windows=True)
    # Right type, but OpenSSH format: the AWS CLI could not read the password with it.
    (tmp_path / WINDOWS_NAME).write_bytes(
        _private_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    with pytest.raises(errors.ConfigurationError, match="not in PKCS#1 PEM form"):
        keys.ensure_key_pair(aws_session, tmp_path, "alice", windows=True)
    assert aws_session.counter.total == 0


def test_an_existing_windows_key_is_reused(stub, aws_session, tmp_path, captured):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / WINDOWS_NAME).write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))
    stub("ec2").add_response("describe_key_pairs", {"KeyPairs": [
        {"KeyName": WINDOWS_NAME, "KeyPairId": "key-1", "Tags": OURS,
         "PublicKey": _public(key)}]})
    pair = keys.ensure_key_pair(aws_session, tmp_path, "alice", windows=True)
    assert pair.public_key == _public(key) and aws_session.counter.mutating == 0
