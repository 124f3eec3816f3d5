"""The argparse parser: every subcommand's options, each value validated by its ``type=``.

Validators come from :mod:`hgautomation.options`; a bad value is one line and
exit 2 before anything starts. Only the subcommands named on a command line get
their options filled in (building all of them costs as much as the rest of the
start-up).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from typing import Callable

from hgautomation import errors, options, platforms
from hgautomation.catalog import COMMANDS, DESCRIPTION, EXAMPLES, GLOBAL_OPTIONS

Adder = Callable[[argparse.ArgumentParser], None]


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and a UsageError; no abbreviations
    (``--hg`` must never silently mean ``--hg-repo``)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # type: ignore[override]
        message, hint = _explained(message, self.prog)
        raise errors.UsageError(message, hint=hint)


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate to a misspelt `word`, if one is close enough."""
    import difflib

    candidates = list(candidates)
    starting = [c for c in candidates if word and c.startswith(word)]
    if len(starting) == 1:
        return starting[0]
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.55)
    return close[0] if close else None


def _explained(message: str, prog: str) -> tuple[str, str]:
    """argparse's message, shortened, and a hint: "did you mean …?" where a choice
    was misspelt (the full list of choices is in --help)."""
    import re

    hint = f"see '{prog} --help'"
    match = re.fullmatch(r"argument (\S+): invalid choice: '([^']*)' \(choose from (.*)\)",
                         message)
    if match:
        what, word, listed = match.groups()
        choices = re.findall(r"'([^']*)'", listed) or [c.strip() for c in listed.split(",")]
        guess = did_you_mean(word, choices)
        message = (f"unknown command '{word}'" if what == "COMMAND"
                   else f"argument {what}: invalid choice '{word}'")
        if guess:
            hint = f"did you mean '{guess}'? {hint}"
    return message, hint


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
REPOSITORY_URL = _typed(options.repository_url, "repository URL")
VERSION = _typed(options.version, "version")
HOST = _typed(options.parse_host_spec, "host")
NON_EMPTY = _typed(options.non_empty, "name")
INSTANCES = _typed(options.bounded_int(1, options.MAX_INSTANCES), "count")


# Options that take several values: each accepts them as separate words ("x86 x64")
# and comma-separated ("x86,x64"), in any mix.
LIST_OPTIONS = {
    "build-windows-wheel": ("--arch", "--python-version"),
    "build-inno": ("--arch",),
    "build-wix": ("--arch",),
    "bootstrap-linux-dev": ("--pythons", "--distros"),
}


def split_lists(argv: Sequence[str]) -> list[str]:
    """argv with the values of the command's LIST_OPTIONS split at commas
    (``--arch=a,b`` too), up to the next option or ``--``; nothing else is touched."""
    command = next((a for a in argv if a in COMMANDS), None)
    lists = LIST_OPTIONS.get(command or "", ())
    out: list[str] = []
    in_list = False
    for token in argv:
        if token == "--":
            in_list = False
            out.append(token)
            continue
        flag, eq, value = token.partition("=")
        if token.startswith("-"):
            in_list = flag in lists
            if in_list and eq:
                out.append(flag)
                out.extend(v for v in value.split(",") if v)
                continue
            out.append(token)
        elif in_list and "," in token:
            out.extend(v for v in token.split(",") if v)
        else:
            out.append(token)
    return out


def _global_options(parser: argparse.ArgumentParser, *, on_subcommand: bool) -> None:
    group = parser.add_argument_group("global options")
    for flags, spec in GLOBAL_OPTIONS:
        # On subcommands the defaults are suppressed so that a value given before
        # the subcommand is not overwritten by the subparser's default.
        default = argparse.SUPPRESS if on_subcommand else spec.get("default")
        group.add_argument(*flags, **{**spec, "default": default})


def _revision(p: argparse.ArgumentParser, default: str | None = ".") -> None:
    p.add_argument("-r", "--revision", default=default,
                   help=f"Mercurial revision to use (default: {default or 'none'})")


def _version(p: argparse.ArgumentParser) -> None:
    p.add_argument("--version", type=VERSION,
                   help="Mercurial version string for the packages, e.g. 7.2.1 "
                        "(required)")


def _base_image(p: argparse.ArgumentParser) -> None:
    p.add_argument("--base-image-name", default=platforms.DEFAULT_WINDOWS_BASE_IMAGE,
                   help="Windows base AMI name pattern (default: %(default)s)")


def _windows_pythons(p: argparse.ArgumentParser, *, many: bool) -> None:
    p.add_argument("--python-version", choices=platforms.WINDOWS_PYTHONS,
                   nargs="+" if many else None,
                   default=[platforms.DEFAULT_WINDOWS_PYTHON] if many
                   else platforms.DEFAULT_WINDOWS_PYTHON,
                   help="Python version(s) (default: %(default)s)")


def _windows_arches(p: argparse.ArgumentParser, *, many: bool,
                    choices: tuple[str, ...] = platforms.WINDOWS_ARCHES) -> None:
    p.add_argument("--arch", choices=choices,
                   nargs="+" if many else None,
                   default=list(choices) if many else "x64",
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
        group.add_argument("--allow-any-address", action="store_true",
                           help="accept an --ingress-cidr of 0.0.0.0/0 or ::/0 (every "
                                "address on the internet)")
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
    p.add_argument("-y", "--yes", action="store_true",
                   help="do not ask before removing other people's or shared resources "
                        "(--all-owners, --images); needed without a terminal")


def _completion(p: argparse.ArgumentParser) -> None:
    p.add_argument("shell", choices=("bash", "zsh"), help="the shell to complete for")


def _template(p: argparse.ArgumentParser) -> None:
    p.add_argument("-T", "--template", choices=("text", "json"), default="text",
                   help="output format: 'json' prints one JSON document on stdout (keys "
                        "in README), everything else on stderr (default: text)")


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
    p.add_argument("--pythons", choices=platforms.LINUX_PYTHONS, nargs="+",
                   default=list(platforms.LINUX_PYTHONS), metavar="PYTHON",
                   help="Pythons to install, 'a b' or 'a,b' (default: all: "
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
    p.add_argument("--distros", choices=tuple(platforms.LINUX_DISTROS), nargs="+",
                   default=list(platforms.LINUX_DISTROS), metavar="DISTRO",
                   help="distros, 'a b' or 'a,b' (default: all: "
                        f"{','.join(platforms.LINUX_DISTROS)})")
    p.add_argument("--parallel", action="store_true",
                   help="build the distro images at the same time")
    p.add_argument("--no-rust", action="store_true",
                   help="leave out the pinned Rust toolchain (rustup from static.rust-lang.org; "
                        "needed for --rust/--rhg runs and the cargo/rustfmt features)")
    p.add_argument("--refresh-images", action="store_true",
                   help="build the images even if up to date (e.g. on a newer base image)")
    p.add_argument("--clone-url", metavar="URL", type=REPOSITORY_URL,
                   help="repository cloned into /hgdev/src: for EC2 images (default: "
                        "https://www.mercurial-scm.org/repo/hg); with --host only if given "
                        "(otherwise the local repository is pushed)")
    _aws_options(p)


def _windows_instance_type(p: argparse.ArgumentParser, flow: str) -> None:
    p.add_argument("--instance-type", default=platforms.WINDOWS_INSTANCE_TYPES[flow],
                   help="EC2 instance type (default: %(default)s; Windows is billed per hour)")


def _bootstrap_windows_dev(p: argparse.ArgumentParser) -> None:
    _base_image(p)
    # The image is provisioned by this revision's contrib/install-windows-dependencies.ps1.
    _revision(p)
    _windows_instance_type(p, "bootstrap")
    p.add_argument("--refresh-image", action="store_true",
                   help="build the image even if up to date (e.g. on a newer base image)")
    _aws_options(p)


def _build_all_windows_packages(p: argparse.ArgumentParser) -> None:
    _template(p)
    _revision(p)
    _version(p)
    _base_image(p)
    _windows_instance_type(p, "build")
    _aws_options(p)


def _build_installer(p: argparse.ArgumentParser) -> None:
    _template(p)
    _windows_pythons(p, many=False)
    _windows_arches(p, many=True, choices=platforms.INSTALLER_ARCHES)
    _revision(p)
    _version(p)
    _base_image(p)
    _windows_instance_type(p, "build")
    _aws_options(p)


def _build_windows_wheel(p: argparse.ArgumentParser) -> None:
    _template(p)
    _windows_pythons(p, many=True)
    p.add_argument("--arch", choices=platforms.WINDOWS_WHEEL_ARCHES, nargs="+",
                   default=None, help="architecture(s) (default: every one the revision "
                   "declares for the Python; arm64 where it builds with cibuildwheel)")
    _revision(p)
    _base_image(p)
    _windows_instance_type(p, "build")
    _aws_options(p)


def _setup_ec2_account(p: argparse.ArgumentParser) -> None:
    _aws_options(p, creates_instances=False)
    p.add_argument("--rdp", action="store_true",
                   help="also allow RDP (3389/tcp) to Windows instances from --ingress-cidr")


def _list_ec2_resources(p: argparse.ArgumentParser) -> None:
    _template(p)
    _aws_options(p, creates_instances=False, ingress=False)
    p.add_argument("--all-owners", action="store_true",
                   help="every owner's resources, not only yours")


def _terminate_ec2_instances(p: argparse.ArgumentParser) -> None:
    _template(p)
    _aws_options(p, creates_instances=False, ingress=False)
    _ec2_selection(p)


def _purge_ec2_resources(p: argparse.ArgumentParser) -> None:
    _template(p)
    _aws_options(p, creates_instances=False, ingress=False)
    _ec2_selection(p)
    p.add_argument("--images", action="store_true",
                   help="also deregister our (shared) dev images and their snapshots")


def _run_tests_linux(p: argparse.ArgumentParser) -> None:
    _template(p)
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
    p.add_argument("--full-install", action="store_true",
                   help="let run-tests.py pip-install the revision as it does by default "
                        "(release testing); otherwise the host keeps a build of the work "
                        "tree, reused while C/Rust/setup files and the Python are unchanged, "
                        "and runs the tests with --local")
    p.add_argument("--rebuild", action="store_true",
                   help="build the work tree afresh even if a build of the same inputs exists")
    _aws_options(p)
    p.add_argument("test_flags", nargs="*", action="extend", default=[],
                   metavar="TEST_FLAGS",
                   help="arguments for run-tests.py (tests and flags; put flags after --)")


def _run_tests_windows(p: argparse.ArgumentParser) -> None:
    _template(p)
    _windows_instance_type(p, "tests")
    _windows_pythons(p, many=False)
    _windows_arches(p, many=False)
    p.add_argument("--test-flags", default="",
                   help="extra arguments for run-tests.py (one string)")
    _revision(p)
    _base_image(p)
    _aws_options(p)


def _publish_windows_artifacts(p: argparse.ArgumentParser) -> None:
    _template(p)
    p.add_argument("mercurial_version", metavar="VERSION", type=VERSION,
                   help="Mercurial version being released (e.g. 7.2.1)")
    p.add_argument("-r", "--revision", default=None,
                   help="the released revision, whose declaration (install script, "
                        "pyproject.toml) names the wheels (default: the tag VERSION)")
    p.add_argument("--no-pypi", dest="pypi", action="store_false",
                   help="do not upload wheels to PyPI")
    p.add_argument("--no-mercurial-scm-org", dest="mercurial_scm_org", action="store_false",
                   help="do not upload installers to mercurial-scm.org")
    p.add_argument("--ssh-username", help="user name on the release host (default: "
                   "--ssh-host's, else the ssh config's, else the local user)")
    p.add_argument("--ssh-host", default=options.parse_host_spec("mercurial-scm.org"),
                   type=HOST, metavar="[USER@]HOST[:PORT]",
                   help="release host, resolved as ssh resolves it (default: "
                        "mercurial-scm.org)")
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
    p.add_argument("--python-version", choices=platforms.LINUX_PYTHONS,
                   default=platforms.DEFAULT_LINUX_PYTHON,
                   help="Python whose test features are checked (default: %(default)s)")
    p.add_argument("--no-features", action="store_true",
                   help="skip the report of the test suite's features (tests/hghave.py of "
                        "the local checkout) on the host")


def _try(p: argparse.ArgumentParser) -> None:
    _revision(p)
    p.add_argument("--function", default="ci-try-server-upload", type=NON_EMPTY,
                   help="name of the Try server's Lambda function (default: %(default)s)")


def _no_options(p: argparse.ArgumentParser) -> None:
    """A command without options of its own."""


# name -> the function adding its options (catalog.COMMANDS has its help and flow).
ADDERS: dict[str, Adder] = {
    "bootstrap-linux-dev": _bootstrap_linux_dev,
    "bootstrap-windows-dev": _bootstrap_windows_dev,
    "build-all-windows-packages": _build_all_windows_packages,
    "build-inno": _build_installer,
    "build-wix": _build_installer,
    "build-windows-wheel": _build_windows_wheel,
    "terminate-ec2-instances": _terminate_ec2_instances,
    "purge-ec2-resources": _purge_ec2_resources,
    "list-ec2-resources": _list_ec2_resources,
    "setup-ec2-account": _setup_ec2_account,
    "run-tests-linux": _run_tests_linux,
    "run-tests-windows": _run_tests_windows,
    "publish-windows-artifacts": _publish_windows_artifacts,
    "check-host": _check_host,
    "try": _try,
    "completion": _completion,
}

# Subcommands whose unknown arguments are handed to the remote test runner.
PASSTHROUGH = {"run-tests-linux": "test_flags"}


def build_parser(prog: str | None = None,
                 only: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The full parser; with ``only``, just those subcommands get their options.

    Filling in every subcommand's options costs as much as the rest of the
    start-up, so a run fills in only the subcommands named on its command line.
    The top-level -h prints :func:`hgautomation.cli.overview`.
    """
    parser = Parser(prog=prog, description=DESCRIPTION, add_help=False)
    parser.add_argument("-h", "--help", action="store_true", help="show this help and exit")
    _global_options(parser, on_subcommand=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    wanted = set(COMMANDS) if only is None else set(only)
    top = parser.prog
    for name, (help_text, _target) in COMMANDS.items():
        examples = "\n".join(f"  {line.format(prog=top)}" for line in EXAMPLES.get(name, ()))
        p = sub.add_parser(name, help=help_text, description=help_text[0].upper()
                           + help_text[1:] + ".", epilog=f"examples:\n{examples}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        if name in wanted:
            ADDERS.get(name, _no_options)(p)
            _global_options(p, on_subcommand=True)
    return parser


def parse_args(argv: Sequence[str], prog: str | None = None,
               environ: dict[str, str] | None = None) -> argparse.Namespace:
    """The parsed command line, with the settings it does not give filled in from
    ``--config``, ``HGAUTOMATION_*`` and ``<state>/config`` (:mod:`hgautomation.settings`);
    ``args.sources`` says where each of those came from."""
    # A value that happens to equal a command name (e.g. --hg-repo try) only
    # makes us fill in one subparser too many, never one too few.
    argv = split_lists(argv)
    parser = build_parser(prog, only=[a for a in argv if a in COMMANDS])
    args, extra = parser.parse_known_args(argv)
    dest = PASSTHROUGH.get(args.command or "")
    if dest is None:
        if extra:
            raise _unrecognized(parser, args.command, extra)
    else:
        setattr(args, dest, _passthrough(list(argv), args.command, getattr(args, dest), extra))
    args.sources = _apply_settings(parser, args, list(argv), environ)
    args.prog = parser.prog
    return args


def _given(action: argparse.Action, argv: list[str]) -> bool:
    end = argv.index("--") if "--" in argv else len(argv)
    def names(token: str, flag: str) -> bool:
        if flag.startswith("--"):
            return token == flag or token.startswith(flag + "=")
        return token.startswith(flag) and not token.startswith("--")  # -vv, -Tjson

    return any(names(token, flag) for token in argv[:end] for flag in action.option_strings)


def _apply_settings(parser: argparse.ArgumentParser, args: argparse.Namespace,
                    argv: list[str], environ: dict[str, str] | None) -> dict[str, str]:
    """Fill in what the command line does not give; returns {dest: source}."""
    import os

    from hgautomation import settings

    environ = os.environ if environ is None else environ
    if args.command is None:
        return {}
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    actions = {a.dest: a for a in sub.choices[args.command]._actions if a.option_strings}
    given = {d for d, a in actions.items() if _given(a, argv)}
    if "state_path" not in given and environ.get(settings.STATE_PATH_ENV):
        args.state_path = environ[settings.STATE_PATH_ENV]
    file_values = settings.read_file(settings.file_path(args.state_path))
    chosen = settings.candidates(args.command, set(actions), given,
                                 settings.parse_overrides(args.config), file_values, environ)
    sources = {}
    for dest, (raw, source) in chosen.items():
        setattr(args, dest, _convert(actions[dest], raw, source))
        sources[dest] = source
    return sources


def _convert(action: argparse.Action, raw: str, source: str) -> object:
    """`raw` as the option itself would take it (type, choices, flags, lists)."""
    def fail(why: str) -> errors.ConfigurationError:
        return errors.ConfigurationError(f"{source}: {action.option_strings[-1]}: {why}")

    if action.nargs == 0:  # a flag: store_true or count
        if raw.lower() in ("1", "yes", "true", "on"):
            return 1 if isinstance(action, argparse._CountAction) else True
        if raw.lower() in ("0", "no", "false", "off", ""):
            return 0 if isinstance(action, argparse._CountAction) else False
        raise fail(f"{raw!r} is not a yes/no value")
    words = raw.replace(",", " ").split() if action.nargs in ("+", "*") else [raw]
    values = []
    for word in words:
        try:
            value = action.type(word) if action.type else word
        except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
            raise fail(str(exc) or f"invalid value {word!r}") from None
        if action.choices is not None and value not in action.choices:
            raise fail(f"invalid choice {word!r} (choose from "
                       f"{', '.join(map(str, action.choices))})")
        values.append(value)
    return values if action.nargs in ("+", "*") else values[0]


def _unrecognized(parser: argparse.ArgumentParser, command: str | None,
                  extra: list[str]) -> errors.UsageError:
    """Unknown arguments, with the option the first one probably meant."""
    prog = parser.prog
    known: Iterable[str] = parser._option_string_actions
    if command:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        known = sub.choices[command]._option_string_actions
        prog = f"{parser.prog} {command}"
    hint = f"see '{prog} --help'"
    first = extra[0].split("=", 1)[0]
    guess = did_you_mean(first, [o for o in known if o.startswith("--")]) \
        if first.startswith("--") else None
    if guess:
        hint = f"did you mean '{guess}'? {hint}"
    return errors.UsageError(f"unrecognized arguments: {' '.join(extra)}", hint=hint)


OUR_SHORTHANDS = ("-v", "--verbose", "-q", "--quiet", "--debug")


def _passthrough(argv: list[str], command: str, positional: list[str],
                 extra: list[str]) -> list[str]:
    """What goes to the remote runner, in the order typed.

    argparse hands back unknown options and positionals separately (and after an
    unknown option, the rest unparsed); this puts them back in the order typed.
    Before ``--`` an unknown option followed by a bare word is ambiguous (``-j 8``:
    its value, or a test named 8?), so it must be written after ``--`` instead.
    """
    from hgautomation import console

    rest = argv[argv.index(command) + 1:]
    split = rest.index("--") if "--" in rest else len(rest)
    unknown = [t for t in extra if t != "--"]
    wanted = unknown + list(positional)
    ordered = []
    for i, token in enumerate(rest):
        if i == split:
            continue  # the first "--" only separates
        if i < split and token in OUR_SHORTHANDS:
            console.get().warn(f"{token} is hgautomation's own option; to pass it to "
                               f"run-tests.py, write it after --")
        if token not in wanted:
            continue
        wanted.remove(token)
        ordered.append(token)
        bare = (token.startswith("--") and "=" not in token) or len(token) == 2
        nxt = rest[i + 1] if i + 1 < split else None
        if i < split and token in unknown and bare and nxt and not nxt.startswith("-"):
            raise errors.UsageError(
                f"{token} {nxt}: options of run-tests.py go after --",
                hint=f"e.g. {command} [options] -- {token} {nxt} [tests]")
    return ordered
