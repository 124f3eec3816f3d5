"""Typed options: the validators of declared options and the records commands hand down.

Every value a user types is checked once, here, when the command line is parsed
(each :class:`~hgautomation.declare.Option` names its validator; the CLI wraps it as
an argparse ``type=``): a bad value is a :class:`~hgautomation.errors.UsageError`
(exit 2) before anything starts. No flow sees argparse; flows take frozen records
built of the dataclasses of this module.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from hgautomation import errors

MAX_INSTANCES = 64  # --instances: more shards than this is a typo, not a plan

_OWNER_JUNK = re.compile(r"[^a-z0-9-]+")
MAX_OWNER = 32


# -- validators: str -> value, or UsageError -------------------------------------

def normalize_owner(raw: str) -> str:
    """Owner as it appears in resource names: lowercase ``[a-z0-9-]``, at most 32 characters."""
    owner = _OWNER_JUNK.sub("-", raw.strip().lower()).strip("-")
    return owner[:MAX_OWNER].strip("-")


OWNER_RULE = ("ASCII letters, digits and dashes, at most 32, not starting or ending with "
              "a dash; capitals are taken as lower case")
_OWNER = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")


def owner(text: str) -> str:
    """``--owner``: kept as typed (lower-cased), so that two owners never share resources.

    Anything normalization would change beyond case (``élève`` -> ``l-ve``, ``a.b`` and
    ``a_b`` -> ``a-b``, a 40-character name cut to 32) is refused, with the normal form
    as a hint: different owners must not end up with one name.
    """
    value = text.lower() if text.isascii() else text
    if _OWNER.fullmatch(value):
        return value
    shown = text if len(text) <= 60 else text[:57] + "..."
    normal = normalize_owner(text) if text.isascii() else ""  # élève: no good guess
    raise errors.UsageError(f"invalid owner {shown!r}: owners are {OWNER_RULE}",
                            hint=f"e.g. {normal!r}" if normal else None)


def cidr(text: str) -> str:
    """``--ingress-cidr``: a normalized network; a bare address means /32 (or /128).

    Host bits set (``10.1.2.3/8``) widen the range to its network: allowed, with a
    warning, since the result admits more than the address typed.
    """
    import ipaddress

    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise errors.UsageError(f"invalid address range {text!r} (e.g. 203.0.113.7/32)") from None
    if "/" in text and network.network_address != ipaddress.ip_address(
            text.strip().split("/", 1)[0]):
        from hgautomation import console

        console.get().warn(f"--ingress-cidr {text.strip()} admits all of {network}")
    return str(network)


def check_ingress(network: str | None, allow_any_address: bool) -> None:
    """Refuse an ingress open to every address unless the user said so explicitly."""
    if network in ("0.0.0.0/0", "::/0") and not allow_any_address:
        raise errors.UsageError(
            f"--ingress-cidr {network} lets every address on the internet reach the "
            "instances", hint="add --allow-any-address if that is really what you want")


def port(text: str) -> int:
    """A TCP port, 1-65535 (ASCII digits only)."""
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 65536:
        raise errors.UsageError(f"invalid port {text!r} (expected 1-65535)")
    return int(text)


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    """A whole number from *low* to *high*."""
    def parse(text: str) -> int:
        if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
            raise errors.UsageError(f"expected a whole number from {low} to {high}, got {text!r}")
        return int(text)

    return parse


def version(text: str) -> str:
    """A Mercurial version for package names: PEP 440 and already in its normal form.

    ``7.2.1``, ``7.2rc0`` and ``7.2.1+local`` are accepted; ``7.2.1\\n``, ``v7.2`` or
    ``7.2-rc0`` are not (they would name files no release process looks for).
    """
    from packaging.version import InvalidVersion, Version

    try:
        parsed = Version(text)
    except InvalidVersion:
        parsed = None
    if parsed is None or str(parsed) != text:
        raise errors.UsageError(f"invalid version {text!r} (e.g. 7.2.1 or 7.2rc0)")
    return text


def non_empty(text: str) -> str:
    if not text.strip():
        raise errors.UsageError("must not be empty")
    return text


def repository_url(text: str) -> str:
    """A repository a host clones from: http(s)://, ssh:// or an absolute path on it."""
    if any(c.isspace() or ord(c) < 32 for c in text) or not text:
        raise errors.UsageError(f"{text!r} is not a repository URL (no spaces or "
                                "control characters)")
    if not text.startswith(("https://", "http://", "ssh://", "/")):
        raise errors.UsageError(f"{text!r} is not a repository URL: use https://, http://, "
                                "ssh:// or an absolute path on the host")
    return text


@dataclass(frozen=True)
class HostSpec:
    """``[user@]address[:port]`` as typed (IPv6 as ``[addr]:port``)."""

    user: str | None
    address: str
    port: int | None

    def __str__(self) -> str:
        address = f"[{self.address}]" if ":" in self.address else self.address
        return ((f"{self.user}@" if self.user else "") + address
                + (f":{self.port}" if self.port else ""))


def parse_host_spec(spec: str) -> HostSpec:
    """Split ``[user@]address[:port]``; a UsageError names what is wrong."""
    user = None
    text = spec
    if "@" in text:
        user, _, text = text.rpartition("@")
        if not user:
            raise errors.UsageError(f"empty user name in host {spec!r}")
    port_text = None
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise errors.UsageError(f"bad host address {spec!r}")
        port_text = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host = text
    parsed_port = None
    if port_text is not None:
        if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
            raise errors.UsageError(f"bad port in host {spec!r}")
        parsed_port = int(port_text)
    if not host:
        raise errors.UsageError(f"empty address in host {spec!r}")
    problem = _host_name_problem(host)
    if problem:
        shown = host if len(host) <= 60 else host[:57] + "..."
        raise errors.UsageError(f"bad host name {shown!r}: {problem}")
    return HostSpec(user, host, parsed_port)


def _host_name_problem(host: str) -> str | None:
    """Why ``host`` can be neither an address nor a name to resolve (DNS rules), or None."""
    import ipaddress

    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    # A fully qualified name's final dot (the root) is not counted in DNS's 253.
    if len(host[:-1] if host.endswith(".") else host) > 253:
        return "longer than 253 characters"
    if any(c.isspace() or not c.isprintable() for c in host):
        return "contains spaces or control characters"
    labels = host.rstrip(".").split(".")
    if any(not label for label in labels):
        return "empty label"
    if any(len(label) > 63 for label in labels):
        return "a label longer than 63 characters"
    try:
        host.encode("idna")
    except UnicodeError:
        return "not a valid international domain name"
    return None


# -- records handed below the command layer -------------------------------------

@dataclass(frozen=True)
class AWSOptions:
    """What every AWS command shares: whose resources, reachable from where."""

    owner: str | None = None  # None: derived from the caller's identity
    profile: str | None = None  # the AWS profile (--profile); None: AWS_PROFILE, default
    ingress_cidr: str | None = None  # None: this machine's public address as /32
    spot: bool = False


@dataclass(frozen=True)
class StaticHosts:
    """``--host`` values and whether a first-seen host key may be pinned."""

    specs: tuple[HostSpec, ...] = ()
    accept_new_host_key: bool = False
