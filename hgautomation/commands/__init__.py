"""One module per flow: each declares its command(s) (options, the frozen record they
make, examples, ``-T json`` keys; see :mod:`hgautomation.declare`) and the flow
``(ctx, opts)``, which never sees argparse.

A flow runs every local check (repository, revision, files) before it opens AWS or a
host. The option groups several commands share are declared here, once: AWS options
(-> :class:`~hgautomation.options.AWSOptions`), static hosts (->
:class:`~hgautomation.options.StaticHosts`), the Windows machine (-> ``MachineOptions``),
the revision, the Windows Pythons and architectures, ``-T``.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from hgautomation import options, platforms
from hgautomation.context import Context
from hgautomation.declare import Option, Part
from hgautomation.options import AWSOptions, StaticHosts, check_ingress

if TYPE_CHECKING:
    from hgautomation.aws.account import AWS
    from hgautomation.hosts import Host
    from hgautomation.windows.ec2 import MachineOptions


# -- AWS options -------------------------------------------------------------------

def _aws_record(values: Mapping[str, object]) -> AWSOptions:
    ingress = values.get("ingress_cidr")
    check_ingress(ingress, bool(values.get("allow_any_address")))
    return AWSOptions(owner=values.get("owner"), ingress_cidr=ingress,
                      spot=bool(values.get("spot")), profile=values.get("aws_profile"))


AWS = Part("aws", _aws_record, title="AWS options")


def aws_options(*, creates_instances: bool = True, ingress: bool = True) -> tuple[Option, ...]:
    """AWS options of every subcommand that touches our EC2 resources."""
    found = [Option("--owner", validator=options.owner, part=AWS,
                    settings=("aws.owner", "HGAUTOMATION_OWNER"),
                    help="whose personal EC2 resources to use: ASCII letters, digits and "
                         "dashes, at most 32, capitals taken as lower case; anything else "
                         "is refused, so that two owners never share a name (env "
                         "HGAUTOMATION_OWNER; default: the caller's AWS user or role "
                         "session name, each run of other characters made a dash)")]
    if ingress:
        found += [
            Option("--ingress-cidr", metavar="CIDR", validator=options.cidr, part=AWS,
                   settings=("aws.ingress-cidr", "HGAUTOMATION_INGRESS_CIDR"),
                   help="address range allowed to reach our instances; a bare address "
                        "means /32 (default: this machine's public address as /32, asked "
                        "from checkip.amazonaws.com)"),
            Option("--allow-any-address", kind="flag", part=AWS,
                   help="accept an --ingress-cidr of 0.0.0.0/0 or ::/0 (every address on "
                        "the internet)")]
    if creates_instances:
        found.append(Option("--spot", kind="flag", part=AWS,
                            help="use spot instances (on-demand when there is no capacity)"))
    return tuple(found)


def open_aws(ctx: Context, aws: AWSOptions, *, kinds: tuple[str, ...] = (),
             rdp: bool = False, with_owner: bool = True) -> AbstractContextManager[AWS]:
    """The one AWS set-up path (see :func:`hgautomation.aws.account.open_aws`)."""
    from hgautomation.aws import account

    keys_dir = ctx.state.keys if kinds else ctx.state.root / "keys"
    return account.open_aws(ctx.aws_region, aws, keys_dir, kinds=kinds, rdp=rdp,
                            with_owner=with_owner)


# -- static hosts ------------------------------------------------------------------

def _hosts_record(values: Mapping[str, object]) -> StaticHosts:
    return StaticHosts(specs=tuple(values.get("host") or ()),
                       accept_new_host_key=bool(values.get("accept_new_host_key")))


HOSTS = Part("hosts", _hosts_record)


def host_options() -> tuple[Option, ...]:
    """``--host`` (repeatable) and ``--accept-new-host-key``."""
    return (
        Option("--host", kind="append", metavar="[USER@]ADDRESS[:PORT]",
               validator=options.parse_host_spec, part=HOSTS,
               help="use this SSH host instead of EC2 (repeatable); the user defaults to "
                    "the ssh config's, else 'hg'"),
        Option("--accept-new-host-key", kind="flag", part=HOSTS,
               help="pin the host key of a --host seen for the first time (in the state "
                    "dir's known_hosts)"))


def static_hosts(ctx: Context, wanted: StaticHosts, *, provisioning: bool = False) -> list[Host]:
    """The hosts ``--host`` names, resolved as ssh resolves them (with the global
    ``--ssh-config`` and ``-i``). Provisioning connects as root with the user's own
    keys; otherwise the contract user, and the tool's key when the config names none."""
    from hgautomation import hosts

    return hosts.static_hosts(
        wanted.specs, known_hosts=ctx.state.known_hosts, ssh_config=ctx.ssh_config,
        identity=ctx.identity, accept_new_host_key=wanted.accept_new_host_key,
        default_user="root" if provisioning else hosts.DEFAULT_LINUX_USER,
        fallback_identity=None if provisioning else hosts.tool_key(ctx.state.root / "keys"))


# -- the Windows machine -----------------------------------------------------------

def _machine_record(values: Mapping[str, object]) -> MachineOptions:
    from hgautomation.windows.ec2 import MachineOptions

    return MachineOptions(base_image_name=values["base_image_name"],
                          instance_type=values["instance_type"])


MACHINE = Part("machine", _machine_record)


def base_image() -> Option:
    return Option("--base-image-name", default=platforms.DEFAULT_WINDOWS_BASE_IMAGE,
                  part=MACHINE, settings=("windows.base-image-name",),
                  help="Windows base AMI name pattern (default: %(default)s)")


def windows_instance_type(flow: str) -> Option:
    """``--instance-type`` of a Windows flow ("bootstrap", "build", "tests")."""
    return Option("--instance-type", default=platforms.WINDOWS_INSTANCE_TYPES[flow],
                  part=MACHINE, settings=(f"windows.{flow}-instance-type",),
                  help="EC2 instance type (default: %(default)s; Windows is billed per hour)")


def windows_pythons(*, many: bool) -> Option:
    return Option("--python-version", kind="list" if many else "value",
                  choices=platforms.WINDOWS_PYTHONS,
                  default=[platforms.DEFAULT_WINDOWS_PYTHON] if many
                  else platforms.DEFAULT_WINDOWS_PYTHON,
                  help="Python version(s) (default: %(default)s)")


def windows_arches(*, many: bool,
                   choices: tuple[str, ...] = platforms.WINDOWS_ARCHES) -> Option:
    return Option("--arch", kind="list" if many else "value", choices=choices,
                  default=list(choices) if many else "x64",
                  help="architecture(s) (default: %(default)s)")


# -- small shared options ----------------------------------------------------------

def revision(default: str | None = ".") -> Option:
    return Option("-r", "--revision", default=default,
                  help=f"Mercurial revision to use (default: {default or 'none'})")


def version() -> Option:
    return Option("--version", validator=options.version,
                  help="Mercurial version string for the packages, e.g. 7.2.1 (required)")


def template() -> Option:
    return Option("-T", "--template", choices=("text", "json"), default="text",
                  help="output format: 'json' prints one JSON document on stdout (keys in "
                       "docs/reference.rst), everything else on stderr (default: text)")
