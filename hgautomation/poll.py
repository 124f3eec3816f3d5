"""The one bounded wait: poll a check until it has an answer, showing the time waited.

Every wait of the tool (an instance to run, an image to become available, an SSM
command to finish) goes through :func:`until`, so each has a deadline, gives the
same feedback while it waits and ends in the same :class:`~hgautomation.errors.WaitTimeout`.
"""

from __future__ import annotations

import time
from typing import Callable, TypeVar

from hgautomation import console, errors

T = TypeVar("T")


def until(check: Callable[[], T | None], *, timeout: float, interval: float, what: str,
          timeout_message: Callable[[], str] | None = None,
          sleep: Callable[[float], None] = time.sleep,
          clock: Callable[[], float] = time.monotonic) -> T:
    """Call *check* until it returns something other than None, at most *timeout* seconds.

    *check* may raise to end the wait early (e.g. an instance that died). *what* names
    what is awaited in the feedback ("i-0abc running"); *timeout_message* builds the
    WaitTimeout text from the last state seen (default: "<what> after <timeout>s").
    """
    out = console.get()
    start = clock()
    deadline = start + timeout
    try:
        while True:
            result = check()
            if result is not None:
                return result
            now = clock()
            if now >= deadline:
                message = (timeout_message() if timeout_message
                           else f"{what}: still waiting after {timeout:.0f}s")
                raise errors.WaitTimeout(message)
            out.waiting(what, now - start)
            sleep(min(interval, max(0.0, deadline - now)))
    finally:
        out.waiting_done()
