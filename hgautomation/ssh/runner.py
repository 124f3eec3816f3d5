"""Running one remote command: output streamed line by line, bounded in time, status back.

:class:`Remote` does the steps on one session channel (``start``, ``read``,
``returncode``, ``stop``, ``close``); :func:`run` puts them together for
``Connection.run``: console and sink, the tail kept for errors, the exit status check.

On a POSIX host the command runs under a small shell wrapper (:func:`wire_command`)
that first reports its process group. That report is also the proof that the login
shell started the command: it must come within ``START_TIMEOUT`` seconds (a slow
``~/.bashrc`` is named after ``START_NOTICE``), and a session that ends without it
(a ``~/.bashrc`` that exits or closes its output) is a host that does not run our
commands, never a success. Nothing the command starts outlives an interrupt: on
Ctrl-C, SIGTERM, a timeout or a lost connection :meth:`Remote.stop` signals the
session (sshd kills its process group) and kills the reported group over a second
channel, and a command that reads no stdin is also watched on the host, so its group
dies when the connection does (even if this process is killed outright).
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Sequence

from hgautomation import console, errors
from hgautomation.ssh.text import command_line, short

# Lines of output kept for a RemoteCommandError.
TAIL_LINES = 20
# Seconds between looks at the deadline and the connection while the command is silent.
POLL_INTERVAL = 1.0
# Seconds an unfinished line waits before it is shown anyway (progress dots, prompts).
PARTIAL_FLUSH = 0.3
RECV_SIZE = 65536
# Seconds to wait for the exit status once the output has ended.
STATUS_WAIT = 30.0
# The first line the wrapper prints: the remote process group to stop on interrupt.
GROUP_MARK = "hgautomation-pgid "
# Seconds the remote group gets between SIGTERM and SIGKILL, and the whole stop's bound.
STOP_GRACE = 2
STOP_WAIT = 8.0
# Seconds the login shell may take to start the command (report the group), and after
# how many a line says what is awaited.
START_TIMEOUT = 30.0
START_NOTICE = 5.0
# Seconds to wait for the exit status of a session whose output ended before it started.
STATUS_AFTER_EOF = 2.0


def wire_command(argv: Sequence[str], *, watch: bool) -> str:
    """The POSIX shell text sent for ``argv``: stderr merged, process group reported.

    SSH carries stdout and stderr as two streams; merging them on the host keeps a
    line of one from being spliced into a partial line of the other. With ``watch``
    (the command gets no stdin), a watcher holds the channel's stdin and stops the
    whole group when it closes: the connection is gone.
    """
    lines = ["exec 2>&1", f"printf '{GROUP_MARK}%s\\n' \"$$\""]
    if watch:
        lines += [
            # fd 3: the channel's stdin, which a background job would otherwise lose.
            "exec 3<&0",
            "(cat <&3 >/dev/null 2>&1; kill -TERM -$$) >/dev/null 2>&1 &",
            "exec 3<&-",
            command_line(argv) + " </dev/null",
        ]
    else:
        lines.append(command_line(argv))
    return "\n".join(lines)


class Remote:
    """One command on its own session channel of ``client``.

    Output (stderr merged into stdout on the host) goes to ``on_line`` one decoded
    line at a time; a line still unfinished after ``PARTIAL_FLUSH`` seconds goes to
    ``on_partial`` as far as it came. ``timeout`` bounds the whole command, stdin
    included.
    """

    def __init__(self, client, target, *, on_line: Callable[[str, int], None],
                 on_partial: Callable[[str], None] | None = None,
                 timeout: float | None = None):
        self.client = client
        self.target = target
        self.on_line = on_line  # (whole line, how many of its characters were shown)
        self.on_partial = on_partial  # the start of a line that has not ended yet
        self.timeout = timeout
        self.command = ""
        self.channel = None
        self.group: int | None = None  # the remote process group, once reported
        self._transport = None
        self._deadline: float | None = None
        self._awaiting_mark = False
        self._start_deadline: float | None = None
        self._noticed = False
        self._before_start: list[str] = []
        # Reading state, kept across read(until_started=True) and read().
        self._pending = b""
        self._shown = ""  # the part of the current line already passed to on_partial
        self._waiting_since = 0.0  # when `_pending` became non-empty
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def start(self, argv: Sequence[str], stdin: bytes | None = None, *,
              posix: bool = True) -> None:
        """Open a session and run ``argv``; ``stdin`` is sent, then end-of-file.

        ``posix=False`` (a Windows host, whose shell is PowerShell) sends the command
        line as it is: no wrapper, so no process group to stop.
        """
        import paramiko

        self.command = command_line(argv)
        wire = wire_command(argv, watch=stdin is None) if posix else self.command
        self._awaiting_mark = posix
        try:
            self._transport = self.client.get_transport()
            self.channel = self._transport.open_session(timeout=START_TIMEOUT)
        except (paramiko.SSHException, OSError, AttributeError) as exc:
            raise errors.HostConnectionError(f"{self.target}: cannot open a session: {exc}") \
                from exc
        if self.timeout is not None:
            self._deadline = time.monotonic() + self.timeout
        channel = self.channel
        channel.set_combine_stderr(True)
        channel.settimeout(POLL_INTERVAL)
        channel.exec_command(wire)
        if posix:
            self._await_start()
        if stdin is not None:
            channel.settimeout(self.timeout)
            try:
                channel.sendall(stdin)
                channel.shutdown_write()
            except OSError:
                # The command ended before reading all of its input (the channel closed
                # after its exit status came): its output and status tell the rest. With
                # no status, the connection itself is gone.
                if not channel.exit_status_ready():
                    raise
            channel.settimeout(POLL_INTERVAL)

    def _await_start(self) -> None:
        """Read until the wrapper reports its group (before any stdin is sent: the
        wrapper reads none first). A session that ends without that report never ran
        the command; one that takes longer than ``START_TIMEOUT`` is given up."""
        self._start_deadline = time.monotonic() + START_TIMEOUT
        try:
            self.read(until_started=True)
        finally:
            self._start_deadline = None
            if self._noticed:
                console.get().waiting_done()
        if self._awaiting_mark:
            # The output ended: a shell that closed it may still run (and wait for
            # stdin), so the status gets a short wait only.
            channel = self.channel
            ended = channel.exit_status_ready() or channel.status_event.wait(STATUS_AFTER_EOF)
            said = f"its output: {short(self._before_start[-1])}" if self._before_start \
                else "no output"
            how = (f"ended (exit {channel.recv_exit_status()}{'; ' if self._before_start else ', '}"
                   if ended else "closed its output (")
            raise errors.HostContractError(
                f"{self.target}: the login shell {how}{said}) before running "
                f"{short(self.command)}",
                hint="a login shell must run the command it is given: look for an exit, "
                     "or closed output, in the shell's startup files (~/.bashrc)")

    def _check_start(self) -> None:
        """While the command has not started: a line after START_NOTICE, an error after
        START_TIMEOUT (the caller stops the session)."""
        if self._start_deadline is None:
            return
        now = time.monotonic()
        waited = now - (self._start_deadline - START_TIMEOUT)
        if now > self._start_deadline:
            raise errors.WaitTimeout(
                f"{self.target}: the login shell did not start {short(self.command)} within "
                f"{START_TIMEOUT:.0f}s", hint="a slow ~/.bashrc or profile on the host?")
        if waited >= START_NOTICE:
            out = console.get()
            if not self._noticed:
                self._noticed = True
                out.info(f"    waiting for the login shell of {self.target} to start a "
                         f"command (at most {START_TIMEOUT:.0f}s)")
            out.waiting(f"the login shell of {self.target}", waited)

    def read(self, until_started: bool = False) -> None:
        """Pass the output on until it ends (or, ``until_started``, until the command has
        reported its group); past the deadline, WaitTimeout."""
        channel = self.channel
        channel.settimeout(PARTIAL_FLUSH if self.on_partial else POLL_INTERVAL)
        decoder = self._decoder
        while True:
            if until_started:
                if not self._awaiting_mark:
                    return
                self._check_start()  # also when the login shell talks without end
            try:
                chunk = channel.recv(RECV_SIZE)
            except socket.timeout:
                if self._deadline is not None and time.monotonic() > self._deadline:
                    raise errors.WaitTimeout(
                        f"{self.target}: command did not finish within {self.timeout:.0f}s: "
                        f"{short(self.command)}") from None
                chunk = None
                if channel.closed or not self._transport.is_active():
                    # Nothing more will arrive, but what came with the close may still
                    # be buffered (it raced the timeout): read it before ending.
                    if not channel.recv_ready():
                        break
                    chunk = channel.recv(RECV_SIZE)
            if chunk == b"":
                break
            if chunk:
                if not self._pending:
                    self._waiting_since = time.monotonic()
                self._pending += chunk
                *lines, self._pending = self._pending.split(b"\n")
                for raw in lines:
                    shown = self._shown
                    self._shown = ""
                    self._line(shown + decoder.decode(raw + b"\n").rstrip("\n").rstrip("\r"),
                               len(shown))
                if lines:
                    self._waiting_since = time.monotonic()
            if (self._pending and self.on_partial is not None and not self._awaiting_mark
                    and time.monotonic() - self._waiting_since >= PARTIAL_FLUSH):
                text = decoder.decode(self._pending)  # an incomplete character waits
                self._pending = b""
                if text:
                    self._shown += text
                    self.on_partial(text)
        rest = decoder.decode(self._pending, final=True)
        self._pending = b""
        if rest or self._shown:
            shown, self._shown = self._shown, ""
            self._line(shown + rest.rstrip("\r"), len(shown))

    def _line(self, line: str, shown: int = 0) -> None:
        if self._awaiting_mark:
            if line.startswith(GROUP_MARK):
                self._awaiting_mark = False
                with contextlib.suppress(ValueError):
                    self.group = int(line[len(GROUP_MARK):])
                return
            self._before_start.append(line)  # the login shell's own output
        self.on_line(line, shown)

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

    def stop(self) -> None:
        """Kill the remote process group (TERM, then KILL), bounded, over a new channel.

        First the session itself is signalled (sshd kills the process group of the
        session): that works even before the command reported its group, e.g. while
        a slow login shell still starts. Runs in a helper thread: a channel lock left
        held by an interrupted call must not hang the caller.
        """
        group = self.group
        transport = self._transport
        if self.channel is not None:
            signal_session(self.channel, "TERM")
            if group is None:
                signal_session(self.channel, "KILL")
        if not group or group <= 1 or transport is None or not transport.is_active():
            return
        script = (f"kill -TERM -{group} 2>/dev/null; sleep {STOP_GRACE}; "
                  f"kill -KILL -{group} 2>/dev/null; exit 0")

        def kill() -> None:
            with contextlib.suppress(Exception):
                channel = transport.open_session(timeout=STOP_WAIT)
                channel.exec_command(script)
                channel.status_event.wait(STOP_WAIT)
                channel.close()

        worker = threading.Thread(target=kill, name="hgautomation-remote-stop", daemon=True)
        worker.start()
        worker.join(STOP_WAIT)

    def close(self) -> None:
        if self.channel is not None:
            self.channel.close()


def signal_session(channel, name: str) -> None:
    """Ask sshd to send signal ``name`` ("TERM", "KILL") to the session of ``channel``
    (RFC 4254 6.9; OpenSSH signals the session's whole process group). Best effort:
    a server without the request ignores it, a closed channel is left alone."""
    import paramiko

    transport = getattr(channel, "transport", None)
    if transport is None or channel.closed or not transport.is_active():
        return
    message = paramiko.Message()
    message.add_byte(paramiko.common.cMSG_CHANNEL_REQUEST)
    message.add_int(channel.remote_chanid)
    message.add_string("signal")
    message.add_boolean(False)
    message.add_string(name)
    with contextlib.suppress(Exception):
        # paramiko has no call for this request: its own requests go the same way.
        transport._send_user_message(message)


def run(conn, argv: Sequence[str], *, check: bool = True,
        prefix: str = "", env: dict[str, str] | None = None, timeout: float | None = None,
        quiet: bool = False, sink: list[str] | None = None,
        stdin: bytes | None = None, posix: bool = True) -> int:
    """Run ``argv`` on the host of ``conn`` (its ``client`` and ``target``); see
    ``Connection.run``.

    ``conn.running`` holds the command while it runs, so closing the connection from
    another thread stops it too.
    """
    import paramiko

    client, target, active = conn.client, conn.target, conn.running

    if isinstance(argv, str):
        raise TypeError("a remote command is an argv (a sequence of words), not a string")
    if env:
        argv = ["env", *(f"{k}={v}" for k, v in env.items()), *argv]
    command = command_line(argv)
    out = console.get()
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)

    def emit(line: str, shown: int = 0) -> None:
        tail.append(line)
        if sink is not None:
            sink.append(line)
        if not quiet:
            out.remote_line(prefix, line, shown)

    def partial(text: str) -> None:
        out.remote_partial(prefix, text)

    remote = Remote(client, target, on_line=emit, on_partial=None if quiet else partial,
                    timeout=timeout)
    active.add(remote)
    try:
        remote.start(argv, stdin, posix=posix)
        remote.read()
        status = remote.returncode()
    except (paramiko.SSHException, OSError) as exc:
        remote.stop()
        raise errors.HostConnectionError(
            f"{target}: connection lost while running {short(command)}: {exc}") from exc
    except BaseException:
        # Ctrl-C, SIGTERM, our own timeout: nothing keeps running on the host.
        remote.stop()
        raise
    finally:
        active.discard(remote)
        remote.close()
    if check and status != 0:
        raise errors.RemoteCommandError(
            f"{target}: exit status {status} from {short(command)}"
            + (f"; last output: {console.printable(tail[-1])}" if tail else ""),
            command=command, status=status, output_tail="\n".join(tail))
    return status
