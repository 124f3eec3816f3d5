"""The dead-man switch of a temporary instance, and the heartbeats that hold it off.

The switch (user data, ``scripts/deadman.{sh,ps1}``) powers the instance off, which
terminates it, once the epoch in its deadline file has passed. While the tool is
connected it runs a :class:`Heartbeat` every few minutes that moves the deadline
forward, so a long run is never cut short and an orphan dies within its lifetime.
Both ends of that file are here, for both platforms.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

# An instance lives this long past boot or past the tool's last heartbeat.
DEFAULT_MAX_LIFETIME_MINUTES = 60
DEADMAN_POLL_SECONDS = 30
HEARTBEAT_SECONDS = 300.0  # how often a connection to a temporary instance renews it
DEADLINE_DIR = {"linux": "/run/hgautomation", "windows": "C:\\hgautomation"}
DEADLINE_FILE = {"linux": DEADLINE_DIR["linux"] + "/deadline",
                 "windows": DEADLINE_DIR["windows"] + "\\deadline"}
_SCRIPTS = Path(__file__).parent / "scripts"
# How a Windows host runs an encoded script: the form of windows.powershell.argv
# (aws/ may not import a platform; a unit test checks the two agree).
_POWERSHELL = ("powershell", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass",
               "-EncodedCommand")


def _render(name: str, values: dict[str, object]) -> str:
    text = (_SCRIPTS / name).read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    return text


def deadman_script(platform: str, seconds: int, *, poll: int = DEADMAN_POLL_SECONDS,
                   directory: str | None = None, poweroff: str = "poweroff") -> str:
    """The dead-man switch for *platform* (``aws/scripts/deadman.{sh,ps1}``)."""
    name = "deadman.ps1" if platform == "windows" else "deadman.sh"
    return _render(name, {"DIR": directory or DEADLINE_DIR[platform], "SECONDS": seconds,
                          "POLL": poll, "POWEROFF": poweroff})


def deadman_user_data(user_data: str, max_lifetime_minutes: int, platform: str) -> str:
    """*user_data* with the dead-man switch added: the instance terminates
    *max_lifetime_minutes* after boot or after the tool's last heartbeat."""
    seconds = max(1, int(max_lifetime_minutes)) * 60
    script = deadman_script(platform, seconds)
    if platform == "windows":
        if "<powershell>" in user_data:
            return user_data.replace("<powershell>", "<powershell>\n" + script, 1)
        return f"<powershell>\n{script}</powershell>\n{user_data}"
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText

    # cloud-init runs every part of a multipart user data in order.
    message = MIMEMultipart()
    message.attach(MIMEText(script, "x-shellscript"))
    if user_data:
        subtype = "cloud-config" if user_data.startswith("#cloud-config") else "x-shellscript"
        message.attach(MIMEText(user_data, subtype))
    return message.as_string()


@dataclass(frozen=True)
class Heartbeat:
    """What a connection to a temporary instance runs every *interval* seconds to move
    its deadline forward; *posix* says whether *argv* goes through the POSIX wrapper."""

    argv: tuple[str, ...]
    posix: bool
    interval: float = HEARTBEAT_SECONDS


def heartbeat(platform: str,
              seconds: int = DEFAULT_MAX_LIFETIME_MINUTES * 60) -> Heartbeat:
    """The heartbeat that moves *platform*'s deadline *seconds* ahead; it does nothing
    on a machine without our dead-man switch (a ``--host``)."""
    deadline = DEADLINE_FILE[platform]
    if platform == "windows":
        script = _render("heartbeat.ps1", {"DEADLINE": deadline, "SECONDS": int(seconds)})
        encoded = base64.b64encode(script.encode("utf-16-le")).decode("ascii")
        return Heartbeat((*_POWERSHELL, encoded), posix=False)
    return Heartbeat(("sh", "-c", 'if [ -w "$1" ]; then echo $(( $(date +%s) + $2 )) > "$1"; fi',
                      "sh", deadline, str(int(seconds))), posix=True)
