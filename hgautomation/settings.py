"""Defaults that stick: the configuration file, ``--config`` and ``HGAUTOMATION_*``.

Every setting is an option of the command line; where a run does not give it,
the value comes from (first found wins)::

    --config SECTION.KEY=VALUE   (command line, like hg's)
    HGAUTOMATION_<NAME>          (environment)
    <state>/config               (hgrc-style: [section] and key = value lines)
    the option's built-in default

The file is read only when it exists; an unknown section or key is an error that
names it (with the closest known one), so a typo never passes silently.
Values are validated by the option itself (its ``type=`` and choices), by the
caller (:mod:`hgautomation.arguments`), which owns the parser.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hgautomation import errors


@dataclass(frozen=True)
class Setting:
    dest: str  # the option's attribute on the parsed arguments
    key: str | None  # "section.key" in the file and in --config; None: not there
    env: str | None  # HGAUTOMATION_* variable; None: not there
    commands: tuple[str, ...] = ()  # () = every command that has the option


_WINDOWS_BUILDS = ("build-all-windows-packages", "build-inno", "build-wix",
                   "build-windows-wheel")

SETTINGS: tuple[Setting, ...] = (
    Setting("aws_region", "aws.region", "HGAUTOMATION_AWS_REGION"),
    Setting("aws_profile", "aws.profile", "HGAUTOMATION_AWS_PROFILE"),
    Setting("owner", "aws.owner", "HGAUTOMATION_OWNER"),
    Setting("ingress_cidr", "aws.ingress-cidr", "HGAUTOMATION_INGRESS_CIDR"),
    Setting("ssh_config", "ssh.config", "HGAUTOMATION_SSH_CONFIG"),
    Setting("identity", "ssh.identity", "HGAUTOMATION_IDENTITY"),
    Setting("hg_repo", None, "HGAUTOMATION_HG_REPO"),
    Setting("verbose", None, "HGAUTOMATION_VERBOSE"),
    Setting("quiet", None, "HGAUTOMATION_QUIET"),
    Setting("debug", None, "HGAUTOMATION_DEBUG"),
    Setting("distro", "linux.distro", None, ("run-tests-linux",)),
    Setting("instance_type", "linux.instance-type", None, ("run-tests-linux",)),
    Setting("instance_type", "windows.bootstrap-instance-type", None,
            ("bootstrap-windows-dev",)),
    Setting("instance_type", "windows.build-instance-type", None, _WINDOWS_BUILDS),
    Setting("instance_type", "windows.tests-instance-type", None, ("run-tests-windows",)),
    Setting("base_image_name", "windows.base-image-name", None),
    Setting("ssh_host", "publish.ssh-host", None, ("publish-windows-artifacts",)),
    Setting("ssh_username", "publish.ssh-username", None, ("publish-windows-artifacts",)),
    Setting("release_dir", "publish.release-dir", None, ("publish-windows-artifacts",)),
)
# The state directory holds the file, so it comes from the command line or here.
STATE_PATH_ENV = "HGAUTOMATION_STATE_PATH"
KEYS = sorted({s.key for s in SETTINGS if s.key})


def file_path(state_path: str | None) -> Path:
    """<state>/config, in the state directory --state-path names (or its default)."""
    from hgautomation.state import StateDir

    return StateDir.at(state_path).root / "config"


def _unknown(key: str, where: str) -> errors.ConfigurationError:
    import difflib

    close = difflib.get_close_matches(key, KEYS, n=1)
    return errors.ConfigurationError(
        f"{where}: unknown setting {key!r}",
        hint=f"did you mean {close[0]!r}?" if close else f"known: {', '.join(KEYS)}")


def read_file(path: Path) -> dict[str, tuple[str, str]]:
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
            if key not in KEYS:
                raise _unknown(key, str(path))
            found[key] = (value.strip(), str(path))
    return found


def parse_overrides(items: list[str] | None) -> dict[str, tuple[str, str]]:
    """``--config SECTION.KEY=VALUE`` values (later ones win)."""
    found = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise errors.UsageError(f"--config {item!r}: expected SECTION.KEY=VALUE")
        if key not in KEYS:
            raise _unknown(key, "--config")
        found[key] = (value, "--config")
    return found


def candidates(command: str, available: set[str], given: set[str],
               overrides: dict[str, tuple[str, str]],
               file_values: dict[str, tuple[str, str]],
               environ: dict[str, str] | None = None) -> dict[str, tuple[str, str]]:
    """For each option of `command` the user did not give (`given`, dests): the raw
    value and where it comes from, by precedence. `available`: the command's dests."""
    environ = os.environ if environ is None else environ
    chosen: dict[str, tuple[str, str]] = {}
    for setting in SETTINGS:
        if setting.dest not in available or setting.dest in given or setting.dest in chosen:
            continue
        if setting.commands and command not in setting.commands:
            continue
        if setting.key and setting.key in overrides:
            chosen[setting.dest] = overrides[setting.key]
        elif setting.env and environ.get(setting.env):
            chosen[setting.dest] = (environ[setting.env], setting.env)
        elif setting.key and setting.key in file_values:
            chosen[setting.dest] = (file_values[setting.key][0],
                                    f"{file_values[setting.key][1]} ({setting.key})")
    return chosen
