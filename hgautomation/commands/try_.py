"""`try`: send the draft ancestry of a revision set to the Try server."""

from __future__ import annotations

import argparse

from hgautomation import console, hgrepo, tryserver
from hgautomation.commands import open_aws
from hgautomation.context import Context
from hgautomation.errors import TryServerError


def main(ctx: Context, args: argparse.Namespace) -> int:
    out = console.get()
    repo = hgrepo.LocalRepo(ctx.hg_repo)
    selection = tryserver.select(repo, args.revision)
    cs = selection.head
    out.info(f"node:    {cs.node}")
    out.info(f"branch:  {cs.branch}")
    out.info(f"user:    {cs.user}")
    out.info(f"summary: {cs.summary}")
    bundle = tryserver.bundle(repo, selection)
    payload = tryserver.build_payload(bundle.data, cs)
    with open_aws(ctx, args, with_owner=False) as aws, \
            out.step(f"sending {bundle.changesets} draft changeset"
                     f"{'' if bundle.changesets == 1 else 's'} in a "
                     f"{len(bundle.data):,}-byte bundle to {args.function} "
                     f"({aws.session.region})"):
        result = tryserver.invoke(aws.session, args.function, payload)
    for line in result.messages:
        out.remote_line("remote: ", line)
    if result.failed:
        kind = f" ({result.error_type})" if result.error_type else ""
        first = result.messages[0] if result.messages else "no message"
        raise TryServerError(f"the Try server rejected the submission{kind}: {first}")
    out.result(f"submitted {cs.node[:12]} to the Try server")
    return 0
