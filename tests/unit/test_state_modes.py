"""state: the private modes (0700 directories, 0600 secrets, no temporary file left or
written elsewhere), the writability probe, and each refusal's message and hint."""

from __future__ import annotations

import os
import stat
import tempfile

import pytest

from hgautomation import errors, state


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    monkeypatch.setattr(state, "_CHECKED", set())


def test_state_directory_and_subdirectories_are_0700(tmp_path):
    root = tmp_path / "a" / "b" / "state"
    sd = state.StateDir.at(root).ensure()
    assert sd.root == root and stat.S_IMODE(root.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) != 0 and root.is_dir()
    for name in ("keys", "runs", "results", "logs", "backups"):
        path = getattr(sd, name)
        assert path == root / name and stat.S_IMODE(path.stat().st_mode) == 0o700
    assert sd.known_hosts == root / "known_hosts" and not sd.known_hosts.exists()
    assert sorted(p.name for p in root.iterdir()) == ["backups", "keys", "logs", "results",
                                                      "runs"]  # no probe left
    state.StateDir(root).ensure()  # a second time: exists already


def test_ensure_proves_writable_once(tmp_path, monkeypatch):
    probes = []
    monkeypatch.setattr(state, "check_writable", lambda d, what: probes.append((d, what)))
    sd = state.StateDir.at(tmp_path / "s")
    sd.ensure()
    sd.ensure()
    assert probes == [(tmp_path / "s", "state directory")]


def test_state_path_that_is_a_file(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(errors.ConfigurationError) as raised:
        state.StateDir(path).ensure()
    assert raised.value.message in (f"state path {path} is not a directory",
                                    f"cannot create state directory {path}: File exists")


def test_subdirectory_that_cannot_be_made(tmp_path):
    sd = state.StateDir(tmp_path / "s").ensure()
    (sd.root / "keys").write_text("in the way")
    with pytest.raises(errors.ConfigurationError) as raised:
        _ = sd.keys
    assert raised.value.message == f"cannot create {sd.root / 'keys'}: File exists"


def test_check_writable_probe(tmp_path, monkeypatch):
    seen = []
    real = tempfile.mkstemp

    def mkstemp(**kwargs):
        fd, name = real(**kwargs)
        seen.append((kwargs, name))
        return fd, name

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    written = []
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: written.append(data) or
                        real_write(fd, data))
    state.check_writable(tmp_path, "x")
    ((kwargs, name),) = seen
    assert kwargs == {"dir": tmp_path, "prefix": ".hgautomation-probe-"}
    assert written == [b"x" * 4096] and not os.path.exists(name)
    assert list(tmp_path.iterdir()) == []


def test_check_writable_refusal(tmp_path, monkeypatch):
    def full(**kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "mkstemp", full)
    with pytest.raises(errors.ConfigurationError) as raised:
        state.check_writable(tmp_path, "state directory")
    assert raised.value.message == (f"state directory {tmp_path} is not writable: "
                                    "No space left on device")


def test_write_private_is_0600_and_atomic_beside_the_file(tmp_path, monkeypatch):
    path = tmp_path / "new" / "id"
    seen = []
    real = tempfile.mkstemp
    monkeypatch.setattr(tempfile, "mkstemp",
                        lambda **kw: seen.append(kw) or real(**kw))
    state.write_private(path, b"secret")
    assert path.read_bytes() == b"secret" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert seen == [{"dir": path.parent, "prefix": ".id."}]
    assert [p.name for p in path.parent.iterdir()] == ["id"]


def test_write_private_failure_leaves_nothing(tmp_path, monkeypatch):
    path = tmp_path / "id"

    def fail(src, dst):
        raise OSError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(errors.ConfigurationError) as raised:
        state.write_private(path, b"secret")
    assert raised.value.message == f"cannot write {path}: Permission denied"
    assert list(tmp_path.iterdir()) == []
    blocked = tmp_path / "file"
    blocked.write_text("x")
    with pytest.raises(errors.ConfigurationError) as raised:
        state.write_private(blocked / "id", b"s")
    assert raised.value.message.startswith(f"cannot write {blocked / 'id'}: ")


def test_local_path_messages(monkeypatch):
    with pytest.raises(errors.ConfigurationError) as raised:
        state.local_path("~nosuchuser-hga/x/y", "--state-path")
    assert raised.value.message == ("--state-path ~nosuchuser-hga/x/y: no user "
                                    "'nosuchuser-hga' to expand '~nosuchuser-hga'")
    assert raised.value.hint == "give an absolute path"
    def gone(self):
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(type(state.Path("x")), "absolute", gone)
    with pytest.raises(errors.ConfigurationError) as raised:
        state.local_path("x", "--state-path")
    assert raised.value.message == ("--state-path: not a usable path ([Errno 2] No such file "
                                    "or directory)")


def test_no_home_message(monkeypatch):
    monkeypatch.setattr(os.path, "expanduser", lambda p: p)
    with pytest.raises(errors.ConfigurationError) as raised:
        state.check_home()
    assert raised.value.message == (f"no home directory: HOME is unset and user id "
                                    f"{os.getuid()} has no passwd entry")
    assert raised.value.hint == "set HOME"
    monkeypatch.delattr(os, "getuid")
    with pytest.raises(errors.ConfigurationError) as raised:
        state.check_home()
    assert "HOME is unset and this user has no passwd entry" in raised.value.message


def test_an_existing_state_directory_is_taken_as_it_is(tmp_path):
    root = tmp_path / "state"
    root.mkdir(mode=0o700)
    assert state.StateDir(root).ensure().root == root


def test_the_default_state_path_is_named_in_its_errors(monkeypatch):
    with pytest.raises(errors.ConfigurationError) as raised:
        state.StateDir.at("~nosuchuser-hga/state")
    assert raised.value.message.startswith("state directory ~nosuchuser-hga/state: no user ")


def test_write_private_failure_even_to_clean_up(tmp_path, monkeypatch):
    def fail(*args):
        raise OSError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", fail)
    monkeypatch.setattr(os, "unlink", fail)
    with pytest.raises(errors.ConfigurationError, match="Permission denied"):
        state.write_private(tmp_path / "id", b"secret")
