"""The one way the tests run the real CLI: `python -m hgautomation` in a subprocess.

tests/conftest.py hands a `CLI` out as the `cli` fixture:

    result = cli.run("list-ec2-resources", cwd=tmp_path, aws=aws_fresh, state=tmp_path)
    with cli.popen("bootstrap-linux-dev", ..., aws=aws_fresh) as proc:  # signal tests
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=90)

Every child gets its environment from `cli_env`, leads its own process group, reads
/dev/null unless given input, and is killed with its group (by `process.reaped`) when
the run times out or the test fails or is interrupted while it runs.

Every completed run is also checked for the width of its tables (README: tables fit
100 columns unless -v): whatever a test asserts, no command the suite runs may print
a wider one.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Union

from .process import reaped

PROJECT = Path(__file__).resolve().parents[2]  # the repository: the package under test
MODULE = ("-m", "hgautomation")
DEFAULT_TIMEOUT = 300.0  # seconds; below pytest-timeout's 600 (pytest.ini)
# Ambient settings of the product (HGAUTOMATION_OWNER, HGAUTOMATION_PROG, ...) and of
# twine (credentials, repository) that a developer may have exported.
DROPPED_PREFIXES = ("HGAUTOMATION_", "TWINE_")

# A table's rule line ("----  ---"): it spans the whole table.
TABLE_RULE = re.compile(r"^-+(?:  -+)*$", re.M)
TABLE_WIDTH = 100
VERBOSE_FLAGS = ("-v", "-vv", "--verbose", "--debug")

Env = Mapping[str, Union[str, None]]
File = Union[int, IO[Any], None]


def cli_env(env: Env | None = None, *, aws: Any = None) -> dict[str, str]:
    """The environment of a CLI child, built from this process's (which conftest isolated).

    - no HGAUTOMATION_* or TWINE_* from the outside;
    - AWS: with `aws` (the moto fixture) every AWS_* is moto's (`aws.env`: endpoint,
      region, keys, config files) and nothing else; with ``aws=False`` there is no
      AWS_* at all; with None the session's isolated ones (empty config files, fake
      keys, no metadata service) are kept;
    - PYTHONPATH is the repository, so the checkout's package is the one run;
    - the test venv's bin first on PATH: its `hg` is the local side of `hg push`;
    - then `env` on top, where a value of None removes the variable.
    """
    result = {k: v for k, v in os.environ.items() if not k.startswith(DROPPED_PREFIXES)}
    if aws is not None:
        result = {k: v for k, v in result.items() if not k.startswith("AWS_")}
        if aws is not False:
            result.update(aws.env)
    result["PYTHONPATH"] = str(PROJECT)
    venv_bin, path = str(Path(sys.executable).parent), result.get("PATH")
    result["PATH"] = f"{venv_bin}{os.pathsep}{path}" if path else venv_bin
    for name, value in (env or {}).items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = value
    return result


class CLI:
    """Runs the CLI; see the module docstring. Keyword arguments of `run` and `popen`:

    cwd      the child's working directory (None: this process's)
    env      variables to set (None as a value: to unset) over `cli_env`'s
    aws      the `aws`/`aws_fresh` fixture to talk to, False for no AWS_* at all
    state    a state directory: ``--state-path STATE`` before `args`
    program  what the interpreter runs instead of ``-m hgautomation``, e.g.
             ``("-X", "importtime", "-m", "hgautomation")`` or ``("-c", source)``
    """

    def command(self, *args: str, state: Path | str | None = None,
                program: Sequence[str] = MODULE) -> list[str]:
        """The argv of a run: this interpreter, `program`, [--state-path STATE], `args`."""
        state_args = [] if state is None else ["--state-path", str(state)]
        return [sys.executable, *program, *state_args, *map(str, args)]

    def run(self, *args: str, cwd: Path | str | None = None, env: Env | None = None,
            aws: Any = None, state: Path | str | None = None, input: str | None = None,
            timeout: float = DEFAULT_TIMEOUT,
            program: Sequence[str] = MODULE) -> subprocess.CompletedProcess[str]:
        """Run to completion within `timeout` seconds, text output captured.

        On timeout the child's process group is killed and TimeoutExpired raised (with
        the output so far); so it is on any other exception, e.g. Ctrl-C.
        """
        if timeout is None:
            raise ValueError("a CLI run always has a timeout")
        with self.popen(*args, cwd=cwd, env=env, aws=aws, state=state, program=program,
                        stdin=subprocess.DEVNULL if input is None else subprocess.PIPE
                        ) as proc:
            out, err = proc.communicate(input, timeout=timeout)
        if not any(a in VERBOSE_FLAGS for a in map(str, args)):
            check_table_width(out, args)
            check_table_width(err, args)  # -T json puts tables on stderr
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    @contextlib.contextmanager
    def popen(self, *args: str, cwd: Path | str | None = None, env: Env | None = None,
              aws: Any = None, state: Path | str | None = None,
              program: Sequence[str] = MODULE, stdin: File = subprocess.DEVNULL,
              stdout: File = subprocess.PIPE, stderr: File = subprocess.PIPE,
              text: bool = True) -> Iterator[subprocess.Popen]:
        """Start the child for the block to drive (signals, first boots); a context manager.

        The block bounds its own waits (``communicate(timeout=...)``); if it raises, or
        ends with the child still running, the child's process group is killed and reaped.
        """
        proc = subprocess.Popen(
            self.command(*args, state=state, program=program), cwd=cwd,
            env=cli_env(env, aws=aws), stdin=stdin, stdout=stdout, stderr=stderr,
            text=text, start_new_session=True)
        with reaped(proc):
            yield proc


def check_table_width(text: str, args: Sequence[object]) -> None:
    """Every table in `text` fits TABLE_WIDTH columns (AssertionError naming it)."""
    for rule in TABLE_RULE.finditer(text or ""):
        if len(rule.group()) > TABLE_WIDTH:
            start = text.rfind("\n", 0, max(rule.start() - 1, 0)) + 1
            raise AssertionError(
                f"a table of {len(rule.group())} columns (over {TABLE_WIDTH}) from "
                f"{' '.join(map(str, args))}:\n{text[start:rule.start()]}")


def mutating_calls(stderr: str) -> int:
    """The "N mutating AWS calls" of the CLI's -v call summary."""
    match = re.search(r"(\d+) mutating AWS calls", stderr)
    assert match, f"no call summary in output:\n{stderr}"
    return int(match.group(1))


def total_calls(stderr: str) -> int:
    """The "N AWS calls," of the CLI's -v call summary."""
    match = re.search(r"(\d+) AWS calls,", stderr)
    assert match, f"no call summary in output:\n{stderr}"
    return int(match.group(1))
