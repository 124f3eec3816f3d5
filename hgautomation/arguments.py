"""The argparse parser, built from the declarations (:mod:`hgautomation.declare`).

Each option's validator becomes its ``type=``, so a bad value is one line and exit 2
before anything starts. Only the subcommands named on a command line get their
options filled in (building all of them costs as much as the rest of the start-up).
:func:`parse_args` returns a :class:`Parsed`: the command, the typed global options,
the command's frozen record and where each defaulted setting came from.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Callable

from hgautomation import catalog, errors
from hgautomation.catalog import COMMANDS, DESCRIPTION, GLOBAL_OPTIONS
from hgautomation.declare import Command, Option


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
    """The closest candidate to a misspelt ``word``, if one is close enough."""
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


def _typed(validate: Callable[[str], object]) -> Callable[[str], object]:
    """An argparse ``type=`` from an options validator (UsageError -> argparse's message)."""
    def parse(text: str) -> object:
        try:
            return validate(text)
        except errors.UsageError as exc:
            raise argparse.ArgumentTypeError(exc.message) from None

    parse.__name__ = validate.__name__  # argparse names the type in some messages
    return parse


def _add(container, option: Option, *, suppress_default: bool = False) -> None:
    """``option`` as an argparse argument of ``container`` (a parser or argument group)."""
    spec: dict = {"help": option.help}
    if option.positional:
        names: tuple[str, ...] = (option.dest,)
    else:
        names = option.flags
        spec["dest"] = option.dest
    if option.metavar:
        spec["metavar"] = option.metavar
    kind = option.kind
    if kind in ("flag", "off", "count"):
        spec["action"] = {"flag": "store_true", "off": "store_false", "count": "count"}[kind]
    else:
        if option.validator is not None:
            spec["type"] = _typed(option.validator)
        if option.choices is not None:
            spec["choices"] = option.choices
        if kind == "list":
            spec["nargs"] = "+"
        elif kind == "append":
            spec["action"] = "append"
        elif kind == "passthrough":
            spec.update(nargs="*", action="extend")
    spec["default"] = (argparse.SUPPRESS if suppress_default
                       else list(option.default) if kind == "passthrough" else option.default)
    container.add_argument(*names, **spec)


def _add_options(parser: argparse.ArgumentParser, options: Iterable[Option]) -> None:
    groups: dict[str, object] = {}  # title -> the argument group add_argument_group made
    for option in options:
        title = option.part.title if option.part is not None else None
        container = parser if title is None else groups.get(title)
        if container is None:
            container = groups[title] = parser.add_argument_group(title)
        _add(container, option)


def _global_options(parser: argparse.ArgumentParser, *, on_subcommand: bool) -> None:
    group = parser.add_argument_group("global options")
    for option in GLOBAL_OPTIONS:
        # On subcommands the defaults are suppressed so that a value given before
        # the subcommand is not overwritten by the subparser's default.
        _add(group, option, suppress_default=on_subcommand)


def split_lists(argv: Sequence[str], command: Command | None) -> list[str]:
    """argv with the values of the command's list options split at commas
    (``--arch=a,b`` too), up to the next option or ``--``; nothing else is touched."""
    lists = {f for o in (command.options if command else ()) if o.kind == "list"
             for f in o.flags}
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
        if name not in wanted:
            sub.add_parser(name, help=help_text)
            continue
        command = catalog.command(name)
        examples = "\n".join(f"  {line.format(prog=top)}" for line in command.examples)
        p = sub.add_parser(name, help=help_text, description=help_text[0].upper()
                           + help_text[1:] + ".", epilog=f"examples:\n{examples}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        _add_options(p, command.options)
        _global_options(p, on_subcommand=True)
    return parser


@dataclass(frozen=True)
class GlobalOptions:
    """The options every command takes (:data:`hgautomation.catalog.GLOBAL_OPTIONS`)."""

    state_path: str | None = None
    aws_region: str | None = None
    aws_profile: str | None = None
    hg_repo: str | None = None
    ssh_config: str | None = None
    identity: str | None = None
    config: tuple[str, ...] | None = None
    verbose: int = 0
    quiet: bool = False
    debug: bool = False


@dataclass(frozen=True)
class Parsed:
    """A parsed command line. ``command`` is None for the top-level help."""

    prog: str
    globals: GlobalOptions
    command: Command | None = None
    options: object = None  # the command's record (its Command.record)
    sources: dict[str, str] | None = None  # dest -> where a defaulted setting came from
    values: dict[str, object] | None = None  # dest -> value, for reporting the sources
    help: bool = False  # -h before COMMAND: the top-level help

    @property
    def json(self) -> bool:
        """``-T json``: one JSON document on stdout."""
        return (self.values or {}).get("template") == "json"


def parse_args(argv: Sequence[str], prog: str | None = None,
               environ: dict[str, str] | None = None) -> Parsed:
    """The parsed command line, with the settings it does not give filled in from
    ``--config``, ``HGAUTOMATION_*`` and ``<state>/config`` (:mod:`hgautomation.settings`);
    ``sources`` says where each of those came from."""
    # A value that happens to equal a command name (e.g. --hg-repo try) only
    # makes us fill in one subparser too many, never one too few.
    named = [a for a in argv if a in COMMANDS]
    first = catalog.command(named[0]) if named else None
    _check_before_command(argv, first, prog)
    argv = split_lists(argv, first)
    parser = build_parser(prog, only=named)
    namespace, extra = parser.parse_known_args(argv)
    values = vars(namespace)
    name = values.pop("command", None)
    shown_help = values.pop("help", False)
    if name is None:
        if extra:
            raise _unrecognized(parser.prog, None, extra)
        return Parsed(prog=parser.prog, globals=_globals(values), help=shown_help)
    command = catalog.command(name)
    passthrough = next((o for o in command.options if o.kind == "passthrough"), None)
    if passthrough is None:
        if extra:
            raise _unrecognized(parser.prog, command, extra)
    else:
        values[passthrough.dest] = _passthrough(list(argv), name, values[passthrough.dest],
                                                extra)
    sources = _apply_settings(command, values, list(argv), environ)
    # With -h the overview is shown: the record is not needed (nor its checks).
    record = None if shown_help else command.build({**values, "prog": parser.prog})
    return Parsed(prog=parser.prog, globals=_globals(values), command=command,
                  options=record, sources=sources, values=values, help=shown_help)


def _check_before_command(argv: Sequence[str], command: Command | None,
                          prog: str | None) -> None:
    """A command's own option typed before the command name (``-T json list-…``) would
    make argparse take its value for the command: say where it belongs instead."""
    takes_value = {f for o in GLOBAL_OPTIONS if o.takes_value for f in o.flags}
    known = {f for o in GLOBAL_OPTIONS for f in o.flags} | {"-h", "--help", "--version"}
    prog = prog or "hgautomation"
    skip = False
    for i, token in enumerate(argv):
        if skip:
            skip = False
            continue
        if token == "--" or (command is not None and token == command.name) \
                or (command is None and not token.startswith("-")):
            return
        flag = token.partition("=")[0]
        if flag in known:
            skip = flag in takes_value and "=" not in token
            continue
        if not token.startswith("-") or token == "-":
            return
        found = _commands_taking(flag, command)
        if not found:
            return  # an unknown option: argparse says so
        option, owners = found
        typed = " ".join(argv[i:i + 2]) if option.takes_value and token == option_flag(
            option, token) and i + 1 < len(argv) else token
        if len(owners) == 1:
            raise errors.UsageError(f"{option_flag(option, token)} is an option of "
                                    f"{owners[0]}: put it after the command name",
                                    hint=f"e.g. {prog} {owners[0]} {typed}")
        raise errors.UsageError(f"{option_flag(option, token)} is an option of COMMAND, "
                                "not a global one: put it after the command name",
                                hint=f"e.g. {prog} {owners[0]} {typed}; commands that take "
                                     f"it: {', '.join(owners)}")


def option_flag(option: Option, token: str) -> str:
    """The flag of ``option`` that ``token`` spells (``-Tjson`` spells ``-T``)."""
    return next((f for f in option.flags if token == f or token.startswith(f + "=")
                 or (len(f) == 2 and f[1] != "-" and token.startswith(f))), token)


def _commands_taking(token: str, command: Command | None
                     ) -> tuple[Option, list[str]] | None:
    """The option ``token`` names (``-Tjson`` is ``-T``) and the commands that take it:
    just the named command when one is named, else every command (imports them all)."""
    def option_of(c: Command) -> Option | None:
        for o in c.options:
            if o.positional:
                continue
            for f in o.flags:
                if token == f or (len(f) == 2 and f[1] != "-" and o.takes_value
                                  and token.startswith(f)):
                    return o
        return None

    candidates = [command] if command is not None else [catalog.command(n) for n in COMMANDS]
    found = [(c.name, o) for c in candidates if (o := option_of(c)) is not None]
    if not found:
        return None
    return found[0][1], [name for name, _ in found]


def _globals(values: dict[str, object]) -> GlobalOptions:
    config = values.get("config")
    return GlobalOptions(**{**{o.dest: values.get(o.dest, o.default) for o in GLOBAL_OPTIONS},
                            "config": tuple(config) if config is not None else None})


def _given(option: Option, argv: list[str]) -> bool:
    end = argv.index("--") if "--" in argv else len(argv)
    def names(token: str, flag: str) -> bool:
        if flag.startswith("--"):
            return token == flag or token.startswith(flag + "=")
        return token.startswith(flag) and not token.startswith("--")  # -vv, -Tjson

    return any(names(token, flag) for token in argv[:end] for flag in option.flags)


def _apply_settings(command: Command, values: dict[str, object], argv: list[str],
                    environ: dict[str, str] | None) -> dict[str, str]:
    """Fill in what the command line does not give; returns {dest: source}."""
    import os

    from hgautomation import settings

    environ = os.environ if environ is None else environ
    declared = [o for o in (*command.options, *GLOBAL_OPTIONS) if not o.positional]
    given = {o.dest for o in declared if _given(o, argv)}
    if "state_path" not in given and environ.get(settings.STATE_PATH_ENV):
        values["state_path"] = environ[settings.STATE_PATH_ENV]
    keys = settings.Keys((o.setting for o in declared if o.setting), _every_key)
    file_values = settings.read_file(settings.file_path(values["state_path"]), keys)
    chosen = settings.candidates(declared, given, settings.parse_overrides(values["config"], keys),
                                 file_values, environ)
    options = {o.dest: o for o in declared}
    sources = {}
    for dest, (raw, source) in chosen.items():
        values[dest] = _convert(options[dest], raw, source)
        sources[dest] = source
    return sources


def _every_key() -> list[str]:
    """Every setting key of every command (imports every command's declaration)."""
    return [o.setting for name in COMMANDS for o in catalog.command(name).options
            if o.setting]


def _convert(option: Option, raw: str, source: str) -> object:
    """``raw`` as the option itself would take it (validator, choices, flags, lists)."""
    def fail(why: str) -> errors.ConfigurationError:
        return errors.ConfigurationError(f"{source}: {option.flags[-1]}: {why}")

    if not option.takes_value:  # a flag: store_true or count
        if raw.lower() in ("1", "yes", "true", "on"):
            return 1 if option.kind == "count" else True
        if raw.lower() in ("0", "no", "false", "off", ""):
            return 0 if option.kind == "count" else False
        raise fail(f"{raw!r} is not a yes/no value")
    many = option.kind in ("list", "passthrough")
    words = raw.replace(",", " ").split() if many else [raw]
    values = []
    for word in words:
        try:
            value = option.validator(word) if option.validator else word
        except errors.UsageError as exc:
            raise fail(exc.message) from None
        except (ValueError, TypeError) as exc:
            raise fail(str(exc) or f"invalid value {word!r}") from None
        if option.choices is not None and value not in option.choices:
            raise fail(f"invalid choice {word!r} (choose from "
                       f"{', '.join(map(str, option.choices))})")
        values.append(value)
    return values if many else values[0]


def _unrecognized(prog: str, command: Command | None, extra: list[str]) -> errors.UsageError:
    """Unknown arguments, with the option the first one probably meant."""
    options = list(GLOBAL_OPTIONS)
    if command is not None:
        options += command.options
        prog = f"{prog} {command.name}"
    known = ["--help"] + [f for o in options for f in o.flags if f.startswith("--")]
    hint = f"see '{prog} --help'"
    first = extra[0].split("=", 1)[0]
    guess = did_you_mean(first, known) if first.startswith("--") else None
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
