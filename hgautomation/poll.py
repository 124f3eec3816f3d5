"""The one bounded wait: poll a check until it has an answer, showing the time waited.

Every wait of the tool (an instance to run, an image to become available, an SSM
command to finish, a host to answer SSH) goes through :func:`until`, so each has a
deadline, gives the same feedback while it waits and ends in the same
:class:`~hgautomation.errors.WaitTimeout` (or the error the caller names).
"""

from __future__ import annotations

import time
from typing import Callable, TypeVar

from hgautomation import console, errors

T = TypeVar("T")


def until(check: Callable[[], T | None], *, timeout: float, interval: float,
          what: str | Callable[[], str],
          timeout_error: Callable[[], str | errors.HgAutomationError] | None = None,
          min_attempts: int = 1, min_interval: float = 0.0, quiet: bool = False,
          sleep: Callable[[float], None] | None = None,
          clock: Callable[[], float] | None = None) -> T:
    """Call *check* until it returns something other than None, at most *timeout* seconds.

    *check* may raise to end the wait early (e.g. an instance that died). *what* names
    what is awaited in the feedback ("i-0abc running"), or builds that name from the
    last state seen; *quiet* gives no feedback (retries of a quick operation).
    *timeout_error* builds the WaitTimeout's text (default: "<what>: still waiting after
    <timeout>s"), or another error to raise instead. The wait ends only after at least
    *min_attempts* checks; the pause between them is *interval*, shortened to the
    deadline but not below *min_interval*.
    """
    sleep = sleep or time.sleep
    clock = clock or time.monotonic
    out = console.get()
    start = clock()
    deadline = start + timeout
    attempts = 0
    try:
        while True:
            attempts += 1
            result = check()
            if result is not None:
                return result
            now = clock()
            if now >= deadline and attempts >= min_attempts:
                error = (timeout_error() if timeout_error is not None
                         else f"{_name(what)}: still waiting after {timeout:.0f}s")
                raise error if isinstance(error, errors.HgAutomationError) \
                    else errors.WaitTimeout(error)
            if not quiet:
                out.waiting(_name(what), now - start)
            sleep(min(interval, max(min_interval, deadline - now)))
    finally:
        out.waiting_done()


def _name(what: str | Callable[[], str]) -> str:
    return what if isinstance(what, str) else what()
