"""hgautomation.aws.deadman: the dead-man switch in the user data, and both heartbeats.

(tests/test_deadman.py runs the Linux switch and heartbeat for real, scaled down.)
"""

from __future__ import annotations

import email
import re

import pytest

from hgautomation.aws import deadman
from hgautomation.windows import powershell

# -- deadman_user_data ----------------------------------------------------------------

def _parts(user_data: str) -> list[tuple[str, str]]:
    message = email.message_from_string(user_data)
    assert message.get_content_type() == "multipart/mixed"
    return [(part.get_content_type(), part.get_payload(decode=True).decode())
            for part in message.get_payload()]


def test_linux_deadman_comes_first_then_cloud_config():
    data = deadman.deadman_user_data("#cloud-config\nssh_keys: {}\n", 30, "linux")
    (kind1, script), (kind2, config) = _parts(data)
    assert kind1 == "text/x-shellscript" and kind2 == "text/cloud-config"
    assert script.startswith("#!/bin/sh\n")
    assert "dir=/run/hgautomation" in script and "+ 1800 ))" in script
    assert "while sleep 30; do" in script and "        poweroff\n" in script
    assert "@" not in script.replace("@SECONDS@", "")  # every placeholder filled
    assert config == "#cloud-config\nssh_keys: {}\n"


def test_linux_shell_user_data_is_a_shell_part():
    data = deadman.deadman_user_data("#!/bin/bash\necho hi\n", 5, "linux")
    kinds = [k for k, _ in _parts(data)]
    assert kinds == ["text/x-shellscript", "text/x-shellscript"]
    assert _parts(data)[1][1] == "#!/bin/bash\necho hi\n"


def test_linux_without_user_data_has_only_the_deadman():
    (only,) = _parts(deadman.deadman_user_data("", 60, "linux"))
    assert "+ 3600 ))" in only[1]


@pytest.mark.parametrize("minutes,expected", [(0, 1), (-10, 1), (2.9, 2), (600, 600)])
def test_lifetime_is_whole_minutes_and_at_least_one(minutes, expected):
    (_, script), = _parts(deadman.deadman_user_data("", minutes, "linux"))
    assert f"+ {expected * 60} ))" in script
    windows = deadman.deadman_user_data("", minutes, "windows")
    assert f"ToUnixTimeSeconds() + {expected * 60}" in windows


def test_windows_deadman_goes_into_the_existing_powershell_block():
    data = deadman.deadman_user_data("<powershell>\nWrite-Host hi\n</powershell>\n", 30,
                                     "windows")
    assert data.count("<powershell>") == 1 and data.count("</powershell>") == 1
    assert data.startswith("<powershell>\n")
    assert data.index("C:\\hgautomation\\deadline") < data.index("Write-Host hi")
    assert "shutdown.exe /s /f /t 0" in data


def test_windows_deadman_wraps_plain_user_data():
    data = deadman.deadman_user_data("", 10, "windows")
    assert re.fullmatch(r"<powershell>\n(.*\n)+</powershell>\n", data)
    assert "ToUnixTimeSeconds() + 600" in data


# -- heartbeats ---------------------------------------------------------------------------

def test_the_linux_heartbeat_moves_the_deadline():
    beat = deadman.heartbeat("linux", 3600)
    argv = beat.argv
    assert argv[:2] == ("sh", "-c") and argv[3:] == ("sh", "/run/hgautomation/deadline", "3600")
    assert beat.posix is True and beat.interval == 300
    assert deadman.heartbeat("linux") == beat  # an hour ahead by default


def test_the_windows_heartbeat_is_encoded_powershell_that_moves_the_deadline():
    """The same words windows.powershell.argv makes (aws/ may not import it): a change
    to either form breaks the round trip below."""
    beat = deadman.heartbeat("windows")
    assert beat.posix is False and beat.interval == 300
    assert list(beat.argv[:-1]) == powershell.argv("x")[:-1]
    script = powershell.script_from_command_line(" ".join(beat.argv))
    assert "$Deadline = 'C:\\hgautomation\\deadline'" in script
    assert "if (Test-Path -Path $Deadline) {" in script
    assert "ToUnixTimeSeconds() + 3600)" in script
    assert "@" not in script  # every placeholder filled
    assert "+ 60)" in powershell.script_from_command_line(
        " ".join(deadman.heartbeat("windows", 60).argv))


def test_heartbeat_and_switch_use_the_same_deadline_file():
    for platform in ("linux", "windows"):
        deadline = deadman.DEADLINE_FILE[platform]
        assert deadline.startswith(deadman.DEADLINE_DIR[platform])
        beat = deadman.heartbeat(platform)
        if platform == "linux":
            assert deadline in beat.argv
            assert '> "$dir/deadline"' in deadman.deadman_script(platform, 60)
        else:
            assert deadline in powershell.script_from_command_line(" ".join(beat.argv))
            assert f"-Path '{deadline}'" in deadman.deadman_script(platform, 60)


def test_heartbeat_of_an_unknown_platform_is_a_bug():
    with pytest.raises(KeyError):
        deadman.heartbeat("macos")

