"""ssh.runner.Remote.read over a scripted channel: how output ends."""

from __future__ import annotations

import socket

from hgautomation.ssh import runner


class Transport:
    def __init__(self):
        self.active = True

    def is_active(self):
        return self.active


class Channel:
    """A channel whose recv follows a script.

    Items are bytes (data), "timeout" (the wait ends empty) or "close-racing-timeout":
    the wait times out, and in that moment the rest of the script arrives with the
    channel's close, as when the host's last output and the close come together.
    """

    def __init__(self, script, transport):
        self.script = list(script)
        self.transport = transport
        self.closed = False
        self.buffer: list[bytes] = []

    def settimeout(self, timeout):
        pass

    def recv_ready(self):
        return bool(self.buffer)

    def recv(self, size):
        if self.buffer:
            return self.buffer.pop(0)
        if self.closed:
            return b""
        if not self.script:
            self.closed = True
            return b""
        item = self.script.pop(0)
        if item == "timeout":
            raise socket.timeout()
        if item == "close-racing-timeout":
            self.buffer, self.script = self.script, []
            self.closed = True
            raise socket.timeout()
        if item == "connection-lost":
            self.transport.active = False
            raise socket.timeout()
        return item


def read(script) -> list[str]:
    """The lines Remote.read passes on for `script` (see :func:`reading`)."""
    return reading(script)[0]


def reading(script) -> tuple[list[str], runner.Remote]:
    """Remote.read over a Channel following `script`: the lines passed on, the Remote."""
    transport = Transport()
    lines: list[str] = []
    remote = runner.Remote(None, "host", on_line=lambda line, shown: lines.append(line))
    remote.channel = Channel(script, transport)
    remote._transport = transport
    remote._awaiting_mark = True
    remote.read()
    return lines, remote


def test_output_that_arrives_with_the_close_is_read():
    """The last lines and the close can race a timed-out wait; none of them is lost."""
    assert read([b"hgautomation-pgid 5\n", b"dots..", "close-racing-timeout",
                 b" done\n", b"next\n"]) == ["dots.. done", "next"]


def test_output_ends_at_end_of_file():
    assert read([b"hgautomation-pgid 5\na\n", "timeout", b"b\nunfinished"]) \
        == ["a", "b", "unfinished"]
    assert reading([b"hgautomation-pgid 42\n"])[1].group == 42


def test_a_lost_connection_ends_the_output():
    """The transport is gone but the channel was never closed: read returns (bounded)."""
    assert read([b"hgautomation-pgid 5\nbefore\n", "connection-lost", b"never\n"]) \
        == ["before"]

