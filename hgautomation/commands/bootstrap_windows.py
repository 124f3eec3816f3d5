"""``bootstrap-windows-dev``: build (or reuse) the Windows development image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hgautomation import console, hgrepo
from hgautomation.commands import aws_options, base_image, open_aws, revision, windows_instance_type
from hgautomation.context import Context
from hgautomation.declare import Command, Option
from hgautomation.options import AWSOptions

if TYPE_CHECKING:
    from hgautomation.windows.ec2 import MachineOptions


@dataclass(frozen=True)
class BootstrapWindowsOptions:
    machine: MachineOptions
    revision: str
    refresh_image: bool
    aws: AWSOptions


def main(ctx: Context, opts: BootstrapWindowsOptions) -> int:
    from hgautomation.windows import ec2

    repo = hgrepo.LocalRepo(ctx.hg_repo)
    # The image is provisioned by the checkout's own install-windows-dependencies.ps1:
    # it must exist at that revision before anything in the account changes.
    node = hgrepo.resolve_revision(repo, opts.revision)
    deps = ec2.read_deps_files(repo, node)
    with open_aws(ctx, opts.aws, kinds=("windows",)) as aws:
        image = ec2.ensure_image(ctx, aws, deps, base_image_name=opts.machine.base_image_name,
                                 instance_type=opts.machine.instance_type,
                                 refresh=opts.refresh_image)
    console.get().result(f"{image.id} {image.name}")
    return 0


COMMAND = Command(
    "bootstrap-windows-dev",
    # The image is provisioned by this revision's contrib/install-windows-dependencies.ps1.
    options=(base_image(), revision(), windows_instance_type("bootstrap"),
             Option("--refresh-image", kind="flag",
                    help="build the image even if up to date (e.g. on a newer base image)"),
             *aws_options()),
    record=BootstrapWindowsOptions,
    flow=main,
    examples=("{prog} bootstrap-windows-dev -r stable",
              "{prog} bootstrap-windows-dev -r stable --refresh-image"),
)
