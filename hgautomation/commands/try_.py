"""``try``: send the draft ancestry of a revision set to the Try server; print the try's id
and page, and with ``--wait`` follow it (through DynamoDB, with the user's own
credentials) until every job has ended. ``--cancel ID`` and ``--rerun ID`` ask the same
function to cancel a try or to run its bundle again as a new try."""

from __future__ import annotations

from dataclasses import dataclass

from hgautomation import console, hgrepo, options, tryserver
from hgautomation.commands import open_aws, template
from hgautomation.context import Context
from hgautomation.declare import Command, Option
from hgautomation.errors import TryServerError, UsageError
from hgautomation.options import AWSOptions
from hgautomation.server import model


@dataclass(frozen=True)
class TryOptions:
    revision: str | None
    cancel: str | None
    rerun: str | None
    failed: bool
    function: str
    wait: bool
    template: str
    table: str


def check_combination(opts: TryOptions) -> None:
    """One action per run: a submission (-r), a cancel or a rerun; UsageError else."""
    if opts.cancel and opts.rerun:
        raise UsageError("--cancel and --rerun cannot be used together")
    named = "--cancel" if opts.cancel else "--rerun" if opts.rerun else None
    if named and opts.revision is not None:
        raise UsageError(f"-r/--revision cannot be used with {named} (it names a try "
                         "already sent)")
    if opts.failed and not opts.rerun:
        raise UsageError("--failed goes with --rerun ID")
    if opts.wait and opts.cancel:
        raise UsageError("--wait follows a new try: use it with -r or --rerun, not --cancel")


def main(ctx: Context, opts: TryOptions) -> int:
    check_combination(opts)
    if opts.cancel:
        return _send(ctx, opts, tryserver.control_payload("cancel", opts.cancel),
                     f"asking {opts.function} to cancel try {opts.cancel}",
                     f"the cancel of try {opts.cancel}", "the cancel request",
                     f"asked the Try server to cancel try {opts.cancel}")
    if opts.rerun:
        jobs = "its jobs that did not pass" if opts.failed else "all its jobs"
        return _send(ctx, opts, tryserver.control_payload("rerun", opts.rerun, opts.failed),
                     f"asking {opts.function} to rerun try {opts.rerun} ({jobs})",
                     f"the rerun of try {opts.rerun}", "the rerun request",
                     f"submitted a rerun of try {opts.rerun} to the Try server")
    out = console.get()
    repo = hgrepo.LocalRepo(ctx.hg_repo)
    selection = tryserver.select(repo, opts.revision or ".")
    cs = selection.head
    out.info(f"node:    {cs.node}")
    out.info(f"branch:  {cs.branch}")
    out.info(f"user:    {cs.user}")
    out.info(f"summary: {cs.summary}")
    bundle = tryserver.bundle(repo, selection)
    payload = tryserver.build_payload(bundle.data, cs)
    return _send(ctx, opts, payload,
                 f"sending {bundle.changesets} draft changeset"
                 f"{'' if bundle.changesets == 1 else 's'} in a "
                 f"{len(bundle.data):,}-byte bundle to {opts.function}",
                 "the submission", "the bundle",
                 f"submitted {cs.node[:12]} to the Try server")


def _send(ctx: Context, opts: TryOptions, payload: bytes, step: str, request: str,
          sent_what: str, done: str) -> int:
    """Invoke the function with ``payload``, show its reply, then print (-T json) or
    follow (--wait) the try it names. ``request`` names it in a refusal, ``sent_what``
    when its answer was lost; ``done`` is the line printed once the server took it."""
    out = console.get()
    with open_aws(ctx, AWSOptions(profile=ctx.aws_profile), with_owner=False) as aws:
        with out.step(f"{step} ({aws.session.region})"):
            result = tryserver.invoke(aws.session, opts.function, payload, sent_what)
        # Escaped and bounded: the reply is the server's text, not ours.
        out.remote_reply("remote: ", result.messages)
        if result.note:
            out.warn(result.note)
        if result.failed:
            kind = f" ({_clip(result.error_type, 100)})" if result.error_type else ""
            first = _clip(result.messages[0], 200) if result.messages else "no message"
            raise TryServerError(f"the Try server rejected {request}{kind}: {first}")
        out.result(done)
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


def try_id(text: str) -> str:
    """A try's id, as the server prints it (``20261207T191300Z-1a2b3c4d``)."""
    if not model.TRY_ID_RE.match(text):
        raise UsageError(f"invalid try id {text!r} (a try id looks like "
                         "20261207T191300Z-1a2b3c4d)")
    return text


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
        Option("-r", "--revision",
               help="Mercurial revision to use (default: .; not with --cancel or --rerun)"),
        Option("--cancel", metavar="ID", validator=try_id,
               help="cancel try ID instead: its queued jobs end at once, its running ones "
                    "within a lease renewal (not with -r or --rerun)"),
        Option("--rerun", metavar="ID", validator=try_id,
               help="send try ID's bundle again as a new try, with all its jobs (not with "
                    "-r or --cancel)"),
        Option("--failed", kind="flag",
               help="with --rerun: only the jobs that did not pass"),
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
    examples=("{prog} try -r .", "{prog} try -r 'draft() and ::.'",
              "{prog} try --cancel 20261207T191300Z-1a2b3c4d",
              "{prog} try --rerun 20261207T191300Z-1a2b3c4d --failed --wait"),
    json_keys={"": "branch created description id jobs node rerun_of state url user",
               "jobs[]": "attempt duration failed failures flaky log_url name passed "
                         "preexisting skipped state"},
)

