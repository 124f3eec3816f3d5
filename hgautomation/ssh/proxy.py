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
import signal
import socket
import subprocess
import tempfile
import time

# Seconds the proxy's process group gets between SIGTERM and SIGKILL.
STOP_GRACE = 1.0


class ProxyCommand:
    """A started ProxyCommand (``command`` split as paramiko splits it: no shell)."""

    def __init__(self, command: str):
        self.command = command
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        try:
            self.process = subprocess.Popen(
                shlex.split(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=self._stderr, bufsize=0, start_new_session=True)
        except BaseException:
            self._stderr.close()
            raise
        self.timeout: float | None = None
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
        """Up to ``size`` bytes; b"" once the command's output has ended."""
        stdout = self.process.stdout
        ready, _, _ = select.select([stdout], [], [], self.timeout)
        if not ready:
            raise socket.timeout()
        return os.read(stdout.fileno(), size)

    @property
    def closed(self) -> bool:
        return self._stopped or self._status() is not None

    _closed = closed  # what paramiko looks at on a socket-like object

    def close(self) -> None:
        """Stop the command's whole process group and reap it (bounded)."""
        if self._stopped:
            return
        self._ended_alone = self._status()
        self._last_error = self.last_error()
        self._stopped = True
        for pipe in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                pipe.close()
        self._signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while self._status() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        self._signal(signal.SIGKILL)  # the command, or what it left in its group
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=STOP_GRACE)
        with contextlib.suppress(OSError):
            self._stderr.close()

    def _signal(self, signum: int) -> None:
        # The leader is never reaped before this (see _status), so its id, which
        # names the group, cannot have been reused meanwhile.
        with contextlib.suppress(OSError):
            os.killpg(self.process.pid, signum)

    def _status(self) -> int | None:
        """The command's exit status (negative: killed by that signal), None while it
        runs; the process is left unreaped (WNOWAIT)."""
        if self.process.returncode is not None:
            return self.process.returncode
        try:
            info = os.waitid(os.P_PID, self.process.pid,
                             os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return self.process.poll()
        if info is None:
            return None
        return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status

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
