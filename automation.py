#!/usr/bin/env python3
"""Set up hgautomation's virtualenv, then run its command-line interface.

    ./automation.py [global options] COMMAND [options]      (--help lists them)

The first run creates a virtualenv (build/venv-automation next to this file,
or $HGAUTOMATION_VENV), installs the pinned, hashed requirements.txt into it
with `pip install --require-hashes` (one line per phase on stderr; pip's own
output goes to hgautomation-pip.log in the venv, its end shown if pip
fails), records a stamp, and re-executes this script with the virtualenv's
interpreter (os.execv; a child process on Windows). Later runs compare the
stamp (sha256 of requirements.txt plus the version and identity of the
venv's interpreter) and go straight on, with no venv or pip work. Changing
requirements.txt reinstalls on the next run; a venv whose interpreter is
gone or changed is rebuilt, except when this script runs with that venv's
own interpreter. Standard library only (the work is in
hgautomation/venv_bootstrap.py); any Python >= 3.9.

Environment:
  HGAUTOMATION_VENV               where the virtualenv lives
  HGAUTOMATION_BOOTSTRAP_TRACE=1  print each bootstrap decision on stderr
  pip.conf, PIP_* variables       honoured by the pip that installs requirements

Exit codes of the bootstrap itself; the CLI's own codes (hgautomation/errors.py)
pass straight through, and 3, 70, 130 and 143 mean the same there:
  3    configuration: Python too old, the venv/ensurepip modules are missing
       (Debian/Ubuntu: install python3-venv), HGAUTOMATION_VENV is not a venv
  70   internal error in the bootstrap (a bug)
  73   the virtualenv could not be created
  75   pip could not install requirements.txt (no stamp: the next run retries)
  130  interrupted (Ctrl-C)
  143  terminated (SIGTERM)
  pip and venv creation run in their own process group, stopped as a whole on
  Ctrl-C or SIGTERM; only a virtualenv this script created is ever deleted.
"""

# This file must parse on old Pythons (even 2.7: no f-strings or annotations)
# so that they reach the version check below and get a clear message.

import os
import sys

MIN_PYTHON = (3, 9)
EXIT_CONFIGURATION = 3


def python_too_old(version_info=None):
    """Return the error message if ``version_info`` is older than MIN_PYTHON, else None."""
    version = tuple((version_info or sys.version_info)[:2])
    if version >= MIN_PYTHON:
        return None
    # %-formatting on purpose (UP031 would suggest f-strings): this file must run on old Pythons.
    return ("Python %d.%d is too old: hgautomation needs Python %d.%d or newer "  # noqa: UP031
            "(run this script with a newer python3)" % (version + MIN_PYTHON))


def _main():
    problem = python_too_old()
    if problem:
        sys.stderr.write("automation.py: error: %s\n" % problem)  # noqa: UP031 - old Pythons
        sys.exit(EXIT_CONFIGURATION)
    script = os.path.realpath(__file__)  # also when started through a symlink
    here = os.path.dirname(script)
    if here not in sys.path:
        sys.path.insert(0, here)
    from hgautomation import venv_bootstrap

    venv_bootstrap.entry(script, sys.argv[1:])


if __name__ == "__main__":
    _main()
