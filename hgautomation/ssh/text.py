"""How the communicator spells commands and failures.

:func:`command_line` is the one place an argv is quoted for the remote shell;
:func:`short` and :func:`describe` shape what goes into error messages.
"""

from __future__ import annotations

import shlex
import socket
from collections.abc import Sequence


def command_line(argv: Sequence[str]) -> str:
    """``argv`` as one POSIX shell command line, every word quoted as needed."""
    if isinstance(argv, str):
        raise TypeError("command_line() takes a sequence of words, not a string")
    return shlex.join(argv)


def short(command: str, limit: int = 120) -> str:
    """``command`` on one line, cut to ``limit`` characters for a message."""
    one = " ".join(command.split())
    return one if len(one) <= limit else one[:limit - 3] + "..."


def describe(exc: BaseException) -> str:
    """A short lower-case phrase for a connection or transfer failure."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if isinstance(exc, UnicodeError):
        return "invalid host name"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())
