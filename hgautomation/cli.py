"""Command-line interface: argparse only.

Each subcommand maps to ``module:function`` under ``hgautomation.commands``;
the module is imported only when that subcommand runs, so ``--help`` and
argument errors never pay for boto3, paramiko or twine. Every typed value is
validated here, by the :mod:`hgautomation.options` function given as ``type=``.
The top-level help is rendered from the COMMANDS and GLOBAL_OPTIONS tables,
which also build the parser.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import textwrap
from collections.abc import Iterable, Sequence
from typing import Callable

from hgautomation import errors, options, platforms

Adder = Callable[[argparse.ArgumentParser], None]


class SignalInterrupt(KeyboardInterrupt):
    """Raised in the main thread by SIGTERM so cleanup runs as for Ctrl-C."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and a UsageError; no abbreviations
    (``--hg`` must never silently mean ``--hg-repo``)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # type: ignore[override]
        raise errors.UsageError(message, hint=f"see '{self.prog} --help'")


def _typed(validate: Callable[[str], object], name: str) -> Callable[[str], object]:
    """An argparse ``type=`` from an options validator (UsageError -> argparse's message)."""
    def parse(text: str) -> object:
        try:
            return validate(text)
        except errors.UsageError as exc:
            raise argparse.ArgumentTypeError(exc.message) from None

    parse.__name__ = name  # argparse names the type in some messages
    return parse


CIDR = _typed(options.cidr, "cidr")
OWNER = _typed(options.owner, "owner")
PORT = _typed(options.port, "port")
VERSION = _typed(options.version, "version")
HOST = _typed(options.parse_host_spec, "host")
NON_EMPTY = _typed(options.non_empty, "name")
INSTANCES = _typed(options.bounded_int(1, options.MAX_INSTANCES), "count")


def _comma_list(choices: Sequence[str]) -> Callable[[str], object]:
    return _typed(options.comma_list(choices), "list")


# -- option groups shared by several subcommands ----------------------------

DESCRIPTION = "Build, test and release Mercurial on ephemeral EC2 instances or any SSH host."

# flags -> add_argument keywords; also rendered by the argparse-free top-level help.
GLOBAL_OPTIONS: tuple[tuple[tuple[str, ...], dict], ...] = (
    (("--state-path",), {"metavar": "DIR", "help": "where keys, pinned host keys and "
                                                    "results live (default: ~/.hgautomation)"}),
    (("--aws-region",), {"metavar": "REGION",
                         "help": "AWS region (default: AWS config/env, else us-west-2)"}),
    (("--hg-repo",), {"metavar": "DIR", "help": "Mercurial checkout to work on (default: the "
                                                "repository containing the current directory)"}),
    (("--ssh-config",), {"metavar": "FILE",
                         "help": "OpenSSH client config for every SSH connection (HostName, "
                                 "Port, User, IdentityFile, ProxyCommand/ProxyJump)"}),
    (("-v", "--verbose"), {"action": "count", "default": 0, "help": "more output"}),
    (("-q", "--quiet"), {"action": "store_true", "default": False,
                         "help": "only results and errors"}),
    (("--debug",), {"action": "store_true", "default": False,
                    "help": "show tracebacks for errors"}),
)


def _global_options(parser: argparse.ArgumentParser, *, on_subcommand: bool) -> None:
    group = parser.add_argument_group("global options")
    for flags, spec in GLOBAL_OPTIONS:
        # On subcommands the defaults are suppressed so that a value given before
        # the subcommand is not overwritten by the subparser's default.
        default = argparse.SUPPRESS if on_subcommand else spec.get("default")
        group.add_argument(*flags, **{**spec, "default": default})


def overview(prog: str, columns: int = 79) -> str:
    """The top-level help: usage, every subcommand, the global options."""
    global_options = [("-h, --help", "show this help and exit")] + [
        (", ".join(flags) + (f" {spec['metavar']}" if "metavar" in spec else ""), spec["help"])
        for flags, spec in GLOBAL_OPTIONS]
    commands = [(name, help_text) for name, (help_text, _add, _target) in COMMANDS.items()]
    width = max(len(left) for left, _ in commands + global_options) + 4

    def entries(rows: list[tuple[str, str]]) -> list[str]:
        return [textwrap.fill(text, columns, initial_indent=f"  {left:<{width - 2}}",
                              subsequent_indent=" " * width)
                for left, text in rows]

    lines = [f"usage: {prog} [global options] COMMAND [options]", "", DESCRIPTION, "",
             "commands:", *entries(commands), "",
             "global options (before or after COMMAND):", *entries(global_options), "",
             f"'{prog} COMMAND --help' lists the options of COMMAND."]
    return "\n".join(lines) + "\n"


def _revision(p: argparse.ArgumentParser, default: str | None = ".") -> None:
    p.add_argument("-r", "--revision", default=default,
                   help=f"Mercurial revision to use (default: {default or 'none'})")


def _version(p: argparse.ArgumentParser) -> None:
    p.add_argument("--version", type=VERSION,
                   help="Mercurial version string for the packages (e.g. 7.2.1)")


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


def _aws_options(p: argparse.ArgumentParser, *, creates_instances: bool = True,
                 ingress: bool = True) -> None:
    """AWS options of every subcommand that touches our EC2 resources."""
    group = p.add_argument_group("AWS options")
    group.add_argument("--owner", default=None, type=OWNER,
                       help="whose personal EC2 resources to use (env HGAUTOMATION_OWNER; "
                            "default: derived from the caller's AWS identity)")
    if ingress:
        group.add_argument("--ingress-cidr", default=None, metavar="CIDR", type=CIDR,
                           help="address range allowed to reach our instances; a bare "
                                "address means /32 (default: this machine's public address "
                                "as /32, asked from checkip.amazonaws.com)")
    if creates_instances:
        group.add_argument("--spot", action="store_true",
                           help="use spot instances (on-demand when there is no capacity)")


def _ec2_selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--all-owners", action="store_true",
                   help="every owner's resources, not only yours (purge: also the shared "
                        "IAM role and profile)")
    p.add_argument("--include-untagged", action="store_true",
                   help="also remove hg-... resources without our tags (made by older tools)")
    p.add_argument("--dry-run", action="store_true",
                   help="only show what would be done")


# -- subcommands -------------------------------------------------------------

def _linux_hosts(p: argparse.ArgumentParser, *, many: bool) -> None:
    p.add_argument("--host", action="append", metavar="[USER@]ADDRESS[:PORT]", type=HOST,
                   help="use this SSH host instead of EC2" + (" (repeatable)" if many else "")
                        + "; the user defaults to the ssh config's, else 'hg'")
    p.add_argument("--accept-new-host-key", action="store_true",
                   help="pin the host key of a --host seen for the first time "
                        "(in the state dir's known_hosts)")


def _bootstrap_linux_dev(p: argparse.ArgumentParser) -> None:
    _linux_hosts(p, many=True)
    p.add_argument("--pythons", type=_comma_list(platforms.LINUX_PYTHONS),
                   default=list(platforms.LINUX_PYTHONS),
                   help="comma-separated Pythons to install (default: all: "
                        f"{','.join(platforms.LINUX_PYTHONS)})")
    p.add_argument("--user", default="hg",
                   help="with --host: the contract user to create (default: %(default)s)")
    p.add_argument("--authorized-key", metavar="FILE",
                   help="with --host: public key to authorize for that user "
                        "(default: the tool's own key in the state dir)")
    p.add_argument("--hg", default="hg", metavar="PATH",
                   help="local hg used to seed /hgdev/src (default: %(default)s)")
    p.add_argument("--pip-index-url", metavar="URL",
                   help="package index for Mercurial in venv-bootstrap, on --host "
                        "machines or EC2 image builders (default: PyPI)")
    p.add_argument("--distros", type=_comma_list(tuple(platforms.LINUX_DISTROS)),
                   default=list(platforms.LINUX_DISTROS),
                   help="comma-separated distros (default: all: "
                        f"{','.join(platforms.LINUX_DISTROS)})")
    p.add_argument("--parallel", action="store_true",
                   help="build the distro images at the same time")
    _aws_options(p)


def _windows_instance_type(p: argparse.ArgumentParser, flow: str) -> None:
    p.add_argument("--instance-type", default=platforms.WINDOWS_INSTANCE_TYPES[flow],
                   help="EC2 instance type (default: %(default)s; Windows is billed per hour)")


def _bootstrap_windows_dev(p: argparse.ArgumentParser) -> None:
    _base_image(p)
    # The image is provisioned by this revision's contrib/install-windows-dependencies.ps1.
    _revision(p)
    _windows_instance_type(p, "bootstrap")
    _aws_options(p)


def _build_all_windows_packages(p: argparse.ArgumentParser) -> None:
    _revision(p)
    _version(p)
    _base_image(p)
    _windows_instance_type(p, "build")
    _aws_options(p)


def _build_installer(p: argparse.ArgumentParser) -> None:
    _windows_pythons(p, many=False)
    _windows_arches(p, many=True)
    _revision(p)
    _version(p)
    _base_image(p)
    _windows_instance_type(p, "build")
    _aws_options(p)


def _build_windows_wheel(p: argparse.ArgumentParser) -> None:
    _windows_pythons(p, many=True)
    _windows_arches(p, many=True)
    _revision(p)
    _base_image(p)
    _windows_instance_type(p, "build")
    _aws_options(p)


def _setup_ec2_account(p: argparse.ArgumentParser) -> None:
    _aws_options(p, creates_instances=False)
    p.add_argument("--rdp", action="store_true",
                   help="also allow RDP (3389/tcp) to Windows instances from --ingress-cidr")


def _list_ec2_resources(p: argparse.ArgumentParser) -> None:
    _aws_options(p, creates_instances=False, ingress=False)
    p.add_argument("--all-owners", action="store_true",
                   help="every owner's resources, not only yours")


def _terminate_ec2_instances(p: argparse.ArgumentParser) -> None:
    _aws_options(p, creates_instances=False, ingress=False)
    _ec2_selection(p)


def _purge_ec2_resources(p: argparse.ArgumentParser) -> None:
    _aws_options(p, creates_instances=False, ingress=False)
    _ec2_selection(p)
    p.add_argument("--images", action="store_true",
                   help="also deregister our (shared) dev images and their snapshots")


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
    _linux_hosts(p, many=True)
    p.add_argument("--instances", type=INSTANCES, default=None, metavar="N",
                   help="shard the tests over N hosts in parallel (with --host: one "
                        f"--host per shard; at most {options.MAX_INSTANCES})")
    p.add_argument("--hg", default="hg", metavar="PATH",
                   help="local hg used to resolve and push the revision (default: %(default)s)")
    p.add_argument("--include-working-copy", action="store_true",
                   help="carry uncommitted changes of tracked files to the host")
    p.add_argument("--results-dir", metavar="DIR",
                   help="where the JSON report lands (default: STATE/results/<run>)")
    _aws_options(p)
    p.add_argument("test_flags", nargs="*", metavar="TEST_FLAGS",
                   help="arguments for run-tests.py (tests and flags; put flags after --)")


def _run_tests_windows(p: argparse.ArgumentParser) -> None:
    _windows_instance_type(p, "tests")
    _windows_pythons(p, many=False)
    _windows_arches(p, many=False)
    p.add_argument("--test-flags", default="",
                   help="extra arguments for run-tests.py (one string)")
    _revision(p)
    _base_image(p)
    _aws_options(p)


def _publish_windows_artifacts(p: argparse.ArgumentParser) -> None:
    p.add_argument("mercurial_version", metavar="VERSION", type=VERSION,
                   help="Mercurial version being released (e.g. 7.2.1)")
    p.add_argument("--no-pypi", dest="pypi", action="store_false",
                   help="do not upload wheels to PyPI")
    p.add_argument("--no-mercurial-scm-org", dest="mercurial_scm_org", action="store_false",
                   help="do not upload installers to mercurial-scm.org")
    p.add_argument("--ssh-username", help="user name on mercurial-scm.org "
                   "(default: the ssh config's, else the local user)")
    p.add_argument("--ssh-host", default="mercurial-scm.org",
                   help="release host (default: %(default)s; --ssh-config applies)")
    p.add_argument("--ssh-port", type=PORT, default=None,
                   help="SSH port of the release host (default: the ssh config's, else 22)")
    p.add_argument("--release-dir", default="/var/www/release/windows",
                   help="directory for installers and latest.dat on the release host "
                        "(default: %(default)s)")
    p.add_argument("--repository", default=None,
                   help="twine repository name from .pypirc (default: TWINE_REPOSITORY, "
                        "else pypi)")
    p.add_argument("--repository-url", default=None,
                   help="upload URL of the package index (default: TWINE_REPOSITORY_URL, "
                        "else the repository's)")
    p.add_argument("--dry-run", action="store_true",
                   help="check the artifacts and print the plan; send nothing")


def _check_host(p: argparse.ArgumentParser) -> None:
    _linux_hosts(p, many=True)


def _try(p: argparse.ArgumentParser) -> None:
    _revision(p)
    p.add_argument("--function", default="ci-try-server-upload", type=NON_EMPTY,
                   help="name of the Try server's Lambda function (default: %(default)s)")


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
        "terminate our EC2 instances", _terminate_ec2_instances, "ec2:terminate"),
    "purge-ec2-resources": (
        "remove our EC2 instances, images, security groups, keys and IAM entries",
        _purge_ec2_resources, "ec2:purge"),
    "list-ec2-resources": (
        "list our EC2 resources with their age and estimated cost",
        _list_ec2_resources, "ec2:list_resources"),
    "setup-ec2-account": (
        "create or repair your key pair, security groups and the IAM instance profile",
        _setup_ec2_account, "ec2:setup_account"),
    "run-tests-linux": (
        "run Mercurial's tests on a Linux machine", _run_tests_linux,
        "run_tests_linux:main"),
    "run-tests-windows": (
        "run Mercurial's tests on a Windows machine", _run_tests_windows,
        "run_tests_windows:main"),
    "publish-windows-artifacts": (
        "publish Windows wheels and installers to PyPI and mercurial-scm.org",
        _publish_windows_artifacts, "publish:main"),
    "check-host": (
        "report which parts of the remote-machine contract a Linux host meets",
        _check_host, "check_host:main"),
    "try": (
        "send draft changesets to the Try server", _try, "try_:main"),
}

# Subcommands whose unknown arguments are handed to the remote test runner.
PASSTHROUGH = {"run-tests-linux": "test_flags"}


def build_parser(prog: str | None = None,
                 only: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The full parser; with ``only``, just those subcommands get their options.

    Filling in every subcommand's options costs as much as the rest of the
    start-up, so a run fills in only the subcommands named on its command line.
    The top-level -h prints :func:`overview` (see :func:`main`).
    """
    parser = Parser(prog=prog, description=DESCRIPTION, add_help=False)
    parser.add_argument("-h", "--help", action="store_true", help="show this help and exit")
    _global_options(parser, on_subcommand=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    wanted = set(COMMANDS) if only is None else set(only)
    for name, (help_text, add, _target) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text[0].upper()
                           + help_text[1:] + ".")
        if name in wanted:
            add(p)
            _global_options(p, on_subcommand=True)
    return parser


def parse_args(argv: Sequence[str], prog: str | None = None) -> argparse.Namespace:
    # A value that happens to equal a command name (e.g. --hg-repo try) only
    # makes us fill in one subparser too many, never one too few.
    parser = build_parser(prog, only=[a for a in argv if a in COMMANDS])
    args, extra = parser.parse_known_args(argv)
    if extra:
        dest = PASSTHROUGH.get(args.command or "")
        if dest is None:
            raise errors.UsageError(f"unrecognized arguments: {' '.join(extra)}",
                                    hint=f"see '{parser.prog} --help'")
        getattr(args, dest).extend(extra)
    return args


def _context(args: argparse.Namespace):
    from pathlib import Path

    from hgautomation.context import Context
    from hgautomation.state import StateDir

    verbosity = -1 if args.quiet else min(args.verbose, 1)
    return Context(
        state=StateDir.at(args.state_path),
        verbosity=verbosity,
        debug=args.debug,
        explicit_region=args.aws_region,
        explicit_hg_repo=Path(args.hg_repo) if args.hg_repo else None,
        ssh_config=Path(args.ssh_config).expanduser().absolute() if args.ssh_config else None,
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
    prog = prog or os.environ.get("HGAUTOMATION_PROG") or os.path.basename(sys.argv[0])
    debug = "--debug" in argv
    try:
        if argv in ([], ["-h"], ["--help"]):  # the common case, without argparse
            sys.stdout.write(overview(prog))
            return 0
        args = parse_args(argv, prog)
        if args.command is None or args.help:
            sys.stdout.write(overview(prog))
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
    except Exception as exc:  # noqa: BLE001 - last resort for bugs: one line unless --debug
        name = type(exc).__name__
        return _report(f"internal error: {name}: {exc} (run with --debug for a traceback)",
                       errors.INTERNAL_ERROR_EXIT, debug)


def _report(line: str, code: int, debug: bool) -> int:
    if debug:
        import traceback

        traceback.print_exc()
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
    return code


def console_script() -> None:
    """Entry point of the ``hgautomation`` console script."""
    sys.exit(main(prog="hgautomation"))
