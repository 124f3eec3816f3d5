"""Stopping the processes the harness and the tests start, by PID and with bounded waits."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM `proc`, wait up to `timeout` s, then SIGKILL and reap it."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def kill_group(proc: subprocess.Popen, timeout: float = 30.0) -> tuple:
    """SIGKILL the process group `proc` leads (if `proc` still runs), reap it, drain its pipes.

    Started with ``start_new_session=True``, `proc` leads a group of its own: the child
    and what it started. Otherwise (a group shared with pytest) only `proc` is killed.
    Once `proc` has been reaped its pid may name someone else's group: nothing is
    signalled then. Returns what `communicate` read (None for a pipe it did not read).
    """
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            if os.getpgid(proc.pid) == proc.pid:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # A process that left the group still holds a pipe: stop reading, just reap.
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        proc.wait(timeout=timeout)
        return None, None


@contextlib.contextmanager
def reaped(proc: subprocess.Popen, timeout: float = 30.0) -> Iterator[subprocess.Popen]:
    """Yield `proc`; however the block ends, its process group is not left running.

    The one "kill the child and re-raise" of the suite: if the block raises (a
    TimeoutExpired, a failed assertion, Ctrl-C, pytest-timeout) or ends while `proc`
    still runs, `kill_group` kills and reaps it and the exception goes on. A
    TimeoutExpired leaves with the output that was read after the kill.
    """
    done = False
    try:
        yield proc
    except subprocess.TimeoutExpired as exc:
        out, err = kill_group(proc, timeout)
        done = True
        if exc.output is None:
            exc.output = out
        if exc.stderr is None:
            exc.stderr = err
        raise
    finally:
        if not done:
            kill_group(proc, timeout)


def tail(path, lines: int = 30) -> str:
    """Last `lines` lines of a log file, for error messages ("" if it does not exist)."""
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""
