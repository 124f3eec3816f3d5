"""The command line as declarations: an :class:`Option` per flag or positional, a
:class:`Command` per subcommand, a :class:`Part` per nested options record.

Each ``commands/<flow>.py`` declares its command(s) here-style; :mod:`hgautomation.arguments`
builds argparse from them, :mod:`hgautomation.reference` renders ``docs/reference.rst``.
The top-level help imports this module (for the global options), so it imports nothing
at all: plain classes, not dataclasses (whose import alone costs a tenth of the
start-up budget).
"""

from __future__ import annotations

# How an option takes its value(s):
#   value        one value (a positional when its name has no leading dash)
#   flag / off   store True / store False (``--no-x``, whose dest drops the "no-")
#   count        -v -vv
#   list         several values, as separate words ("a b") or comma-separated ("a,b")
#   append       repeatable, one value each time
#   passthrough  positionals and unknown options handed on (run-tests.py's flags)
KINDS = ("value", "flag", "off", "count", "list", "append", "passthrough")
_DEFAULTS = {"flag": False, "off": True, "count": 0, "passthrough": ()}


class _Frozen:
    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def _set(self, **values: object) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)


class Part(_Frozen):
    """A nested record of a command's options (``aws`` -> AWSOptions): the record's field,
    the function that builds it from the parsed values, and its help section (if any)."""

    __slots__ = ("build", "field", "title")

    def __init__(self, field: str, build, title: str | None = None):
        self._set(field=field, build=build, title=title)


class Option(_Frozen):
    """One flag (``"-r", "--revision"``) or positional (``"shell"``) of the command line.

    ``validator`` turns the text into the value or raises UsageError (see
    :mod:`hgautomation.options`); ``settings`` names the ``section.key`` of
    ``<state>/config``/``--config`` and the ``HGAUTOMATION_*`` variable that may give
    the value when the command line does not; ``part`` is the nested record it fills.
    ``%(default)s`` in ``help`` is replaced by the default, as argparse does.
    """

    __slots__ = (
        "choices",
        "default",
        "dest",
        "flags",
        "help",
        "kind",
        "metavar",
        "part",
        "settings",
        "validator",
    )

    def __init__(self, *flags: str, help: str, kind: str = "value",
                 default: object = None, metavar: str | None = None,
                 choices: tuple | None = None, validator=None,
                 settings: tuple[str, ...] = (), part: Part | None = None):
        if kind not in KINDS:
            raise ValueError(f"unknown option kind {kind!r}")
        self._set(flags=flags, dest=_dest(flags, kind), help=help, kind=kind,
                  default=_DEFAULTS.get(kind, default), metavar=metavar,
                  choices=tuple(choices) if choices is not None else None,
                  validator=validator, settings=tuple(settings), part=part)

    @property
    def positional(self) -> bool:
        return not self.flags[0].startswith("-")

    @property
    def takes_value(self) -> bool:
        return self.kind not in ("flag", "off", "count")

    @property
    def name(self) -> str:
        """How messages name it: its last flag (``--hg-repo``), or a positional's metavar."""
        return self.flags[-1] if not self.positional else (self.metavar or self.dest)

    @property
    def setting(self) -> str | None:
        """The ``section.key`` that may give its value, if any."""
        return next((s for s in self.settings if "." in s), None)

    @property
    def env(self) -> str | None:
        """The ``HGAUTOMATION_*`` variable that may give its value, if any."""
        return next((s for s in self.settings if s.startswith("HGAUTOMATION_")), None)

    @property
    def help_text(self) -> str:
        """The help with ``%(default)s`` filled in (as argparse shows it)."""
        return self.help % {"default": self.default} if "%(" in self.help else self.help


def _dest(flags: tuple[str, ...], kind: str) -> str:
    if not flags:
        raise ValueError("an option needs a flag or a name")
    if not flags[0].startswith("-"):
        return flags[0]
    long = next((f for f in flags if f.startswith("--")), flags[0])
    name = long.lstrip("-")
    if kind == "off":
        if not name.startswith("no-"):
            raise ValueError(f"{long}: an 'off' option is spelt --no-...")
        name = name[3:]
    return name.replace("-", "_")


class Command(_Frozen):
    """A subcommand: its options (in help order), the frozen record they make, the flow
    that takes ``(ctx, record)``, examples (``{prog}`` is the program) and, for
    ``-T json``, the document's keys (``{"": "a b", "list[]": "c d", "object": "e"}``).

    Its one-line help and where it lives are in :data:`hgautomation.catalog.COMMANDS`
    (the top-level help needs them without importing the command).
    """

    __slots__ = ("examples", "flow", "json_keys", "name", "options", "record")

    def __init__(self, name: str, *, options: tuple[Option, ...], record: type, flow,
                 examples: tuple[str, ...], json_keys: dict[str, str] | None = None):
        self._set(name=name, options=tuple(options), record=record, flow=flow,
                  examples=tuple(examples), json_keys=dict(json_keys or {}))

    @property
    def parts(self) -> dict[str, Part]:
        return {o.part.field: o.part for o in self.options if o.part is not None}

    def option(self, dest: str) -> Option:
        return next(o for o in self.options if o.dest == dest)

    def build(self, values: dict[str, object]) -> object:
        """The command's record from the parsed values (dest -> value; lists become
        tuples); a Part builds its nested record, and may refuse (UsageError)."""
        import dataclasses

        parts = self.parts
        fields = {}
        for field in dataclasses.fields(self.record):
            if field.name in parts:
                fields[field.name] = parts[field.name].build(values)
            elif field.name in values:
                value = values[field.name]
                fields[field.name] = tuple(value) if isinstance(value, list) else value
        return self.record(**fields)
