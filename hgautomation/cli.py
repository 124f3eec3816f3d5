"""Command-line interface: argparse only.

Each subcommand maps to ``module:function`` under ``hgautomation.commands``;
the module is imported only when that subcommand runs, so ``--help`` and
argument errors never pay for boto3, paramiko or twine.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Callable, Sequence

from hgautomation import errors, platforms

Adder = Callable[[argparse.ArgumentParser], None]


class SignalInterrupt(KeyboardInterrupt):
    """Raised in the main thread by SIGTERM so cleanup runs as for Ctrl-C."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and a UsageError."""

    def error(self, message: str):  # type: ignore[override]
        raise errors.UsageError(message, hint=f"see '{self.prog} --help'")


def _comma_list(choices: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(value: str) -> list[str]:
        items = [v.strip() for v in value.split(",") if v.strip()]
        bad = [v for v in items if v not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(
                f"invalid choice {','.join(bad) or value!r} (choose from {', '.join(choices)})")
        return items

    return parse


# -- option groups shared by several subcommands ----------------------------

def _global_options(parser: argparse.ArgumentParser, *, on_subcommand: bool) -> None:
    # On subcommands the defaults are suppressed so that a value given before
    # the subcommand is not overwritten by the subparser's default.
    d = (lambda value: argparse.SUPPRESS) if on_subcommand else (lambda value: value)
    group = parser.add_argument_group("global options")
    group.add_argument("--state-path", default=d(None), metavar="DIR",
                       help="where keys, pinned host keys and results live "
                            "(default: ~/.hgautomation)")
    group.add_argument("--aws-region", default=d(None), metavar="REGION",
                       help="AWS region (default: AWS config/env, else us-west-2)")
    group.add_argument("--hg-repo", default=d(None), metavar="DIR",
                       help="Mercurial checkout to work on (default: the repository "
                            "containing the current directory)")
    group.add_argument("-v", "--verbose", action="count", default=d(0),
                       help="more output")
    group.add_argument("-q", "--quiet", action="store_true", default=d(False),
                       help="only results and errors")
    group.add_argument("--debug", action="store_true", default=d(False),
                       help="show tracebacks for errors")


def _revision(p: argparse.ArgumentParser, default: str | None = ".") -> None:
    p.add_argument("-r", "--revision", default=default,
                   help=f"Mercurial revision to use (default: {default or 'none'})")


def _version(p: argparse.ArgumentParser) -> None:
    p.add_argument("--version", help="Mercurial version string for the packages")


def _base_image(p: argparse.ArgumentParser) -> None:
    p.add_argument("--base-image-name", default=platforms.DEFAULT_WINDOWS_BASE_IMAGE,
                   help="Windows base AMI name pattern (default: %(default)s)")


def _windows_pythons(p: argparse.ArgumentParser, *, many: bool) -> None:
    p.add_argument("--python-version", choices=platforms.WINDOWS_PYTHONS,
                   nargs="+" if many else None,
                   default=[platforms.DEFAULT_WINDOWS_PYTHON] if many
                   else platforms.DEFAULT_WINDOWS_PYTHON,
                   help="Python version(s) (default: %(default)s)")


def _windows_arches(p: argparse.ArgumentParser, *, many: bool) -> None:
    p.add_argument("--arch", choices=platforms.WINDOWS_ARCHES,
                   nargs="+" if many else None,
                   default=list(platforms.WINDOWS_ARCHES) if many else "x64",
                   help="architecture(s) (default: %(default)s)")


# -- subcommands -------------------------------------------------------------

def _bootstrap_linux_dev(p: argparse.ArgumentParser) -> None:
    p.add_argument("--distros", type=_comma_list(tuple(platforms.LINUX_DISTROS)),
                   default=list(platforms.LINUX_DISTROS),
                   help="comma-separated distros (default: all: "
                        f"{','.join(platforms.LINUX_DISTROS)})")
    p.add_argument("--parallel", action="store_true",
                   help="build the distro images at the same time")


def _bootstrap_windows_dev(p: argparse.ArgumentParser) -> None:
    _base_image(p)


def _build_all_windows_packages(p: argparse.ArgumentParser) -> None:
    _revision(p)
    _version(p)
    _base_image(p)


def _build_installer(p: argparse.ArgumentParser) -> None:
    _windows_pythons(p, many=False)
    _windows_arches(p, many=True)
    _revision(p)
    _version(p)
    _base_image(p)


def _build_windows_wheel(p: argparse.ArgumentParser) -> None:
    _windows_pythons(p, many=True)
    _windows_arches(p, many=True)
    _revision(p)
    _base_image(p)


def _no_options(p: argparse.ArgumentParser) -> None:
    pass


def _run_tests_linux(p: argparse.ArgumentParser) -> None:
    p.add_argument("--distro", choices=tuple(platforms.LINUX_DISTROS),
                   default=platforms.DEFAULT_LINUX_DISTRO,
                   help="Linux distribution (default: %(default)s)")
    p.add_argument("--filesystem", choices=platforms.FILESYSTEMS, default="default",
                   help="filesystem for /hgwork (default: %(default)s)")
    p.add_argument("--instance-type", default="c5.9xlarge",
                   help="EC2 instance type (default: %(default)s)")
    p.add_argument("--python-version", choices=platforms.LINUX_PYTHONS,
                   default=platforms.DEFAULT_LINUX_PYTHON,
                   help="Python to run the tests with (default: %(default)s)")
    _revision(p)
    p.add_argument("test_flags", nargs="*", metavar="TEST_FLAGS",
                   help="arguments for run-tests.py (tests and flags; put flags after --)")


def _run_tests_windows(p: argparse.ArgumentParser) -> None:
    p.add_argument("--instance-type", default="m6i.large",
                   help="EC2 instance type (default: %(default)s)")
    _windows_pythons(p, many=False)
    _windows_arches(p, many=False)
    p.add_argument("--test-flags", default="",
                   help="extra arguments for run-tests.py (one string)")
    _revision(p)
    _base_image(p)


def _publish_windows_artifacts(p: argparse.ArgumentParser) -> None:
    p.add_argument("mercurial_version", metavar="VERSION",
                   help="Mercurial version being released (e.g. 7.2.1)")
    p.add_argument("--no-pypi", dest="pypi", action="store_false",
                   help="do not upload wheels to PyPI")
    p.add_argument("--no-mercurial-scm-org", dest="mercurial_scm_org", action="store_false",
                   help="do not upload installers to mercurial-scm.org")
    p.add_argument("--ssh-username", help="user name on mercurial-scm.org")


def _try(p: argparse.ArgumentParser) -> None:
    _revision(p)


# name -> (help, add-arguments, "module:function")
COMMANDS: dict[str, tuple[str, Adder, str]] = {
    "bootstrap-linux-dev": (
        "build (or reuse) the Linux development images", _bootstrap_linux_dev,
        "bootstrap_linux:main"),
    "bootstrap-windows-dev": (
        "build (or reuse) the Windows development image", _bootstrap_windows_dev,
        "bootstrap_windows:main"),
    "build-all-windows-packages": (
        "build every Windows wheel and installer of a revision",
        _build_all_windows_packages, "build_windows:build_all"),
    "build-inno": (
        "build Inno Setup installers", _build_installer, "build_windows:build_inno"),
    "build-wix": (
        "build WiX (MSI) installers", _build_installer, "build_windows:build_wix"),
    "build-windows-wheel": (
        "build Windows wheels", _build_windows_wheel, "build_windows:build_wheel"),
    "terminate-ec2-instances": (
        "terminate our EC2 instances", _no_options, "ec2:terminate"),
    "purge-ec2-resources": (
        "remove our EC2 instances, images, security groups, keys and IAM entries",
        _no_options, "ec2:purge"),
    "run-tests-linux": (
        "run Mercurial's tests on a Linux machine", _run_tests_linux,
        "run_tests_linux:main"),
    "run-tests-windows": (
        "run Mercurial's tests on a Windows machine", _run_tests_windows,
        "run_tests_windows:main"),
    "publish-windows-artifacts": (
        "publish Windows wheels and installers to PyPI and mercurial-scm.org",
        _publish_windows_artifacts, "publish:main"),
    "try": (
        "send draft changesets to the Try server", _try, "try_:main"),
}

# Subcommands whose unknown arguments are handed to the remote test runner.
PASSTHROUGH = {"run-tests-linux": "test_flags"}


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = _Parser(
        prog=prog,
        description="Build, test and release Mercurial on ephemeral EC2 instances "
                    "or any SSH host.",
    )
    _global_options(parser, on_subcommand=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (help_text, add, _target) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text[0].upper()
                           + help_text[1:] + ".")
        add(p)
        _global_options(p, on_subcommand=True)
    return parser


def parse_args(argv: Sequence[str], prog: str | None = None) -> argparse.Namespace:
    parser = build_parser(prog)
    args, extra = parser.parse_known_args(argv)
    if extra:
        dest = PASSTHROUGH.get(args.command or "")
        if dest is None:
            raise errors.UsageError(f"unrecognized arguments: {' '.join(extra)}",
                                    hint=f"see '{parser.prog} --help'")
        getattr(args, dest).extend(extra)
    args._parser = parser
    return args


def _context(args: argparse.Namespace):
    from hgautomation.context import Context
    from hgautomation.state import StateDir

    verbosity = -1 if args.quiet else min(args.verbose, 1)
    return Context(
        state=StateDir.at(args.state_path),
        verbosity=verbosity,
        debug=args.debug,
        explicit_region=args.aws_region,
        explicit_hg_repo=Path(args.hg_repo) if args.hg_repo else None,
    )


def _load(target: str) -> Callable:
    module_name, func_name = target.split(":")
    module = importlib.import_module(f"hgautomation.commands.{module_name}")
    return getattr(module, func_name)


def _on_sigterm(signum, frame):
    raise SignalInterrupt(signum)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = prog or os.environ.get("HGAUTOMATION_PROG") or None
    debug = "--debug" in argv
    try:
        args = parse_args(argv, prog)
        if args.command is None:
            args._parser.print_help()
            return 0
        from hgautomation import console

        ctx = _context(args)
        console.configure(ctx.verbosity)
        signal.signal(signal.SIGTERM, _on_sigterm)
        handler = _load(COMMANDS[args.command][2])
        return int(handler(ctx, args) or 0)
    except errors.HgAutomationError as exc:
        return _report(exc.one_line(), exc.exit_code, debug)
    except SignalInterrupt as exc:
        return _report("interrupted (SIGTERM); cleanup done", 128 + exc.signum, debug)
    except KeyboardInterrupt:
        return _report("interrupted; cleanup done", errors.Interrupted.exit_code, debug)
    except BrokenPipeError:
        # stdout closed early (e.g. piped into head): not an error worth a traceback.
        sys.stderr.close()
        return 1
    except Exception as exc:  # a bug: still one line unless --debug
        name = type(exc).__name__
        return _report(f"internal error: {name}: {exc} (run with --debug for a traceback)",
                       errors.INTERNAL_ERROR_EXIT, debug)


def _report(line: str, code: int, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
    return code


def console_script() -> None:
    """Entry point of the ``hgautomation`` console script."""
    sys.exit(main(prog="hgautomation"))
