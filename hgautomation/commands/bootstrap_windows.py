"""`bootstrap-windows-dev`: build (or reuse) the Windows development image."""

from __future__ import annotations

import argparse

from hgautomation import console, hgrepo
from hgautomation.commands import open_aws
from hgautomation.context import Context


def main(ctx: Context, args: argparse.Namespace) -> int:
    from hgautomation.windows import ec2

    repo = hgrepo.LocalRepo(ctx.hg_repo)
    # The image is provisioned by the checkout's own install-windows-dependencies.ps1:
    # it must exist at that revision before anything in the account changes.
    node = hgrepo.resolve_revision(repo, args.revision)
    deps = ec2.read_deps_files(repo, node)
    with open_aws(ctx, args, kinds=("windows",)) as aws:
        image = ec2.ensure_image(ctx, aws, deps, base_image_name=args.base_image_name,
                                 instance_type=args.instance_type, refresh=args.refresh_image)
    console.get().result(f"{image.id} {image.name}")
    return 0
