"""``docs/reference.rst``, rendered from the command declarations (never on the start-up path).

Regenerate after changing a command, an option or its help::

    python -m hgautomation.reference > docs/reference.rst

``tests/unit/test_declarations.py`` fails while the committed file differs from this rendering.
"""

from __future__ import annotations

import sys
import textwrap

from hgautomation import catalog
from hgautomation.declare import Command, Option

REGENERATE = "python -m hgautomation.reference > docs/reference.rst"
PROG = "automation.py"
WIDTH = 88

_JSON_INTRO = """\
``-T json`` (Mercurial's spelling) on the commands below prints one JSON document on
stdout when the command has a result (also when tests failed: the document comes
before the error); tables, progress and messages go to stderr. Errors are the usual
one line on stderr and exit code. The keys are stable (tests check each document
against this list); ``a.b[]`` is each element of list ``b`` under ``a``, ``a.b`` an
object (or null when that part did not run)::
"""

_JSON_UNITS = """\
Sizes are bytes, ``*_seconds``/``seconds`` wall time, ``hourly_usd`` an estimate,
``created``/``expires`` ISO 8601 UTC; ``failed`` lists test names,
``passed``/``skipped``/``tests`` are counts (null without a report)."""


def _title(text: str, underline: str, overline: bool = False) -> list[str]:
    rule = underline * len(text)
    return [rule, text, rule] if overline else [text, rule]


def _shown(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def _synopsis(option: Option) -> str:
    """``-r, --revision REVISION`` as the reference lists an option."""
    if option.positional:
        return option.metavar or option.dest
    if not option.takes_value:
        return ", ".join(option.flags)
    if option.metavar:
        value = option.metavar
    elif option.choices is not None:
        value = "{" + ",".join(map(str, option.choices)) + "}"
    else:
        value = option.dest.upper()
    if option.kind == "list":
        value = f"{value} [{value} ...]"
    return f"{', '.join(option.flags)} {value}"


def _escaped(text: str) -> str:
    """Help text as reST prose: its ``*``, backquotes, bars and trailing ``_`` literal."""
    import re

    return re.sub(r"([\\*`|])|(_)(?=\W|$)", lambda m: "\\" + m.group(0), text)


def _wrapped(text: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent="    ", subsequent_indent="    ",
                         break_on_hyphens=False, break_long_words=False)


def _option(option: Option) -> list[str]:
    text = _escaped(option.help_text)
    lines = [f"``{_synopsis(option)}``", *_wrapped(f"{text[0].upper()}{text[1:]}.")]
    facts = []
    if option.kind == "list" and "'a,b'" not in text:
        facts.append("several values: 'a b' or 'a,b'")
    elif option.kind == "append" and "repeatable" not in text:
        facts.append("repeatable")
    if option.takes_value and option.default not in (None, "", (), []) \
            and "default" not in text:
        facts.append(f"default ``{_shown(option.default)}``")
    if option.choices is not None:
        facts.append("one of " + ", ".join(f"``{c}``" for c in option.choices))
    if option.setting:
        facts.append(f"setting ``{option.setting}``")
    if option.env:
        facts.append(f"environment ``{option.env}``")
    if facts:
        lines += ["", *_wrapped(f"({'; '.join(facts)})")]
    return lines + [""]


def _command(name: str, command: Command) -> list[str]:
    help_text = catalog.help_of(name)
    lines = _title(f"``{name}``", "-") + ["", help_text[0].upper() + help_text[1:] + ".", ""]
    positionals = [o for o in command.options if o.positional]
    usage = " ".join(["[options]"] + [f"[{_synopsis(o)} ...]" if o.kind == "passthrough"
                                      else _synopsis(o) for o in positionals])
    lines += ["::", "", f"    {PROG} [global options] {name} {usage}", ""]
    sections: dict[str, list[Option]] = {}
    for option in command.options:
        title = option.part.title if option.part is not None and option.part.title else ""
        sections.setdefault(title, []).append(option)
    for title, options in sections.items():
        lines += [f"{title or 'Options'}:", ""]
        for option in options:
            lines += _option(option)
    lines += ["Examples::", ""]
    lines += [f"    {example.format(prog=PROG)}" for example in command.examples]
    lines.append("")
    if command.json_keys:
        lines += ["``-T json`` keys: see `Machine-readable output`_.", ""]
    return lines


def _json_lines(commands: dict[str, Command]) -> list[str]:
    lines = []
    for name, command in commands.items():
        for path, keys in command.json_keys.items():
            where = f"{name}.{path}" if path else name
            lines.append(f"    {where}: {' '.join(sorted(keys.split()))}")
    return lines


def _settings(commands: dict[str, Command]) -> list[str]:
    rows: dict[str, tuple[str, set[str]]] = {}
    for option in catalog.GLOBAL_OPTIONS:
        if option.setting:
            rows[option.setting] = (option.flags[-1], {"every command"})
    for name, command in commands.items():
        for option in command.options:
            if option.setting:
                rows.setdefault(option.setting, (option.flags[-1], set()))[1].add(name)
    lines = [".. list-table::", "   :header-rows: 1", "", "   * - key", "     - option",
             "     - commands"]
    for key in sorted(rows):
        flag, names = rows[key]
        lines += [f"   * - ``{key}``", f"     - ``{flag}``",
                  *textwrap.wrap(", ".join(sorted(names)), WIDTH, initial_indent="     - ",
                                 subsequent_indent="       ", break_on_hyphens=False)]
    return lines


def render() -> str:
    """The whole reference, as committed in ``docs/reference.rst``."""
    commands = {name: catalog.command(name) for name in catalog.COMMANDS}
    lines = [".. Generated from the command declarations; do not edit. Regenerate with",
             f"   ``{REGENERATE}``", "   (tests/unit/test_declarations.py fails while the two "
             "differ).", ""]
    lines += _title("Command reference", "=", overline=True)
    lines += ["", f"Every command of ``{PROG}`` (the ``hgautomation`` console script is the "
              "same), its", "options, their defaults and the settings that may give them, "
              "examples, and the", "keys of ``-T json`` output. ``--help`` on a command "
              "shows the same.", "", ".. contents::", "   :local:", "   :depth: 1", ""]
    lines += _title("Global options", "=") + [
        "", "Before or after COMMAND, on every command.", ""]
    for option in catalog.GLOBAL_OPTIONS:
        lines += _option(option)
    lines += _title("Settings", "=") + [
        "", "Where the command line does not give an option, the first of these that does "
            "gives it:", "``--config SECTION.KEY=VALUE``, the option's ``HGAUTOMATION_*`` "
            "variable, the", "``<state>/config`` file (hgrc-style ``[section]`` and "
            "``key = value`` lines), the", "option's default. These keys may appear in the "
            "file and in ``--config``:", ""]
    lines += _settings(commands) + [""]
    lines += _title("Commands", "=") + [""]
    for name, command in commands.items():
        lines += _command(name, command)
    lines += _title("Machine-readable output", "=") + ["", _JSON_INTRO]
    lines += _json_lines(commands) + ["", _JSON_UNITS]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
