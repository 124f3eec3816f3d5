"""Defaults that stick: the configuration file, ``--config`` and ``HGAUTOMATION_*``.

Every setting is an option of the command line; where a run does not give it,
the value comes from (first found wins)::

    --config SECTION.KEY=VALUE   (command line, like hg's)
    HGAUTOMATION_<NAME>          (environment)
    <state>/config               (hgrc-style: [section] and key = value lines)
    the option's built-in default

The file is read only when it exists; an unknown section or key is an error that
names it (with the closest known one), so a typo never passes silently.
Which option each setting defaults is declared with the option
(:class:`hgautomation.declare.Option` ``settings``); values are validated as the
option itself validates them, by the caller (:mod:`hgautomation.arguments`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from hgautomation import errors

if TYPE_CHECKING:
    from hgautomation.declare import Option


# The state directory holds the file, so it comes from the command line or here.
STATE_PATH_ENV = "HGAUTOMATION_STATE_PATH"


class Keys:
    """The ``section.key`` names a file or ``--config`` may set: the run's command's
    first; every command's (``every()``, which imports them all) only for a name that
    is not among those, to tell another command's key from a typo."""

    def __init__(self, near: Iterable[str], every: Callable[[], Iterable[str]]):
        self._near = set(near)
        self._every = every
        self._all: list[str] | None = None

    def __contains__(self, key: str) -> bool:
        return key in self._near or key in self.all()

    def all(self) -> list[str]:
        if self._all is None:
            self._all = sorted(set(self._every()) | self._near)
        return self._all


def file_path(state_path: str | None) -> Path:
    """<state>/config, in the state directory --state-path names (or its default)."""
    from hgautomation.state import StateDir

    return StateDir.at(state_path).root / "config"


def _unknown(key: str, where: str, keys: Keys) -> errors.ConfigurationError:
    import difflib

    close = difflib.get_close_matches(key, keys.all(), n=1)
    return errors.ConfigurationError(
        f"{where}: unknown setting {key!r}",
        hint=f"did you mean {close[0]!r}?" if close else f"known: {', '.join(keys.all())}")


def read_file(path: Path, keys: Keys) -> dict[str, tuple[str, str]]:
    """``{"aws.region": (value, "PATH")}`` from an hgrc-style file; {} if it is absent."""
    import configparser

    parser = configparser.ConfigParser(interpolation=None, comment_prefixes=("#", ";"),
                                       inline_comment_prefixes=None, strict=True)
    try:
        with open(path, encoding="utf-8") as fh:
            parser.read_file(fh)
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        reason = getattr(exc, "message", None) or str(exc).splitlines()[0]
        raise errors.ConfigurationError(f"cannot read {path}: {reason}") from exc
    found = {}
    for section in parser.sections():
        for name, value in parser.items(section):
            key = f"{section}.{name}"
            if key not in keys:
                raise _unknown(key, str(path), keys)
            found[key] = (value.strip(), str(path))
    return found


def parse_overrides(items: list[str] | None, keys: Keys) -> dict[str, tuple[str, str]]:
    """``--config SECTION.KEY=VALUE`` values (later ones win)."""
    found = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise errors.UsageError(f"--config {item!r}: expected SECTION.KEY=VALUE")
        if key not in keys:
            raise _unknown(key, "--config", keys)
        found[key] = (value, "--config")
    return found


def candidates(options: Iterable[Option], given: set[str],
               overrides: dict[str, tuple[str, str]],
               file_values: dict[str, tuple[str, str]],
               environ: dict[str, str]) -> dict[str, tuple[str, str]]:
    """For each of a command's `options` (global ones included) the user did not give
    (`given`: dests) and that a setting may default: the raw value and where it comes
    from, by precedence."""
    chosen: dict[str, tuple[str, str]] = {}
    for option in options:
        key, env = option.setting, option.env
        if option.dest in given or option.dest in chosen or option.dest == "state_path":
            continue
        if key and key in overrides:
            chosen[option.dest] = overrides[key]
        elif env and environ.get(env):
            chosen[option.dest] = (environ[env], env)
        elif key and key in file_values:
            chosen[option.dest] = (file_values[key][0], f"{file_values[key][1]} ({key})")
    return chosen
