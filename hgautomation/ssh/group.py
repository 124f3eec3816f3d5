"""Local helper processes (``ssh -G``, a ProxyCommand) in a process group of their own.

What such a process starts (a ``Match exec`` command, a proxy's ``nc``) joins its
group, so :func:`stop` ends all of it. The leader is looked at without being reaped
(:func:`status`), so the group id it lends cannot be reused before the group is
killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time


def start(argv: list[str], **kwargs) -> subprocess.Popen:
    """``subprocess.Popen(argv, **kwargs)`` leading a new process group (session)."""
    return subprocess.Popen(argv, start_new_session=True, **kwargs)


def status(proc: subprocess.Popen) -> int | None:
    """The exit status of ``proc`` (negative: the signal that killed it), None while it
    runs; a finished process is left unreaped."""
    if proc.returncode is not None:
        return proc.returncode
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return proc.poll()
    if info is None:
        return None
    return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status


def wait(proc: subprocess.Popen, timeout: float) -> int | None:
    """Wait up to ``timeout`` seconds for ``proc`` to end (left unreaped); its status,
    or None if it still runs."""
    deadline = time.monotonic() + timeout
    pause = 0.002
    while (code := status(proc)) is None:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.1)
    return code


def stop(proc: subprocess.Popen, grace: float = 0.0) -> None:
    """End ``proc``'s whole group: SIGTERM and ``grace`` seconds for the leader to go
    (if ``grace``), then SIGKILL; then reap the leader (bounded)."""
    if grace:
        _signal(proc, signal.SIGTERM)
        wait(proc, grace)
    _signal(proc, signal.SIGKILL)  # the leader, or what it left in its group
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=max(grace, 1.0))


def _signal(proc: subprocess.Popen, signum: int) -> None:
    if proc.returncode is not None:
        return  # reaped: its id may name another group by now
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signum)
