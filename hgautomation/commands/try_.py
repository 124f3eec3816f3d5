"""`try`: send the draft ancestry of a revision set to the Try server."""

from __future__ import annotations

from dataclasses import dataclass

from hgautomation import console, hgrepo, options, tryserver
from hgautomation.commands import open_aws, revision
from hgautomation.context import Context
from hgautomation.declare import Command, Option
from hgautomation.errors import TryServerError
from hgautomation.options import AWSOptions


@dataclass(frozen=True)
class TryOptions:
    revision: str
    function: str


def main(ctx: Context, opts: TryOptions) -> int:
    out = console.get()
    repo = hgrepo.LocalRepo(ctx.hg_repo)
    selection = tryserver.select(repo, opts.revision)
    cs = selection.head
    out.info(f"node:    {cs.node}")
    out.info(f"branch:  {cs.branch}")
    out.info(f"user:    {cs.user}")
    out.info(f"summary: {cs.summary}")
    bundle = tryserver.bundle(repo, selection)
    payload = tryserver.build_payload(bundle.data, cs)
    with open_aws(ctx, AWSOptions(profile=ctx.aws_profile), with_owner=False) as aws, \
            out.step(f"sending {bundle.changesets} draft changeset"
                     f"{'' if bundle.changesets == 1 else 's'} in a "
                     f"{len(bundle.data):,}-byte bundle to {opts.function} "
                     f"({aws.session.region})"):
        result = tryserver.invoke(aws.session, opts.function, payload)
    # Escaped and bounded: the reply is the server's text, not ours.
    out.remote_reply("remote: ", result.messages)
    if result.note:
        out.warn(result.note)
    if result.failed:
        kind = f" ({_clip(result.error_type, 100)})" if result.error_type else ""
        first = _clip(result.messages[0], 200) if result.messages else "no message"
        raise TryServerError(f"the Try server rejected the submission{kind}: {first}")
    out.result(f"submitted {cs.node[:12]} to the Try server")
    return 0


def _clip(text: str, width: int) -> str:
    """Server text for our own error line: escaped, at most `width` characters of it."""
    return console.printable(text[:width]) + ("…" if len(text) > width else "")


COMMAND = Command(
    "try",
    options=(
        revision(),
        Option("--function", default="ci-try-server-upload", validator=options.non_empty,
               help="name of the Try server's Lambda function (default: %(default)s)"),
    ),
    record=TryOptions,
    flow=main,
    examples=("{prog} try -r .", "{prog} try -r 'draft() and ::.'"),
)
