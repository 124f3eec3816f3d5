"""Where to connect: host specs, the OpenSSH client config applied, and written back.

:func:`resolve` turns a host name into a :class:`Target` the way ``ssh`` would: it
asks ``ssh -G`` for the effective options, so ``Include``, ``Match``, ``Host``
aliases, ``ProxyJump``/``ProxyCommand`` and tokens mean exactly what they mean to
``ssh``. The config is ``--ssh-config`` if given, else ``$HOME/.ssh/config`` (read,
never written). Without an ``ssh`` program, paramiko's parser reads the same file
(no ``Include``/``Match``). :func:`openssh_config` writes a target back as an
OpenSSH config block, so that ``ssh``-based tools (``hg push``) connect exactly
like the communicator.
"""

from __future__ import annotations

import functools
import getpass
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from hgautomation import errors
from hgautomation.options import parse_host_spec
from hgautomation.ssh import group
from hgautomation.ssh.hostkeys import USER_KNOWN_HOSTS

DEFAULT_CONNECT_TIMEOUT = 15.0
# The host name an OpenSSH config from openssh_config() answers to.
ALIAS = "hgautomation-target"


@dataclass(frozen=True)
class Target:
    """Where and how to connect, after the ssh config has been applied."""

    name: str  # what the user named (host of --host, an instance address)
    hostname: str  # where TCP goes (ssh config HostName)
    port: int
    user: str
    identity_files: tuple[Path, ...] = ()
    proxy_command: str | None = None
    proxy_jump: str | None = None
    host_key_alias: str | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    connection_attempts: int = 1
    ssh_config: Path | None = None
    # False: also try the agent and ~/.ssh default keys after identity_files.
    identities_only: bool = True
    # Read-only known_hosts files of the config (UserKnownHostsFile; default
    # $HOME/.ssh/known_hosts): keys the user already trusts.
    user_known_hosts: tuple[Path, ...] = ()

    @property
    def known_hosts_name(self) -> str:
        """The key under which the host key is pinned (as OpenSSH spells it)."""
        if self.host_key_alias:
            return self.host_key_alias
        return self.hostname if self.port == 22 else f"[{self.hostname}]:{self.port}"

    def __str__(self) -> str:
        return f"{self.user}@{self.name}" + ("" if self.port == 22 else f":{self.port}")


USER_CONFIG = Path("~/.ssh/config")
SSH_G_TIMEOUT = 30.0
SSH_G_NOTICE = 3.0  # seconds of ssh -G before a line says what is awaited
# `ssh -G` prints a default for these when the config does not set them. So the
# config is read through a wrapper that Includes it and then sets each to UNSET:
# ssh keeps the first value it obtains (IdentityFile adds to a list), hence UNSET
# comes out exactly where the config set nothing, whatever value it did set.
_UNSET = {"user": "hgautomation-unset", "identityfile": "/hgautomation-unset",
          "userknownhostsfile": "/hgautomation-unset"}
_WRAPPER = """Include "{config}"
Host *
  User {user}
  IdentityFile {identityfile}
  UserKnownHostsFile {userknownhostsfile}
"""


def config_path(ssh_config: Path | None) -> Path | None:
    """The config in effect: the given one, else the user's if it exists. Either must
    be a regular file (``ssh`` would wait for ever on a FIFO)."""
    if ssh_config is not None:
        path = Path(ssh_config).expanduser().absolute()
        try:
            missing = not path.exists() or path.is_dir()
        except OSError as exc:  # e.g. a name too long for the file system
            raise errors.ConfigurationError(f"ssh config {path}: {exc.strerror}") from exc
        if missing:
            raise errors.ConfigurationError(f"ssh config {path} does not exist")
    else:
        path = USER_CONFIG.expanduser().absolute()
        if not path.exists() or path.is_dir():
            return None
    if not path.is_file():
        raise errors.ConfigurationError(f"ssh config {path} is not a regular file")
    return path


@functools.lru_cache(maxsize=64)
def _ssh_g(host: str, config: str, user: str | None, port: int | None) -> dict[str, list[str]]:
    """``ssh -G``'s effective options for ``host`` under ``config`` (keys lowercase, every
    value kept, a value equal to ``_UNSET``'s where the config sets none)."""
    import tempfile

    if '"' in config:
        raise errors.ConfigurationError(f"ssh config {config}: a path with '\"' in it "
                                        "cannot be included; use another path")
    argv = ["ssh", "-G"]
    if user:
        argv += ["-l", user]
    if port:
        argv += ["-p", str(port)]
    try:
        with tempfile.NamedTemporaryFile("w", prefix="hgautomation-ssh-",
                                         suffix=".conf") as wrapper:
            wrapper.write(_WRAPPER.format(config=config, **_UNSET))
            wrapper.flush()
            result = _run_bounded([*argv, "-F", wrapper.name, "--", host], SSH_G_TIMEOUT,
                                  f"ssh -G {host} (reading the ssh config {config})")
    except OSError as exc:
        raise errors.ConfigurationError(f"ssh -G {host} failed: {exc}") from exc
    if result.returncode != 0:
        why = " ".join(line.strip() for line in result.stderr.splitlines()
                       if line.strip() and "Pseudo-terminal" not in line)
        raise errors.ConfigurationError(f"ssh config {config}: {why or 'unreadable'}")
    options: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition(" ")
        options.setdefault(key.lower(), []).append(value)
    return options


def _run_bounded(argv: list[str], timeout: float,
                 what: str) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` (``ssh -G``) in a process group of its own, for at most ``timeout``
    seconds (a line says so after ``SSH_G_NOTICE``); whatever it started (a config's
    ``Match exec`` command) is killed with it, on success, timeout or interrupt."""
    import tempfile

    from hgautomation import console

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = group.start(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        try:
            code = group.wait(proc, SSH_G_NOTICE)
            if code is None:
                console.get().info(f"    waiting for {what}: at most {timeout:.0f}s")
                code = group.wait(proc, timeout - SSH_G_NOTICE)
            if code is None:
                raise errors.ConfigurationError(
                    f"{what} did not finish within {timeout:.0f}s",
                    hint="a Match exec command that does not end, or an Include of "
                         "something that is not a file?")
        finally:
            group.stop(proc)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(
            argv, code, out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"))


def _options(host: str, config: Path | None, user: str | None,
             port: int | None) -> dict[str, str | list[str]]:
    """The options the config sets for ``host``: ``identityfile`` a list, the rest text."""
    if config is None:
        return {}
    if shutil.which("ssh") is None:
        return _paramiko_options(host, config)
    options: dict[str, str | list[str]] = {}
    for key, values in _ssh_g(host, str(config), user, port).items():
        if key in _UNSET:
            values = [v for v in values if v != _UNSET[key]]
            if not values:
                continue  # not set by the config
        options[key] = values if key == "identityfile" else values[0]
    if options.get("connecttimeout") == "none":
        del options["connecttimeout"]
    if "proxycommand" in options:
        options["proxycommand"] = _expand_tokens(str(options["proxycommand"]), options,
                                                 host, user)
    return options


def _expand_tokens(command: str, options: dict, host: str, user: str | None) -> str:
    """ProxyCommand's %h, %p, %r, %n and %% (``ssh -G`` prints it unexpanded)."""
    values = {"h": str(options.get("hostname", host)), "p": str(options.get("port", 22)),
              "r": str(user or options.get("user") or getpass.getuser()), "n": host,
              "%": "%"}
    out, i = [], 0
    while i < len(command):
        if command[i] == "%" and i + 1 < len(command) and command[i + 1] in values:
            out.append(values[command[i + 1]])
            i += 2
        else:
            out.append(command[i])
            i += 1
    return "".join(out)


def _paramiko_options(host: str, config: Path) -> dict[str, str | list[str]]:
    import paramiko

    try:
        return dict(paramiko.SSHConfig.from_path(str(config)).lookup(host))
    except (OSError, paramiko.ssh_exception.ConfigParseError, ValueError) as exc:
        raise errors.ConfigurationError(f"cannot read ssh config {config}: {exc}") from exc


def resolve(host: str, *, user: str | None = None, port: int | None = None,
            ssh_config: Path | None = None, identity_files: Sequence[Path] = (),
            default_user: str | None = None, host_key_alias: str | None = None,
            fallback_identity: Path | None = None) -> Target:
    """Apply the ssh config (``ssh_config``, else the user's) to ``host``; explicit
    ``user``/``port``/identities win.

    ``fallback_identity`` (e.g. the tool's own key) is tried when neither the caller
    nor the config names an identity, followed by the agent and default keys.
    """
    config = config_path(ssh_config)
    options = _options(host, config, user, port)

    def text(key: str) -> str | None:
        value = options.get(key)
        return value if isinstance(value, str) else None

    def number(key: str, default: float) -> float:
        value = text(key)
        try:
            return float(value) if value is not None else default
        except ValueError:
            raise errors.ConfigurationError(
                f"ssh config: bad {key} {value!r} for {host}") from None

    identities = tuple(Path(p).expanduser() for p in identity_files)
    if not identities:
        listed = options.get("identityfile", [])
        identities = tuple(Path(p).expanduser() for p in
                           (listed if isinstance(listed, list) else [listed]))
    identities_only = bool(identities)
    if not identities and fallback_identity is not None and Path(fallback_identity).exists():
        identities = (Path(fallback_identity),)
    proxy_command = text("proxycommand")
    if proxy_command and proxy_command.lower() == "none":
        proxy_command = None
    proxy_jump = text("proxyjump")
    if proxy_jump and proxy_jump.lower() == "none":
        proxy_jump = None
    known = text("userknownhostsfile")
    user_known_hosts = tuple(Path(p).expanduser() for p in known.split()) if known \
        else (USER_KNOWN_HOSTS.expanduser(),)
    return Target(
        name=host,
        hostname=text("hostname") or host,
        port=int(port or number("port", 22)),
        user=user or text("user") or default_user or getpass.getuser(),
        identity_files=identities,
        proxy_command=proxy_command,
        proxy_jump=proxy_jump,
        host_key_alias=host_key_alias or text("hostkeyalias"),
        connect_timeout=number("connecttimeout", DEFAULT_CONNECT_TIMEOUT),
        connection_attempts=max(1, int(number("connectionattempts", 1))),
        ssh_config=config,
        identities_only=identities_only,
        user_known_hosts=user_known_hosts,
    )


def jump_hosts(target: Target) -> list[Target]:
    """The ProxyJump hops of ``target`` in order, resolved with the same ssh config.

    Each hop is reached directly from the previous one (as ``ssh -J`` does), so its
    own ProxyJump, if the config gives it one, is ignored.
    """
    if not target.proxy_jump:
        return []
    hops = []
    for spec in (h.strip() for h in target.proxy_jump.split(",")):
        if spec:
            parsed = parse_host_spec(spec)
            hop = resolve(parsed.address, user=parsed.user, port=parsed.port,
                          ssh_config=target.ssh_config)
            hops.append(replace(hop, proxy_jump=None))
    return hops


def openssh_config(target: Target, known_hosts: Path,
                   extra_known_hosts: Iterable[Path] = (), alias: str = ALIAS) -> str:
    """An OpenSSH client config that reaches ``target`` as ``alias``, keys pinned, no prompts."""
    files = [str(Path(known_hosts).absolute())] + \
        [str(Path(p).expanduser()) for p in extra_known_hosts]
    lines = [
        f"Host {alias}",
        f"  HostName {target.hostname}",
        f"  Port {target.port}",
        f"  User {target.user}",
        f"  HostKeyAlias {target.known_hosts_name}",
        f"  ConnectTimeout {int(target.connect_timeout)}",
    ]
    for identity in target.identity_files:
        lines.append(f"  IdentityFile {_quote_cfg(str(identity))}")
    if target.identities_only:
        lines.append("  IdentitiesOnly yes")
    if target.proxy_command:
        lines.append(f"  ProxyCommand {target.proxy_command}")
    elif target.proxy_jump:
        lines.append(f"  ProxyJump {target.proxy_jump}")
    # First obtained value wins in OpenSSH: these apply to every host (also jump
    # hosts) before anything from the user's own config.
    lines += [
        "Match all",
        "  BatchMode yes",
        "  StrictHostKeyChecking yes",
        "  UpdateHostKeys no",
        "  UserKnownHostsFile " + " ".join(_quote_cfg(f) for f in files),
        "  GlobalKnownHostsFile /dev/null",
    ]
    if target.ssh_config:
        lines.append(f"  Include {_quote_cfg(str(target.ssh_config))}")
    return "\n".join(lines) + "\n"


def _quote_cfg(value: str) -> str:
    return f'"{value}"' if any(c.isspace() for c in value) else value
