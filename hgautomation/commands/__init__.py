"""One module per flow: the only code that sees an argparse Namespace.

Each handler ``main(ctx, args) -> int`` turns its Namespace into the typed records
of :mod:`hgautomation.options` (and the platform modules' own option records), runs
every local check (repository, revision, files), and only then opens AWS or a host.
"""

from __future__ import annotations

import argparse
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from hgautomation.context import Context
from hgautomation.options import AWSOptions, StaticHosts, check_ingress

if TYPE_CHECKING:
    from hgautomation.aws.account import AWS
    from hgautomation.windows.ec2 import MachineOptions


def aws_options(args: argparse.Namespace) -> AWSOptions:
    ingress = getattr(args, "ingress_cidr", None)
    check_ingress(ingress, getattr(args, "allow_any_address", False))
    return AWSOptions(owner=getattr(args, "owner", None), ingress_cidr=ingress,
                      spot=getattr(args, "spot", False),
                      profile=getattr(args, "aws_profile", None))


def static_hosts(args: argparse.Namespace) -> StaticHosts:
    return StaticHosts(specs=tuple(args.host or ()),
                       accept_new_host_key=args.accept_new_host_key)


def windows_machine(args: argparse.Namespace) -> MachineOptions:
    """The Windows machine of a build or test command: base image, instance type."""
    from hgautomation.windows.ec2 import MachineOptions

    return MachineOptions(base_image_name=args.base_image_name,
                          instance_type=args.instance_type)


def open_aws(ctx: Context, args: argparse.Namespace, *, kinds: tuple[str, ...] = (),
             rdp: bool = False, with_owner: bool = True) -> AbstractContextManager[AWS]:
    """The one AWS set-up path (see :func:`hgautomation.aws.account.open_aws`)."""
    from hgautomation.aws import account

    keys_dir = ctx.state.keys if kinds else ctx.state.root / "keys"
    return account.open_aws(ctx.aws_region, aws_options(args), keys_dir, kinds=kinds, rdp=rdp,
                            with_owner=with_owner)
