"""The Linux dead-man switch as it runs on an instance (aws/scripts/deadman.sh), for real
but scaled down: a 3 s deadline, a 1 s poll, `poweroff` replaced by writing a file,
and the tool's heartbeat (deadman.heartbeat) pushing the deadline forward."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from hgautomation.aws import deadman

pytestmark = pytest.mark.timeout(60)


def start_switch(tmp_path: Path, seconds: int = 3) -> Path:
    marker = tmp_path / "powered-off"
    script = deadman.deadman_script("linux", seconds, poll=1, directory=str(tmp_path / "dm"),
                                    poweroff=f"touch {marker}")
    # The watcher runs detached (setsid) here, not as a systemd unit of this machine.
    script = script.replace("[ -d /run/systemd/system ]", "false")
    subprocess.run(["sh", "-c", script], check=True, timeout=10)
    return marker


def beat(tmp_path: Path, seconds: int) -> None:
    argv = list(deadman.heartbeat("linux", seconds).argv)
    argv[4] = str(tmp_path / "dm" / "deadline")  # the same command, on this test's file
    subprocess.run(argv, check=True, timeout=10)


def wait_for(path: Path, timeout: float) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if path.exists():
            return time.monotonic() - start
        time.sleep(0.1)
    return None


@pytest.fixture(autouse=True)
def stop_watchers(tmp_path):
    yield
    subprocess.run(["pkill", "-f", str(tmp_path / "dm")], check=False)


def test_without_a_heartbeat_the_instance_powers_off(tmp_path):
    marker = start_switch(tmp_path)
    assert (tmp_path / "dm" / "deadline").stat().st_mode & 0o777 == 0o666
    assert not marker.exists()
    assert wait_for(marker, 10) is not None


def test_heartbeats_keep_it_alive_then_it_dies(tmp_path):
    marker = start_switch(tmp_path)
    for _ in range(6):  # 6 s of heartbeats, past the first 3 s deadline
        beat(tmp_path, 3)
        time.sleep(1)
    assert not marker.exists()
    assert wait_for(marker, 10) is not None  # the tool is gone: within the grace


def test_a_garbled_deadline_never_powers_off_early(tmp_path):
    marker = start_switch(tmp_path, seconds=4)
    deadline = tmp_path / "dm" / "deadline"
    deadline.write_text("")  # as a heartbeat's write looks mid-way
    time.sleep(2)
    deadline.write_text("garbage\n")
    time.sleep(1)
    assert not marker.exists()
    assert wait_for(marker, 10) is not None  # the last good deadline still holds


def test_the_heartbeat_does_nothing_without_a_switch(tmp_path):
    argv = list(deadman.heartbeat("linux", 60).argv)
    argv[4] = str(tmp_path / "absent" / "deadline")
    assert subprocess.run(argv, check=False, timeout=10).returncode == 0
    assert not (tmp_path / "absent").exists()
    assert os.listdir(tmp_path) == []
