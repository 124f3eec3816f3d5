"""`bootstrap-windows-dev`: build (or reuse) the Windows development image."""

from __future__ import annotations

from hgautomation import console


def main(ctx, args) -> int:
    from hgautomation import hgrepo
    from hgautomation.windows import ec2

    repo = hgrepo.LocalRepo(ctx.hg_repo)
    # The image is provisioned by the checkout's own install-windows-dependencies.ps1.
    node = hgrepo.resolve_revision(repo, args.revision)
    aws = ec2.open_aws(ctx, args)
    image = ec2.ensure_image(ctx, aws.session, aws.account, repo=repo, node=node,
                             base_image_name=args.base_image_name,
                             ssh_config=ctx.ssh_config,
                             instance_type=args.instance_type, spot=args.spot)
    console.get().result(f"{image.id} {image.name}")
    return 0
