"""``try``: send the draft ancestry of a revision set to the Try server; print the try's id
and page, and with ``--wait`` follow it (through DynamoDB, with the user's own
credentials) until every job has ended."""

from __future__ import annotations

from dataclasses import dataclass

from hgautomation import console, hgrepo, options, tryserver
from hgautomation.commands import open_aws, revision, template
from hgautomation.context import Context
from hgautomation.declare import Command, Option
from hgautomation.errors import TryServerError, UsageError
from hgautomation.options import AWSOptions
from hgautomation.server import model


@dataclass(frozen=True)
class TryOptions:
    revision: str
    function: str
    wait: bool
    template: str
    table: str


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
    with open_aws(ctx, AWSOptions(profile=ctx.aws_profile), with_owner=False) as aws:
        with out.step(f"sending {bundle.changesets} draft changeset"
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
        sent = tryserver.submitted(result.messages)
        if sent.try_id:
            out.result(f"try: {sent.try_id}")
        if sent.url:
            out.result(f"page: {sent.url}")
        if not (opts.wait or opts.template == "json"):
            return 0
        if sent.try_id is None:
            raise TryServerError("the Try server's reply names no try id: cannot "
                                 + ("follow it (--wait)" if opts.wait else "read it (-T json)"))
        table = tryserver.open_table(aws.session, opts.table)
        if not opts.wait:
            out.emit(tryserver.read_try(table, sent.try_id))
            return 0

        def changed(job: dict) -> None:
            attempt = f" (attempt {job['attempt']})" if job["attempt"] else ""
            out.info(f"{job['name']}: {job['state']}{attempt}")

        document = tryserver.follow(table, sent.try_id, changed)
    out.emit(document)
    for job in document["jobs"]:
        counts = (f": {job['passed']} passed, {len(job['failed'])} failed, "
                  f"{job['skipped']} skipped" if job["passed"] is not None else "")
        out.result(f"{job['name']}: {job['state']}{counts}")
        for name in job["failed"]:
            out.result(f"  failed: {name}")
    tryserver.check_outcome(document)
    return 0


def table_name(text: str) -> str:
    """A DynamoDB table name (3-255 of letters, digits, ``_.-``)."""
    if not (3 <= len(text) <= 255) or not all(c.isascii() and (c.isalnum() or c in "_.-")
                                             for c in text):
        raise UsageError(f"invalid DynamoDB table name {text!r}")
    return text


def _clip(text: str, width: int) -> str:
    """Server text for our own error line: escaped, at most ``width`` characters of it."""
    return console.printable(text[:width]) + ("…" if len(text) > width else "")


COMMAND = Command(
    "try",
    options=(
        revision(),
        Option("--function", default="ci-try-server-upload", validator=options.non_empty,
               help="name of the Try server's Lambda function (default: %(default)s)"),
        Option("--wait", kind="flag",
               help="follow the try until every job has ended (state changes on stderr); "
                    "exit 0 when all passed, 1 when tests failed, 16 for a job in error, "
                    "cancelled or timed out"),
        template(),
        Option("--table", default=model.TABLE, validator=table_name,
               help="the Try server's DynamoDB table, read with your credentials for "
                    "--wait and -T json (default: %(default)s)"),
    ),
    record=TryOptions,
    flow=main,
    examples=("{prog} try -r .", "{prog} try -r 'draft() and ::.'"),
    json_keys={"": "branch created description id jobs node state url user",
               "jobs[]": "attempt duration failed failures flaky log_url name passed "
                         "preexisting skipped state"},
)

