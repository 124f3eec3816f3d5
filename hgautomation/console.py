"""The only place that writes to the terminal, and to the run's log file.

Library code asks for the console with :func:`get` and reports through it:
timed steps, remote output lines, progress for transfers and waits, tables.
Results go to stdout, everything else to stderr. ``rich`` (which twine brings)
is imported only when a progress bar is actually drawn on a terminal.

With a log open (:meth:`Console.open_log`; the CLI opens one per run), every
message goes there too, whatever the verbosity, with a timestamp, plus what only
the log gets (:meth:`Console.trace`: each AWS call, and the libraries' own logging:
paramiko, botocore, urllib3 never write to the terminal, see :func:`configure`).

Remote text (a host's command output, the Try server's reply) is untrusted: it is
shown and logged through :func:`printable`, so it cannot move the cursor, clear the
screen, retitle the window or start a line of its own.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import IO

from hgautomation.streams import discard_stdout

QUIET, NORMAL, VERBOSE = -1, 0, 1
# Without a terminal, a wait reports itself once per this many seconds.
WAIT_REPORT_EVERY = 30.0
_SPINNER = "|/-\\"
# A remote reply that arrives whole (the Try server's): what the terminal shows of it;
# the log has each line whole, up to REMOTE_LOG_CHARS characters in all.
REMOTE_SHOWN_LINES = 200
REMOTE_SHOWN_CHARS = 500
REMOTE_LOG_CHARS = 1024 * 1024

# What a terminal acts on instead of showing: C0 controls but tab, DEL, C1 controls
# (ESC, CSI, OSC start sequences; CR and LF rewrite or forge lines), and the Unicode
# marks that reorder or split text invisibly (bidi controls, line/paragraph separators).
_UNPRINTABLE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e"
                          "\u2066-\u2069]")
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match) -> str:
    char = match.group()
    code = ord(char)
    return _SHORT_ESCAPES.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def printable(text: str) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``, ``\\n``,
    ``\\r``, ``\\u202e``); tabs stay. Character by character, so the escape of a
    string is the escapes of its parts joined."""
    return _UNPRINTABLE.sub(_escape, text) if _UNPRINTABLE.search(text) else text


class Progress:
    """Handle for one progress bar; ``advance`` is safe from any thread."""

    def __init__(self, description: str, total: float | None):
        self.description = description
        self.total = total
        self.completed = 0.0
        self._bar = None
        self._task = None

    def advance(self, amount: float) -> None:
        self.completed += amount
        if self._bar is not None:
            self._bar.update(self._task, completed=self.completed)

    def update(self, completed: float) -> None:
        self.advance(completed - self.completed)


class Console:
    """Writes steps, lines, progress and tables according to the verbosity."""

    def __init__(self, verbosity: int = NORMAL, err: IO[str] | None = None,
                 out: IO[str] | None = None):
        self.verbosity = verbosity
        self._err = err
        self._out = out
        self._lock = threading.Lock()
        self._wait_reported = 0.0  # elapsed time of the last non-terminal wait line
        self._wait_ticks = 0
        self._status_shown = False
        self._open_line: str | None = None  # prefix of a remote line shown in part
        self._log: IO[str] | None = None
        self._copies: list[IO[str]] = []  # what the log gets, also written here (copy_to)
        self._wait_logged = 0.0
        # -T json: results and tables go to stderr too; stdout gets one JSON document.
        self.machine = False

    @property
    def err(self) -> IO[str]:
        return self._err if self._err is not None else sys.stderr

    @property
    def out(self) -> IO[str]:
        return self._out if self._out is not None else sys.stdout

    # -- the log file ---------------------------------------------------------
    def open_log(self, path, header: str) -> None:
        """Log every message of this run to ``path`` (created 0600), starting with ``header``."""
        import os

        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        # Open for the whole run; close_log() closes it.
        self._log = open(fd, "a", encoding="utf-8", errors="replace",  # noqa: SIM115
                         buffering=1)
        self.trace(header)

    def close_log(self) -> None:
        with self._lock:
            if self._log is not None:
                try:
                    self._log.close()
                finally:
                    self._log = None

    def trace(self, message: str) -> None:
        """A line for the log only (never shown)."""
        with self._lock:
            self._to_log(message)

    def _to_log(self, text: str) -> None:
        """Under the lock: ``text``, each line stamped, into the log if one is open."""
        if self._log is None and not self._copies:
            return
        stamp = time.strftime("%H:%M:%S", time.gmtime())
        stamped = "".join(f"{stamp} {line}\n" for line in text.split("\n"))
        try:
            if self._log is not None:
                self._log.write(stamped)
        except (OSError, ValueError) as exc:
            # A full disk does not stop the run: the log ends, and the run says so once.
            self._log = None
            self._write_unlogged(f"warning: the rest of this run is not logged (cannot "
                                 f"write its log: {getattr(exc, 'strerror', None) or exc})")
        for copy in list(self._copies):
            try:
                copy.write(stamped)
            except (OSError, ValueError):
                self._copies.remove(copy)

    @contextlib.contextmanager
    def copy_to(self, path) -> Iterator[None]:
        """While the block runs, also write what the run's log gets (every message,
        whatever the verbosity) to ``path``, created 0600: one piece of work's own log."""
        import os

        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "w", encoding="utf-8", errors="replace", buffering=1) as copy:
            with self._lock:
                self._copies.append(copy)
            try:
                yield
            finally:
                with self._lock:
                    if copy in self._copies:
                        self._copies.remove(copy)

    def _write(self, stream: IO[str], text: str, end: str = "\n") -> None:
        with self._lock:
            self._to_log(text)
            try:
                if self._open_line is not None:
                    self.err.write("\n")  # end the partly shown remote line first
                    self._open_line = None
                stream.write(text + end)
                stream.flush()
            except BrokenPipeError:
                # The reader went away (`| head`): the command still finishes its work.
                if stream is sys.stdout:
                    discard_stdout()

    # -- messages ---------------------------------------------------------
    def info(self, message: str) -> None:
        if self.verbosity >= NORMAL:
            self._write(self.err, message)
        else:
            self.trace(message)

    def detail(self, message: str) -> None:
        if self.verbosity >= VERBOSE:
            self._write(self.err, message)
        else:
            self.trace(message)

    def warn(self, message: str) -> None:
        self._write(self.err, f"warning: {message}")

    def result(self, message: str) -> None:
        """A line of the command's result: always shown, on stdout (stderr with -T json)."""
        self._write(self.err if self.machine else self.out, message)

    def emit(self, document: dict) -> None:
        """The command's result as one JSON document on stdout, with -T json only."""
        if not self.machine:
            return
        import json

        self._write(self.out, json.dumps(document, indent=2, sort_keys=True))

    def can_ask(self) -> bool:
        """Whether a question can be answered: stdin is a terminal."""
        try:
            return sys.stdin is not None and sys.stdin.isatty()
        except ValueError:  # closed
            return False

    def confirm(self, question: str) -> bool:
        """Ask a yes/no question on the terminal (stderr, stdin); only "y"/"yes" is yes."""
        self._write(self.err, f"{question} [y/N] ", end="")
        answer = sys.stdin.readline()
        if not answer.endswith("\n"):
            self._write(self.err, "")  # end of input: end the question's line
        return answer.strip().lower() in ("y", "yes")

    def remote_line(self, prefix: str, line: str, shown: int = 0) -> None:
        """One line of a remote command's output, streamed as it arrives, escaped
        (:func:`printable`).

        ``shown``: how much of it :meth:`remote_partial` already wrote. If that part
        is still the last thing on the screen, only the rest is added; otherwise the
        rest gets a line (and the prefix) of its own.
        """
        if shown:
            head = printable(line[:shown])
            line, shown = head + printable(line[shown:]), len(head)
        else:
            line = printable(line)
        if self.verbosity < NORMAL:
            self.trace(f"{prefix}{line}")
            return
        with self._lock:
            if shown and self._open_line == prefix:
                self._open_line = None
                self._to_log(f"{prefix}{line}")
                self._raw(line[shown:] + "\n")
                return
        if shown:
            self.trace(f"{prefix}{line}")  # the whole line once in the log
            with self._lock:
                self._write_unlogged(f"{prefix}{line[shown:]}")
            return
        self._write(self.err, f"{prefix}{line}")

    def remote_partial(self, prefix: str, text: str) -> None:
        """The start of a remote line that has not ended yet (progress dots), escaped."""
        if self.verbosity < NORMAL:
            return
        text = printable(text)
        with self._lock:
            if self._open_line == prefix:
                self._raw(text)
                return
        with self._lock:
            try:
                if self._open_line is not None:
                    self.err.write("\n")
                self.err.write(f"{prefix}{text}")
                self.err.flush()
            except BrokenPipeError:
                pass
            self._open_line = prefix

    def remote_reply(self, prefix: str, lines: Sequence[str]) -> None:
        """A remote reply that came whole, each element one escaped line: the first
        ``REMOTE_SHOWN_LINES``, each cut at ``REMOTE_SHOWN_CHARS`` characters, are shown;
        the log has the lines whole, up to ``REMOTE_LOG_CHARS`` characters in all, and
        says what it left out."""
        show = self.verbosity >= NORMAL
        budget = REMOTE_LOG_CHARS
        logged = 0
        for n, raw in enumerate(lines):
            if budget <= 0 and (n >= REMOTE_SHOWN_LINES or not show):
                break  # nothing more to show or to log
            if budget > 0:
                entry = raw[:budget]
                budget -= len(entry)
                logged += 1
                cut = len(raw) - len(entry)
                self.trace(f"{prefix}{printable(entry)}"
                           + (f" … {cut:,} more characters not logged" if cut else ""))
            if show and n < REMOTE_SHOWN_LINES:
                text = printable(raw[:REMOTE_SHOWN_CHARS])
                if len(raw) > REMOTE_SHOWN_CHARS:
                    text += (f" … {len(raw) - REMOTE_SHOWN_CHARS:,} more characters not "
                             "shown (see the run's log)")
                with self._lock:
                    self._write_unlogged(f"{prefix}{text}")
        if show and len(lines) > REMOTE_SHOWN_LINES:
            self._write(self.err, f"{prefix}… {len(lines) - REMOTE_SHOWN_LINES:,} more lines "
                                  "not shown (see the run's log)")
        if logged < len(lines):
            self.trace(f"{prefix}… {len(lines) - logged:,} more lines not logged (a reply "
                       f"is logged up to {REMOTE_LOG_CHARS:,} characters)")

    def _write_unlogged(self, text: str) -> None:
        """Under the lock: a line on stderr only (its whole form was logged already)."""
        try:
            if self._open_line is not None:
                self.err.write("\n")
                self._open_line = None
            self.err.write(text + "\n")
            self.err.flush()
        except BrokenPipeError:
            pass

    def _raw(self, text: str) -> None:
        try:
            self.err.write(text)
            self.err.flush()
        except BrokenPipeError:
            pass

    # -- waits ----------------------------------------------------------------
    def waiting(self, what: str, elapsed: float) -> None:
        """Feedback during a bounded wait: a spinner on a terminal, else a line every 30 s."""
        if elapsed - self._wait_logged >= WAIT_REPORT_EVERY:
            self._wait_logged = elapsed
            self.trace(f"    still waiting: {what} ({_duration(elapsed)})")
        if self.verbosity < NORMAL:
            return
        if self._fancy():
            self._wait_ticks += 1
            spin = _SPINNER[self._wait_ticks % len(_SPINNER)]
            with self._lock:
                self.err.write(f"\r    {spin} {what} ({_duration(elapsed)})\x1b[K")
                self.err.flush()
                self._status_shown = True
        elif elapsed - self._wait_reported >= WAIT_REPORT_EVERY:
            self._wait_reported = elapsed
            with self._lock:
                self._write_unlogged(f"    still waiting: {what} ({_duration(elapsed)})")

    def waiting_done(self) -> None:
        """End of a wait: clear the spinner line."""
        self._wait_reported = 0.0
        self._wait_logged = 0.0
        if self._status_shown:
            with self._lock:
                self.err.write("\r\x1b[K")
                self.err.flush()
                self._status_shown = False

    # -- timed steps ------------------------------------------------------
    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        """Announce a step, then report how long it took (or that it failed)."""
        self.info(f"==> {title}")
        start = time.monotonic()
        try:
            yield
        except BaseException:
            self.info(f"    {title}: failed after {time.monotonic() - start:.1f}s")
            raise
        self.info(f"    {title}: done in {time.monotonic() - start:.1f}s")

    # -- progress ---------------------------------------------------------
    def _fancy(self) -> bool:
        return self.verbosity >= NORMAL and self.err.isatty()

    @contextlib.contextmanager
    def progress(self, description: str, total: float | None = None,
                 unit: str = "bytes") -> Iterator[Progress]:
        """A progress bar on a terminal; nothing but a final line elsewhere."""
        handle = Progress(description, total)
        start = time.monotonic()
        if not self._fancy():
            yield handle
            if unit == "bytes" and handle.completed:
                elapsed = max(time.monotonic() - start, 1e-6)
                rate = handle.completed / elapsed / 1e6
                self.detail(f"    {description}: {handle.completed / 1e6:.1f} MB "
                            f"in {elapsed:.1f}s ({rate:.1f} MB/s)")
            return
        from rich import progress as rp  # heavy: only for a real terminal

        columns: list = [rp.TextColumn("{task.description}"), rp.BarColumn()]
        if unit == "bytes":
            columns += [rp.DownloadColumn(), rp.TransferSpeedColumn()]
        else:
            columns += [rp.TimeElapsedColumn()]
        bar = rp.Progress(*columns, transient=True,
                          console=_rich_console(self.err))
        with bar:
            handle._bar = bar
            handle._task = bar.add_task(description, total=total)
            yield handle

    def digest(self, sha256: str) -> str:
        """A hash for a table: its first 12 digits, all of it with -v (tables stay
        within 100 columns; -T json and the log have the whole hash)."""
        return sha256 if self.verbosity >= VERBOSE else sha256[:12]

    def clip(self, text: str, width: int) -> str:
        """Free text for a table cell: at most ``width`` characters, ending in "..." when
        cut; all of it with -v (the log has it whole either way)."""
        if self.verbosity >= VERBOSE or len(text) <= width:
            return text
        self.trace(f"(shown shortened) {text}")
        return text[:width - 3] + "..."

    # -- tables -----------------------------------------------------------
    def table(self, headers: Sequence[str], rows: Sequence[Sequence[object]],
              title: str | None = None, drop_empty: bool = False) -> None:
        """A plain aligned table on stdout (easy to read and to grep).

        ``drop_empty``: leave out the columns with no value in any row.
        """
        cells = [[str(c) for c in headers]] + [[str(c) for c in r] for r in rows]
        if drop_empty and rows:
            keep = [i for i in range(len(headers)) if any(row[i] for row in cells[1:])]
            cells = [[row[i] for i in keep] for row in cells]
            headers = cells[0]
        widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
        lines = []
        if title:
            lines.append(title)
        for n, row in enumerate(cells):
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        if not rows:
            lines.append("(nothing)")
        self._write(self.err if self.machine else self.out, "\n".join(lines))


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """"1 instance", "2 instances" (``nouns``: an irregular plural)."""
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"


def _duration(seconds: float) -> str:
    """12s, 4m05s, 1h02m."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _rich_console(stream: IO[str]):
    from rich.console import Console as RichConsole

    return RichConsole(file=stream, stderr=stream is sys.stderr)


_current = Console()


def get() -> Console:
    """The console configured by the CLI (a default one when used as a library)."""
    return _current


class _LibraryLog(logging.Handler):
    """Python logging (paramiko's transport thread, botocore, urllib3) into the run's
    log, never onto the terminal: the tool reports failures itself, in one line."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # noqa: BLE001 - a record that cannot be formatted is dropped
            return
        get().trace(f"[{record.name}] {record.levelname}: {text}")


def configure(verbosity: int) -> Console:
    """The console of this run; library logging from now on goes to its log only
    (without a handler Python's last resort would print WARNING and up on stderr)."""
    global _current
    _current = Console(verbosity)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _LibraryLog)]:
        root.removeHandler(handler)
    root.addHandler(_LibraryLog())
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)  # a library's DeprecationWarning is not for the user
    return _current
