"""Running one remote command: output streamed line by line, bounded in time, status back.

:class:`Remote` does the steps on one session channel (``start``, ``read``,
``returncode``, ``close``); :func:`run` puts them together for ``Connection.run``:
console and sink, the tail kept for errors, the exit status check.
"""

from __future__ import annotations

import collections
import socket
import time
from collections.abc import Callable, Sequence

from hgautomation import console, errors
from hgautomation.ssh.text import command_line, shell_line, short

# Lines of output kept for a RemoteCommandError.
TAIL_LINES = 20
# Seconds between looks at the deadline and the connection while the command is silent.
POLL_INTERVAL = 1.0
RECV_SIZE = 65536
# Seconds to wait for the exit status once the output has ended.
STATUS_WAIT = 30.0


class Remote:
    """One command on its own session channel of ``client``.

    Output (stderr merged into stdout on the host) goes to ``on_line`` one decoded
    line at a time; ``timeout`` bounds the whole command, stdin included.
    """

    def __init__(self, client, target, *, on_line: Callable[[str], None],
                 timeout: float | None = None):
        self.client = client
        self.target = target
        self.on_line = on_line
        self.timeout = timeout
        self.command = ""
        self.channel = None
        self._transport = None
        self._deadline: float | None = None

    def start(self, command: str, stdin: bytes | None = None) -> None:
        """Open a session and run ``command``; ``stdin`` is sent, then end-of-file."""
        import paramiko

        self.command = command
        try:
            self._transport = self.client.get_transport()
            self.channel = self._transport.open_session()
        except (paramiko.SSHException, OSError, AttributeError) as exc:
            raise errors.HostConnectionError(f"{self.target}: cannot open a session: {exc}") \
                from None
        if self.timeout is not None:
            self._deadline = time.monotonic() + self.timeout
        channel = self.channel
        channel.set_combine_stderr(True)
        channel.settimeout(POLL_INTERVAL)
        # Merge stderr into stdout on the host: SSH carries them as two streams, and
        # joining them here could splice a line of one into a partial line of the other.
        channel.exec_command("exec 2>&1\n" + command)
        if stdin is not None:
            channel.settimeout(self.timeout)
            channel.sendall(stdin)
            channel.shutdown_write()
            channel.settimeout(POLL_INTERVAL)

    def read(self) -> None:
        """Pass the output to ``on_line`` until it ends; past the deadline, WaitTimeout."""
        channel = self.channel
        pending = b""
        while True:
            try:
                chunk = channel.recv(RECV_SIZE)
            except socket.timeout:
                if self._deadline is not None and time.monotonic() > self._deadline:
                    raise errors.WaitTimeout(
                        f"{self.target}: command did not finish within {self.timeout:.0f}s: "
                        f"{short(self.command)}") from None
                if channel.closed or not self._transport.is_active():
                    break
                continue
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                self.on_line(_decode(raw))
        if pending:
            self.on_line(_decode(pending))

    def returncode(self) -> int:
        """The command's exit status, after :meth:`read` (waits a bounded time for it)."""
        channel = self.channel
        if not channel.exit_status_ready() and not channel.status_event.wait(STATUS_WAIT):
            raise errors.HostConnectionError(
                f"{self.target}: connection lost while running {short(self.command)}")
        status = channel.recv_exit_status()
        if status == -1:
            raise errors.HostConnectionError(
                f"{self.target}: no exit status for {short(self.command)} (connection lost?)")
        return status

    def close(self) -> None:
        if self.channel is not None:
            self.channel.close()


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").rstrip("\r")


def run(client, target, command: str | Sequence[str], *, check: bool = True,
        prefix: str = "", env: dict[str, str] | None = None, timeout: float | None = None,
        quiet: bool = False, sink: list[str] | None = None,
        stdin: bytes | None = None) -> int:
    """Run ``command`` on ``client``'s host; see ``Connection.run``."""
    import paramiko

    command = shell_line(command)
    if env:
        command = command_line(["env", *(f"{k}={v}" for k, v in env.items())]) + " " + command
    out = console.get()
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)

    def emit(line: str) -> None:
        tail.append(line)
        if sink is not None:
            sink.append(line)
        if not quiet:
            out.remote_line(prefix, line)

    remote = Remote(client, target, on_line=emit, timeout=timeout)
    try:
        remote.start(command, stdin)
        remote.read()
        status = remote.returncode()
    except (paramiko.SSHException, OSError) as exc:
        raise errors.HostConnectionError(
            f"{target}: connection lost while running {short(command)}: {exc}") from None
    finally:
        remote.close()
    if check and status != 0:
        raise errors.RemoteCommandError(
            f"{target}: exit status {status} from {short(command)}"
            + (f"; last output: {tail[-1]}" if tail else ""),
            command=command, status=status, output_tail="\n".join(tail))
    return status
