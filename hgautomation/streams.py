"""Standard streams that are closed or whose reader went away (cron, ``>&-``, ``| head``).

Standard library only: the bootstrap uses it before any dependency exists.
"""

from __future__ import annotations

import os
import sys


def ensure_standard_fds() -> None:
    """Give a closed stdin, stdout or stderr (cron, ``>&-``) /dev/null instead, and let
    stdout and stderr escape what they cannot encode.

    Otherwise the next file opened would take its number: a lock file would become
    the CLI's stdout, and ``sys.stdout`` would be None.
    """
    for fd, mode in ((0, os.O_RDONLY), (1, os.O_WRONLY), (2, os.O_WRONLY)):
        try:
            os.fstat(fd)
        except OSError:
            opened = os.open(os.devnull, mode)
            if opened != fd:
                os.dup2(opened, fd)
                os.close(opened)
    for name, fd, mode in (("stdin", 0, "r"), ("stdout", 1, "w"), ("stderr", 2, "w")):
        if getattr(sys, name) is None:
            setattr(sys, name, open(fd, mode, closefd=False))  # noqa: SIM115 - lives on
    for stream in (sys.stdout, sys.stderr):
        # A file name that is not valid UTF-8 is shown escaped, never a crash.
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


def discard_stdout() -> None:
    """Point stdout at /dev/null (its reader is gone), so no later write or flush fails."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
