"""hostkeys in process: pinning (other names on a line kept, the file replaced whole and
private), reading known_hosts into a paramiko client (ours writable, the extra ones
read-only, bad lines skipped by number), the unknown-key policy, and the errors' data.

Breaking it looks like: a pin that drops another host's name, an extra file's keys taken
as the tool's own, a bad line stopping the read, an unknown key accepted without
--accept-new-host-key, or an error naming the wrong key."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import stat

import paramiko
import pytest

from hgautomation import errors, keygen
from hgautomation.ssh import hostkeys


def _key() -> paramiko.PKey:
    return paramiko.Ed25519Key.from_private_key(io.StringIO(keygen.generate().private))


def _line(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.get_base64()}"


def test_fingerprint_and_key_text():
    key = _key()
    digest = hashlib.sha256(key.asbytes()).digest()
    fp = "SHA256:" + base64.b64encode(digest).decode().rstrip("=")
    assert hostkeys.fingerprint(key) == fp and "=" not in fp
    err = hostkeys.key_changed("box", key, _key(), "/kh")
    assert err.offered == f"ssh-ed25519 {fp}"
    assert err.hostname == "box"
    assert err.expected != err.offered and err.expected.startswith("ssh-ed25519 SHA256:")
    assert err.message == (f"host key for box has changed: server offers ssh-ed25519 {fp}, "
                           f"pinned is {err.expected}")
    assert err.hint == ("possible man-in-the-middle; if the host was rebuilt, remove its "
                        "line from /kh")


def test_pin_replaces_the_name_and_keeps_the_others(tmp_path):
    kh = tmp_path / "dir" / "known_hosts"
    hostkeys.pin_host_key(kh, "box", "ssh-ed25519 AAAA comment")
    assert kh.read_text() == "box ssh-ed25519 AAAA\n"
    assert stat.S_IMODE(kh.parent.stat().st_mode) == 0o700
    kh.write_text("box,192.0.2.1,b2 ssh-ed25519 OLD x\n\nother ssh-rsa KEEP\nbox ssh-rsa GONE\n")
    hostkeys.pin_host_key(kh, "box", "ssh-ed25519 NEW")
    assert kh.read_text() == ("192.0.2.1,b2 ssh-ed25519 OLD x\n\nother ssh-rsa KEEP\n"
                              "box ssh-ed25519 NEW\n")
    assert sorted(os.listdir(kh.parent)) == ["known_hosts"]  # no temporary left


def test_pin_reads_a_file_with_bad_bytes(tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_bytes(b"odd\xff ssh-rsa X\n")
    hostkeys.pin_host_key(kh, "box", "ssh-ed25519 NEW")
    assert kh.read_text(errors="replace").endswith("box ssh-ed25519 NEW\n")


def test_pin_that_cannot_be_written(tmp_path, monkeypatch):
    kh = tmp_path / "known_hosts"

    def fail(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(errors.ConfigurationError) as raised:
        hostkeys.pin_host_key(kh, "box", "ssh-ed25519 NEW")
    assert raised.value.message == (f"cannot pin the host key of box in {kh}: "
                                    "Permission denied")
    assert os.listdir(tmp_path) == []


def test_check_known_hosts(tmp_path):
    kh = tmp_path / "known_hosts"
    hostkeys.check_known_hosts(kh, writable=True)  # absent, directory writable
    kh.mkdir()
    with pytest.raises(errors.ConfigurationError, match="is not a file"):
        hostkeys.check_known_hosts(kh, writable=False)
    kh.rmdir()
    kh.write_text("")
    hostkeys.check_known_hosts(kh, writable=True)
    if os.geteuid() != 0:  # root reads and writes anything
        kh.chmod(0o200)
        with pytest.raises(errors.ConfigurationError, match="cannot read"):
            hostkeys.check_known_hosts(kh, writable=False)


def test_check_known_hosts_access(tmp_path, monkeypatch):
    kh = tmp_path / "known_hosts"
    kh.write_text("")
    asked = []

    def access(path, mode):
        asked.append((path, mode))
        return mode != os.W_OK

    monkeypatch.setattr(os, "access", access)
    hostkeys.check_known_hosts(kh, writable=False)
    assert asked == [(kh, os.R_OK)]
    with pytest.raises(errors.ConfigurationError) as raised:
        hostkeys.check_known_hosts(kh, writable=True)
    assert raised.value.message == f"cannot write {kh}: a new host key could not be pinned"
    assert raised.value.hint == "fix its permissions or use --state-path"
    asked.clear()
    with pytest.raises(errors.ConfigurationError) as raised:
        hostkeys.check_known_hosts(tmp_path / "new", writable=True)
    assert asked == [(tmp_path, os.W_OK)]
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(errors.ConfigurationError) as raised:
        hostkeys.check_known_hosts(kh, writable=False)
    assert raised.value.message == f"cannot read {kh} (known_hosts)"


def test_check_extra_known_hosts(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "file").write_text("")
    hostkeys.check_extra_known_hosts([tmp_path / "file", tmp_path / "absent", os.devnull])
    with pytest.raises(errors.ConfigurationError) as raised:
        hostkeys.check_extra_known_hosts([tmp_path / "file", fifo])
    assert raised.value.message == f"{fifo} is not a regular file (UserKnownHostsFile)"
    assert raised.value.hint == "point UserKnownHostsFile in the ssh config at a file"


def test_load_known_hosts_ours_and_extra_apart(tmp_path, captured):
    ours_key, extra_key, other = _key(), _key(), _key()
    kh = tmp_path / "known_hosts"
    kh.write_text(f"# comment\n\nbox,192.0.2.1 {_line(ours_key)}\nnot a line\n"
                  f"box2 {_line(other)}\n")
    extra = tmp_path / "extra"
    extra.write_bytes(f"up {_line(extra_key)}\n".encode() + b"bad\xff line here\n")
    client = paramiko.SSHClient()
    hostkeys.load_known_hosts(client, kh, [extra, tmp_path / "absent"], accept_new=False)
    mine = client.get_host_keys()
    assert sorted(mine.keys()) == ["192.0.2.1", "box", "box2"]
    assert mine.lookup("box")["ssh-ed25519"] == ours_key
    assert mine.lookup("box2")["ssh-ed25519"] == other
    assert sorted(client._system_host_keys.keys()) == ["up"]
    assert client._system_host_keys.lookup("up")["ssh-ed25519"] == extra_key
    warned = captured.err_text + captured.out_text
    assert f"{kh}, line 4: skipped (" in warned
    assert f"{extra}, line 2: skipped (" in warned
    with pytest.raises(errors.UnknownHostKeyError) as raised:
        client._policy.missing_host_key(client, "new", other)
    assert raised.value.hostname == "new"
    assert raised.value.offered == hostkeys._key_text(other)
    assert raised.value.message == f"unknown host key for new: {hostkeys._key_text(other)}"
    assert raised.value.hint == "verify it, then pass --accept-new-host-key to pin it"


def test_unreadable_known_hosts_is_a_warning(tmp_path, captured):
    client = paramiko.SSHClient()
    hostkeys.load_known_hosts(client, tmp_path, [], accept_new=False)  # a directory
    assert f"cannot read {tmp_path}: " in captured.err_text + captured.out_text
    assert "; ignoring it" in captured.err_text + captured.out_text


def test_accept_new_pins_the_offered_key(tmp_path, captured):
    kh = tmp_path / "known_hosts"
    key = _key()
    client = paramiko.SSHClient()
    hostkeys.load_known_hosts(client, kh, [], accept_new=True)
    client._policy.missing_host_key(client, "box", key)
    assert kh.read_text() == f"box {_line(key)}\n"
    assert (f"pinned new host key for box: {hostkeys._key_text(key)} in {kh}"
            in captured.err_text + captured.out_text)


def test_pin_makes_missing_directories_and_writes_beside_the_file(tmp_path, monkeypatch):
    import tempfile

    seen = []
    real = tempfile.mkstemp
    monkeypatch.setattr(tempfile, "mkstemp", lambda **kw: seen.append(kw) or real(**kw))
    kh = tmp_path / "a" / "b" / "known_hosts"
    hostkeys.pin_host_key(kh, "box", "ssh-ed25519 AAAA")
    assert kh.read_text() == "box ssh-ed25519 AAAA\n"
    assert seen == [{"dir": kh.parent, "prefix": ".known_hosts."}]


def test_pin_that_cannot_be_written_nor_cleaned_up(tmp_path, monkeypatch):
    def fail(path, *args):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", fail)
    monkeypatch.setattr(os, "unlink", fail)
    with pytest.raises(errors.ConfigurationError, match="cannot pin the host key of box"):
        hostkeys.pin_host_key(tmp_path / "known_hosts", "box", "ssh-ed25519 NEW")


def test_reading_skips_comments_and_blanks_silently_and_names_bad_lines(tmp_path, captured):
    first, second = _key(), _key()
    kh = tmp_path / "known_hosts"
    kh.write_text(f"# c\n\n  \nbox {_line(first)}\nh ssh-ed25519 @@@@\nbox {_line(second)}\n"
                  "just-a-name\n")
    client = paramiko.SSHClient()
    hostkeys.load_known_hosts(client, kh, [], accept_new=False)
    warned = [line for line in (captured.err_text + captured.out_text).splitlines()
              if "skipped" in line]
    assert len(warned) == 2
    assert f"{kh}, line 5: skipped (SSHException: " in warned[0]
    assert warned[1].endswith(f"{kh}, line 7: skipped (not a host key line)")
    # One key per name and type is kept: a later line of the same type replaces it.
    assert client.get_host_keys().lookup("box")["ssh-ed25519"] == second
