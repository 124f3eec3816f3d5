"""The entry point: top-level help, dispatch to a flow, one line per error.

Each subcommand maps to ``module:function`` under ``hgautomation.commands``;
the module is imported only when that subcommand runs, so ``--help`` and
argument errors never pay for boto3, paramiko or twine. The parser itself
lives in :mod:`hgautomation.arguments`; the top-level help (what a bare
``automation.py`` prints) is rendered from :mod:`hgautomation.catalog` without it.
"""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Sequence

from hgautomation import errors
from hgautomation.catalog import COMMANDS, DESCRIPTION, GLOBAL_OPTIONS


class SignalInterrupt(KeyboardInterrupt):
    """Raised in the main thread by SIGTERM so cleanup runs as for Ctrl-C."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def overview(prog: str, columns: int = 79) -> str:
    """The top-level help: usage, every subcommand, the global options."""
    global_options = [("-h, --help", "show this help and exit"),
                      ("--version", "show the versions of this tool, Python, boto3, "
                                    "paramiko and twine")] + [
        (", ".join(o.flags) + (f" {o.metavar}" if o.metavar else ""), o.help)
        for o in GLOBAL_OPTIONS]
    commands = [(name, help_text) for name, (help_text, _target) in COMMANDS.items()]
    commands.append(("help [COMMAND]", "show this help, or the options and examples of "
                                       "COMMAND"))
    width = max(len(left) for left, _ in commands + global_options) + 4

    def entries(rows: list[tuple[str, str]]) -> list[str]:
        return [textwrap.fill(text, columns, initial_indent=f"  {left:<{width - 2}}",
                              subsequent_indent=" " * width)
                for left, text in rows]

    lines = [f"usage: {prog} [global options] COMMAND [options]", "", DESCRIPTION, "",
             "commands:", *entries(commands), "",
             "global options (before or after COMMAND):", *entries(global_options), "",
             f"'{prog} help COMMAND' lists the options of COMMAND, with examples."]
    return "\n".join(lines) + "\n"


def version_text() -> str:
    """What --version prints: ours, the interpreter's and the main libraries' versions
    (read from their metadata, without importing them)."""
    from importlib import metadata

    from hgautomation import __version__

    def installed(name: str) -> str:
        try:
            return f"{name} {metadata.version(name)}"
        except metadata.PackageNotFoundError:
            return f"{name} (not installed)"

    python = f"Python {sys.version.split()[0]} ({sys.executable})"
    libraries = ", ".join(installed(n) for n in ("boto3", "paramiko", "twine"))
    return f"hgautomation {__version__}\n{python}\n{libraries}\n"


def _help_and_version(argv: list[str]) -> tuple[str | None, list[str]]:
    """``--version`` before the command prints the versions; ``help [COMMAND]`` is the
    overview or COMMAND's help. Returns (text to print, or None; the argv to parse)."""
    at = next((i for i, a in enumerate(argv) if a in COMMANDS or a == "help"), len(argv))
    if "--version" in argv[:at]:
        return version_text(), argv
    if at < len(argv) and argv[at] == "help":
        rest = argv[at + 1:]
        if not rest:
            return "", argv  # the overview
        return None, [*argv[:at], rest[0], "--help"]
    return None, argv


def _context(options):
    """The Context of a run from its global options (:class:`arguments.GlobalOptions`)."""
    from pathlib import Path

    from hgautomation.context import Context
    from hgautomation.state import StateDir, check_home, local_path

    check_home()
    verbosity = -1 if options.quiet else min(options.verbose, 1)
    return Context(
        state=StateDir.at(options.state_path),
        verbosity=verbosity,
        debug=options.debug,
        explicit_region=options.aws_region,
        aws_profile=options.aws_profile,
        explicit_hg_repo=Path(options.hg_repo) if options.hg_repo else None,
        ssh_config=(local_path(options.ssh_config, "--ssh-config") if options.ssh_config
                    else None),
        identity=_identity(options.identity),
    )


def _identity(value: str | None):
    """-i FILE: an existing, readable private key (checked before anything starts)."""
    from hgautomation.state import local_path

    if value is None:
        return None
    try:
        path = local_path(value, "-i/--identity")
        usable = path.is_file() and os.access(path, os.R_OK)
    except errors.ConfigurationError as exc:
        raise errors.UsageError(exc.message, hint=exc.hint) from None
    except (OSError, ValueError) as exc:  # too long a name, a NUL byte
        raise errors.UsageError(f"-i/--identity: not a usable path ({exc})") from None
    if not usable:
        raise errors.UsageError(f"-i/--identity: {path} is not a readable file")
    return path


def _on_sigterm(signum, frame):
    raise SignalInterrupt(signum)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    from hgautomation.streams import discard_stdout, ensure_standard_fds

    ensure_standard_fds()
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = prog or os.environ.get("HGAUTOMATION_PROG") or os.path.basename(sys.argv[0])
    debug = "--debug" in argv
    log = None
    try:
        text, argv = _help_and_version(argv)
        if argv in ([], ["-h"], ["--help"]) or text == "":  # without argparse
            text = overview(prog)
        if text:
            sys.stdout.write(text)
            sys.stdout.flush()
            return 0
        from hgautomation import arguments

        parsed = arguments.parse_args(argv, prog)
        if parsed.command is None or parsed.help:
            sys.stdout.write(overview(prog))
            sys.stdout.flush()
            return 0
        from hgautomation import console

        debug = debug or bool(parsed.globals.debug)
        ctx = _context(parsed.globals)
        ctx.check_state_outside_checkout()
        console.configure(ctx.verbosity).machine = parsed.json
        log = _open_log(ctx, parsed.command.name, argv)
        _report_sources(parsed.sources, parsed.values, debug)
        import signal  # not needed for --help: a millisecond of start-up saved

        signal.signal(signal.SIGTERM, _on_sigterm)
        code = int(parsed.command.flow(ctx, parsed.options) or 0)
        _close_log(f"exit {code}")
        return code
    except errors.HgAutomationError as exc:
        return _report(exc.one_line(), exc.exit_code, debug, log)
    except SignalInterrupt as exc:
        return _report("interrupted (SIGTERM); cleanup done", 128 + exc.signum, debug, log,
                       name_log=False)
    except KeyboardInterrupt:
        return _report("interrupted; cleanup done", errors.Interrupted.exit_code, debug, log,
                       name_log=False)
    except BrokenPipeError:
        # The reader of our output went away (e.g. `--help | head -1`): its choice,
        # not an error. Later writes, and the flush at exit, go to /dev/null.
        discard_stdout()
        return 0
    except Exception as exc:  # noqa: BLE001 - last resort for bugs: one line unless --debug
        name = type(exc).__name__
        return _report(f"internal error: {name}: {exc} (run with --debug for a traceback)",
                       errors.INTERNAL_ERROR_EXIT, debug, log)


def _report_sources(sources: dict[str, str], values: dict[str, object], debug: bool) -> None:
    """Where each value the command line did not give came from: in the log, and on
    stderr with --debug."""
    from hgautomation import console

    for dest, source in sorted(sources.items()):
        line = f"setting {dest} = {values[dest]!r} (from {source})"
        if debug:
            sys.stderr.write(line + "\n")
        console.get().trace(line)


LOGS_KEPT = 100


def _open_log(ctx, command: str, argv: list[str]):
    """The run's full-detail log, <state>/logs/<UTC time>-<command>.log; None if the
    state directory cannot hold one: the run says so in one line and goes on."""
    import time

    from hgautomation import __version__, console

    path = None
    try:
        logs = ctx.state.logs
        _rotate_logs(logs)
        now = time.time()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
        path = logs / f"{stamp}-{command}.log"
        for n in range(2, 100):  # runs started in the same millisecond
            if not os.path.lexists(path):
                break
            path = logs / f"{stamp}-{command}-{n}.log"
        console.get().open_log(path, f"hgautomation {__version__} (Python "
                                     f"{sys.version.split()[0]}), pid {os.getpid()}: "
                                     f"{' '.join(argv)}")
        return path
    except (OSError, errors.HgAutomationError) as exc:
        reason = (exc.one_line() if isinstance(exc, errors.HgAutomationError)
                  else f"cannot write {path or ctx.state.root / 'logs'}: "
                       f"{exc.strerror or exc}")
        console.get().warn(f"this run is not logged ({reason})")
        return None


def _rotate_logs(logs) -> None:
    """Keep the newest LOGS_KEPT - 1 logs (this run's makes LOGS_KEPT). Only regular
    files named like a log count; what cannot be removed is skipped, not fatal."""
    import stat

    old = []
    for path in logs.glob("*.log"):
        try:
            if stat.S_ISREG(path.lstat().st_mode):
                old.append(path)
        except OSError:
            continue
    old.sort()
    for path in old[:max(0, len(old) - LOGS_KEPT + 1)]:
        try:
            path.unlink()
        except OSError:
            continue


def _close_log(last: str) -> None:
    from hgautomation import console

    console.get().trace(last)
    console.get().close_log()


def _report(line: str, code: int, debug: bool, log=None, name_log: bool = True) -> int:
    """The one error line on stderr (naming the run's log for a fault: not for a
    usage error or an interruption, which the user caused and knows)."""
    import traceback

    if debug:
        traceback.print_exc()
    if log is not None:
        from hgautomation import console

        console.get().trace("".join(traceback.format_exc()).rstrip())
        _close_log(f"{line} (exit {code})")
        if name_log and code != errors.UsageError.exit_code:
            line = f"{line} [log: {log}]"
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except OSError:
        pass  # nobody reads stderr either: the exit code still tells
    return code


def console_script() -> None:
    """Entry point of the ``hgautomation`` console script."""
    sys.exit(main(prog="hgautomation"))
