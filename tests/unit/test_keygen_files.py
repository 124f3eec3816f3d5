"""keygen's files: the public line beside the key (rewritten only when the key differs),
the comment on a new or re-read key, the 0600 tightening, and each refusal's hint."""

from __future__ import annotations

import os

import pytest

from hgautomation import errors, keygen

HINT = "move it away; a new key pair is then generated"


def test_public_line_is_rewritten_only_when_the_key_differs(tmp_path):
    key = tmp_path / "id"
    pub = keygen.public_path(key)
    pub.write_text("ssh-ed25519 AAAA old-comment\n")
    keygen.write_public("ssh-ed25519 AAAA new-comment", key)
    assert pub.read_text() == "ssh-ed25519 AAAA old-comment\n"  # same key: left alone
    keygen.write_public("ssh-ed25519 BBBB new-comment", key)
    assert pub.read_text() == "ssh-ed25519 BBBB new-comment\n"


def test_public_line_that_cannot_be_written(tmp_path):
    key = tmp_path / "id"
    keygen.public_path(key).mkdir()
    with pytest.raises(errors.ConfigurationError) as raised:
        keygen.write_public("ssh-ed25519 AAAA", key)
    assert raised.value.message.startswith(f"cannot write {tmp_path / 'id.pub'}: ")


def test_comment_on_a_new_and_on_a_reread_key(tmp_path):
    key = tmp_path / "id"
    public, made = keygen.load_or_create(key, comment="hg@box")
    assert made and public.endswith(" hg@box") and len(public.split()) == 3
    assert keygen.public_path(key).read_text() == public + "\n"
    again, made = keygen.load_or_create(key, comment="other")
    assert not made and again == " ".join(public.split()[:2]) + " other"
    bare, _ = keygen.load_or_create(key)
    assert bare == " ".join(public.split()[:2])


def test_a_private_key_is_left_at_0600_and_tightened_otherwise(tmp_path, monkeypatch):
    key = tmp_path / "id"
    keygen.load_or_create(key)
    assert key.stat().st_mode & 0o777 == 0o600
    chmods = []
    real = type(key).chmod
    monkeypatch.setattr(type(key), "chmod", lambda self, mode: chmods.append(mode)
                        or real(self, mode))
    keygen.load_or_create(key)
    assert chmods == []  # already private: not touched
    os.chmod(key, 0o640)
    keygen.load_or_create(key)
    assert chmods == [0o600] and key.stat().st_mode & 0o777 == 0o600


def test_a_key_with_leading_blank_lines_is_read(tmp_path):
    key = tmp_path / "id"
    pair = keygen.generate()
    key.write_text("\n\n" + pair.private)
    public, made = keygen.load_or_create(key)
    assert not made and public == pair.public


def test_refusals_carry_the_hint(tmp_path):
    bad = tmp_path / "bad"
    bad.write_text("not a key")
    with pytest.raises(errors.ConfigurationError) as raised:
        keygen.load_or_create(bad)
    assert raised.value.hint == HINT
    ed = tmp_path / "ed"
    keygen.load_or_create(ed)
    with pytest.raises(errors.ConfigurationError) as raised:
        keygen.load_or_create(ed, keygen.RSA, bits=2048)
    assert raised.value.hint == HINT
    assert raised.value.message == (f"private key {ed} is not an RSA key; an RSA key of 2048 "
                                    "bits is needed")
    rsa = tmp_path / "rsa"
    keygen.load_or_create(rsa, keygen.RSA, bits=2048)  # OpenSSH form
    with pytest.raises(errors.ConfigurationError) as raised:
        keygen.load_or_create(rsa, keygen.RSA, bits=2048, private_format=keygen.PKCS1)
    assert raised.value.hint == HINT
    pem = tmp_path / "pem"
    pem.write_text("\n" + keygen.generate(keygen.RSA, bits=2048,
                                          private_format=keygen.PKCS1).private)
    keygen.load_or_create(pem, keygen.RSA, bits=2048, private_format=keygen.PKCS1)


def test_unknown_key_type_message():
    with pytest.raises(ValueError) as raised:
        keygen.generate("dsa")
    assert str(raised.value) == "unknown key type 'dsa' (known: ed25519, rsa)"
