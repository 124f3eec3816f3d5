"""Defaults that stick: the configuration file, ``--config`` and ``HGAUTOMATION_*``.

Every setting is an option of the command line; where a run does not give it,
the value comes from (first found wins)::

    --config SECTION.KEY=VALUE   (command line, like hg's)
    HGAUTOMATION_<NAME>          (environment)
    <state>/config               (hgrc-style: [section] and key = value lines)
    the option's built-in default

The file is read only when it exists; an unknown section or key is an error that
names it (with the closest known one), so a typo never passes silently. A
``[DEFAULT]`` section is refused: its keys would silently apply to every section.
The file must be a regular file of at most :data:`MAX_FILE_SIZE` bytes (a FIFO or
``/dev/zero`` is refused at once, never read). The variables that tune AWS calls
(``HGAUTOMATION_AWS_TIMEOUT``, ``AWS_MAX_ATTEMPTS``) are read by :func:`env_number`.
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

    def sections(self) -> list[str]:
        return sorted({key.split(".", 1)[0] for key in self.all()})

    def has_section(self, section: str) -> bool:
        return (any(key.startswith(f"{section}.") for key in self._near)
                or section in self.sections())


def file_path(state_path: str | None) -> Path:
    """<state>/config, in the state directory --state-path names (or its default)."""
    from hgautomation.state import StateDir

    return StateDir.at(state_path).root / "config"


def _unknown(key: str, where: str, keys: Keys) -> errors.ConfigurationError:
    close = _closest(key, keys.all())
    return errors.ConfigurationError(
        f"{where}: unknown setting {key!r}",
        hint=f"did you mean {close!r}?" if close else f"known: {', '.join(keys.all())}")


# A settings file is a few lines; anything this big is not one (e.g. /dev/zero).
MAX_FILE_SIZE = 1 << 20
# configparser's name for the section whose keys apply to every section: a name no
# file can spell, so that a [DEFAULT] in the file is an ordinary section we refuse.
_NO_DEFAULTS = "\0none"


def read_small_file(path: Path, limit: int = MAX_FILE_SIZE) -> bytes | None:
    """The bytes of the regular file ``path`` (symlinks followed), None if it does not
    exist; ConfigurationError if it is a FIFO, device or directory, or over ``limit``
    bytes. Never blocks: a FIFO is opened non-blocking and refused before any read."""
    import os
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
                     | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise errors.ConfigurationError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                    else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                    else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
            raise errors.ConfigurationError(f"cannot read {path}: it is {kind}, "
                                            "not a regular file")
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise errors.ConfigurationError(f"cannot read {path}: {exc.strerror}") from exc
    finally:
        os.close(fd)
    if len(data) > limit:
        raise errors.ConfigurationError(f"cannot read {path}: larger than {limit} bytes, "
                                        "not a settings file")
    return data


def read_file(path: Path, keys: Keys) -> dict[str, tuple[str, str]]:
    """``{"aws.region": (value, "PATH")}`` from an hgrc-style file; {} if it is absent."""
    import configparser

    parser = configparser.ConfigParser(interpolation=None, comment_prefixes=("#", ";"),
                                       inline_comment_prefixes=None, strict=True,
                                       default_section=_NO_DEFAULTS)
    data = read_small_file(path)
    if data is None:
        return {}
    try:
        parser.read_string(data.decode("utf-8"), source=str(path))
    except (UnicodeDecodeError, configparser.Error) as exc:
        reason = getattr(exc, "message", None) or str(exc).splitlines()[0]
        raise errors.ConfigurationError(f"cannot read {path}: {reason}") from exc
    found = {}
    for section in parser.sections():
        if section.upper() == "DEFAULT":
            raise errors.ConfigurationError(
                f"{path}: a [{section}] section is not supported (its keys would apply "
                "to every section)", hint="put each key under its own section, "
                "e.g. [aws] region = ...")
        if not keys.has_section(section):
            sections = keys.sections()
            close = _closest(section, sections)
            raise errors.ConfigurationError(
                f"{path}: unknown section [{section}]",
                hint=f"did you mean [{close}]?" if close else
                f"known: {', '.join(f'[{s}]' for s in sections)}")
        for name, value in parser.items(section):
            key = f"{section}.{name}"
            if key not in keys:
                raise _unknown(key, str(path), keys)
            found[key] = (value.strip(), str(path))
    return found


def _closest(word: str, candidates: list[str]) -> str | None:
    import difflib

    close = difflib.get_close_matches(word, candidates, n=1)
    return close[0] if close else None


def env_number(name: str, default: int, low: int, high: int,
               environ: dict[str, str] | None = None) -> int:
    """The whole number in variable ``name`` (unset or empty: ``default``); anything else
    than ASCII digits from ``low`` to ``high`` is a ConfigurationError naming it."""
    import os

    environ = os.environ if environ is None else environ
    text = environ.get(name, "")
    if text == "":
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 9
            and low <= int(text) <= high):
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise errors.ConfigurationError(
            f"{name}={shown!r}: expected a whole number from {low} to {high}")
    return int(text)


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
    """For each of a command's ``options`` (global ones included) the user did not give
    (``given``: dests) and that a setting may default: the raw value and where it comes
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
