"""ProxyCommand: the command's stdin and stdout as the socket paramiko's Transport uses.

Unlike paramiko's own ProxyCommand, the command runs in a process group of its own
that :meth:`ProxyCommand.close` stops whole (TERM, a short grace, KILL) and reaps,
so nothing it started outlives the connection; its stderr goes to a temporary file
(a chatty proxy never blocks on a full pipe) whose last line names what went wrong;
and the end of its output is end-of-file, not a busy wait.
"""

from __future__ import annotations

import contextlib
import os
import select
import shlex
import socket
import subprocess
import tempfile
import threading
import time

from hgautomation.ssh import group

# Seconds the proxy's process group gets between SIGTERM and SIGKILL.
STOP_GRACE = 1.0
# Seconds between looks at whether the command ended while its output stays silent.
EXIT_POLL = 0.2


class ProxyCommand:
    """A started ProxyCommand (``command`` split as paramiko splits it: no shell)."""

    def __init__(self, command: str):
        self.command = command
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        try:
            self.process = group.start(
                shlex.split(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=self._stderr, bufsize=0)
        except BaseException:
            self._stderr.close()
            raise
        self.timeout: float | None = None
        self._lock = threading.Lock()
        self._stopped = False
        self._ended_alone: int | None = None  # its status if it ended before close()
        self._last_error = ""

    # -- the socket interface paramiko's Transport and Packetizer use
    def settimeout(self, timeout: float | None) -> None:
        self.timeout = timeout

    def send(self, data: bytes) -> int:
        try:
            return os.write(self.process.stdin.fileno(), data)
        except OSError as exc:
            raise EOFError(f"the ProxyCommand ended ({self.ended()})") from exc

    def recv(self, size: int) -> bytes:
        """Up to ``size`` bytes; b"" once the command's output has ended, or the command
        itself (what it left running may hold its output open)."""
        stdout = self.process.stdout
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            wait = EXIT_POLL if deadline is None else min(EXIT_POLL,
                                                         max(0.0, deadline - time.monotonic()))
            ready, _, _ = select.select([stdout], [], [], wait)
            if ready:
                return os.read(stdout.fileno(), size)
            if self._status() is not None:
                return b""
            if deadline is not None and time.monotonic() >= deadline:
                raise socket.timeout()

    @property
    def closed(self) -> bool:
        return self._stopped or self._status() is not None

    _closed = closed  # what paramiko looks at on a socket-like object

    def close(self) -> None:
        """Stop the command's whole process group and reap it (bounded)."""
        with self._lock:  # the transport's thread and ours may both close it
            if self._stopped:
                return
            self._ended_alone = self._status()
            self._last_error = self.last_error()
            self._stopped = True
        for pipe in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                pipe.close()
        group.stop(self.process, STOP_GRACE)
        with contextlib.suppress(OSError):
            self._stderr.close()

    def _status(self) -> int | None:
        return group.status(self.process)

    # -- for messages
    def ended(self) -> str | None:
        """How the command ended by itself, "exit 1: <last line of its stderr>"; None
        while it runs, or if it was still running when closed."""
        status = self._ended_alone if self._stopped else self._status()
        if status is None:
            return None
        error = self.last_error()
        return (f"exit {status}" if status >= 0 else f"killed by signal {-status}") + \
            (f": {error}" if error else "")

    def last_error(self) -> str:
        """The last line the command wrote on stderr ("" if none)."""
        if self._stopped:
            return self._last_error
        try:
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - 4096))
            lines = self._stderr.read().decode("utf-8", "replace").strip().splitlines()
        except (OSError, ValueError):
            return ""
        return " ".join(lines[-1].split())[:200] if lines else ""
