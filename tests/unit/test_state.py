"""hgautomation.state: the state directory layout and private (0600) files written atomically."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hgautomation import errors, state


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask():
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


# -- write_private ---------------------------------------------------------------------------

def test_write_private_creates_a_0600_file_in_a_0700_directory(tmp_path, permissive_umask):
    path = tmp_path / "a" / "b" / "secret"
    state.write_private(path, b"key material")
    assert path.read_bytes() == b"key material"
    assert mode(path) == 0o600
    assert mode(tmp_path / "a" / "b") == 0o700  # (like mkdir -p, "a" gets the umask's mode)


def test_write_private_replaces_a_readable_file(tmp_path, permissive_umask):
    path = tmp_path / "secret"
    path.write_bytes(b"old")
    path.chmod(0o644)
    inode = path.stat().st_ino
    state.write_private(path, b"new")
    assert path.read_bytes() == b"new" and mode(path) == 0o600
    assert path.stat().st_ino != inode  # a new file renamed over, never rewritten in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret"]


def test_write_private_leaves_nothing_behind_on_failure(tmp_path):
    target = tmp_path / "secret"
    target.mkdir()  # os.replace cannot put a file over a directory
    with pytest.raises(errors.ConfigurationError, match=r"cannot write .*secret: Is a directory"):
        state.write_private(target, b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret"]
    assert target.is_dir()


def test_write_private_keeps_an_existing_directory_mode(tmp_path):
    tmp_path.chmod(0o755)
    state.write_private(tmp_path / "f", b"")
    assert mode(tmp_path) == 0o755 and mode(tmp_path / "f") == 0o600


# -- StateDir ------------------------------------------------------------------------------------

def test_at_expands_the_home_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert state.StateDir.at(None).root == tmp_path / ".hgautomation"
    assert state.StateDir.at("~/elsewhere").root == tmp_path / "elsewhere"
    monkeypatch.chdir(tmp_path)
    assert state.StateDir.at("rel").root == tmp_path / "rel"  # absolute


def test_subdirectories_are_created_private(tmp_path, permissive_umask):
    sd = state.StateDir.at(tmp_path / "st")
    assert not sd.root.exists()  # nothing happens before a path is asked for
    for name in ("keys", "runs", "results", "backups"):
        path = getattr(sd, name)
        assert path == sd.root / name and path.is_dir() and mode(path) == 0o700
    assert mode(sd.root) == 0o700
    assert sd.known_hosts == sd.root / "known_hosts" and not sd.known_hosts.exists()


def test_state_path_that_is_a_file_is_a_configuration_error(tmp_path):
    (tmp_path / "st").write_text("")
    with pytest.raises(errors.ConfigurationError, match="state directory") as raised:
        state.StateDir.at(tmp_path / "st").ensure()
    assert raised.value.exit_code == 3


def test_state_path_below_a_file_is_a_configuration_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(errors.ConfigurationError, match="cannot create state directory"):
        _ = state.StateDir.at(tmp_path / "file" / "st").keys


def test_a_file_in_place_of_a_subdirectory_is_a_configuration_error(tmp_path):
    sd = state.StateDir.at(tmp_path / "st").ensure()
    (sd.root / "keys").write_text("")
    with pytest.raises(errors.ConfigurationError):
        _ = sd.keys


def test_run_dir_is_private_and_removed_afterwards(tmp_path):
    sd = state.StateDir.at(tmp_path / "st")
    with pytest.raises(RuntimeError), sd.run_dir("linux-") as run:
        assert run.parent == sd.runs and run.name.startswith("linux-")
        assert mode(run) == 0o700
        (run / "known_hosts").write_text("x")
        raise RuntimeError("boom")
    assert not run.exists()
    assert list(sd.runs.iterdir()) == []
