"""Where to connect: host specs, the OpenSSH client config applied, and written back.

:func:`resolve` turns a host name into a :class:`Target` the way ``ssh`` would read
its config; :func:`openssh_config` writes a target back as an OpenSSH config block,
so that ``ssh``-based tools (``hg push``) connect exactly like the communicator.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from hgautomation import errors
from hgautomation.options import parse_host_spec

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

    @property
    def known_hosts_name(self) -> str:
        """The key under which the host key is pinned (as OpenSSH spells it)."""
        if self.host_key_alias:
            return self.host_key_alias
        return self.hostname if self.port == 22 else f"[{self.hostname}]:{self.port}"

    def __str__(self) -> str:
        return f"{self.user}@{self.name}" + ("" if self.port == 22 else f":{self.port}")


def _load_config(path: Path | None):
    import paramiko

    if path is None:
        return paramiko.SSHConfig()
    path = Path(path).expanduser()
    try:
        return paramiko.SSHConfig.from_path(str(path))
    except FileNotFoundError:
        raise errors.ConfigurationError(f"ssh config {path} does not exist") from None
    except (OSError, paramiko.ssh_exception.ConfigParseError, ValueError) as exc:
        raise errors.ConfigurationError(f"cannot read ssh config {path}: {exc}") from None


def resolve(host: str, *, user: str | None = None, port: int | None = None,
            ssh_config: Path | None = None, identity_files: Sequence[Path] = (),
            default_user: str | None = None, host_key_alias: str | None = None,
            fallback_identity: Path | None = None) -> Target:
    """Apply ``ssh_config`` to ``host``; explicit ``user``/``port``/identities win.

    ``fallback_identity`` (e.g. the tool's own key) is tried when neither the caller
    nor the config names an identity, followed by the agent and default keys.
    """
    options = _load_config(ssh_config).lookup(host)

    def number(key: str, default: float) -> float:
        try:
            return float(options.get(key, default))
        except ValueError:
            raise errors.ConfigurationError(
                f"ssh config: bad {key} {options[key]!r} for {host}") from None

    identities = tuple(Path(p).expanduser() for p in identity_files)
    if not identities:
        identities = tuple(Path(p).expanduser() for p in options.get("identityfile", []))
    identities_only = bool(identities)
    if not identities and fallback_identity is not None and Path(fallback_identity).exists():
        identities = (Path(fallback_identity),)
    proxy_command = options.get("proxycommand")
    if proxy_command and proxy_command.lower() == "none":
        proxy_command = None
    proxy_jump = options.get("proxyjump")
    if proxy_jump and proxy_jump.lower() == "none":
        proxy_jump = None
    return Target(
        name=host,
        hostname=options.get("hostname", host),
        port=int(port or number("port", 22)),
        user=user or options.get("user") or default_user or getpass.getuser(),
        identity_files=identities,
        proxy_command=proxy_command,
        proxy_jump=proxy_jump,
        host_key_alias=host_key_alias or options.get("hostkeyalias"),
        connect_timeout=number("connecttimeout", DEFAULT_CONNECT_TIMEOUT),
        connection_attempts=max(1, int(number("connectionattempts", 1))),
        ssh_config=Path(ssh_config).expanduser().absolute() if ssh_config else None,
        identities_only=identities_only,
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
