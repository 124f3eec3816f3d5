"""``deploy-try-server`` and ``destroy-try-server``: the Try server in your AWS account."""

from __future__ import annotations

from dataclasses import dataclass

from hgautomation import console, errors, options
from hgautomation.commands import open_aws, template
from hgautomation.context import Context
from hgautomation.declare import Command, Option
from hgautomation.options import AWSOptions
from hgautomation.server import model


@dataclass(frozen=True)
class DeployOptions:
    template: str
    job: tuple[str, ...] | None
    retention_days: int
    max_tries_per_hour: int
    dry_run: bool


@dataclass(frozen=True)
class DestroyOptions:
    template: str
    dry_run: bool
    yes: bool


def job_name(text: str) -> str:
    """``--job``: what names a queue and an environment variable."""
    if not model.JOB_NAME_RE.match(text):
        raise errors.UsageError(f"invalid job name {text!r} (1-32 lower-case letters, "
                                "digits and dashes, not starting with a dash)")
    return text


def _print_changes(changes, dry_run: bool, what: str) -> None:
    con = console.get()
    if not changes:
        con.result(f"{what}: nothing to do")
        return
    rows = [[c.resource, con.clip(c.name, 40), c.action, con.clip(c.detail, 30)]
            for c in changes]
    title = f"{what}{' (dry run: nothing changed)' if dry_run else ''}:"
    con.table(["resource", "name", "action", "detail"], rows, title=title)


def deploy(ctx: Context, opts: DeployOptions) -> int:
    """Create or repair the Try server (bucket, queues, table, topic, functions, IAM)."""
    from hgautomation import trydeploy

    jobs = tuple(dict.fromkeys(opts.job or model.DEFAULT_JOBS))  # order kept, once each
    con = console.get()
    with open_aws(ctx, AWSOptions(profile=ctx.aws_profile), with_owner=False) as aws, \
            con.step(f"reconcile the Try server in {aws.session.region} "
                     f"(jobs: {', '.join(jobs)})"):
        outcome = trydeploy.deploy(aws.session, jobs, dry_run=opts.dry_run,
                                   retention_days=opts.retention_days,
                                   max_tries_per_hour=opts.max_tries_per_hour)
    verb = "would make" if opts.dry_run else "made"
    _print_changes(outcome.changes, opts.dry_run, "Try server changes")
    if outcome.changes:
        con.result(f"{verb} {console.plural(len(outcome.changes), 'change')}")
    else:
        con.result("the Try server is up to date")
    # Long values on lines of their own: no table gets wider than 100 columns.
    con.result(f"upload function: {model.UPLOAD_FUNCTION} (the default of 'try')")
    con.result(f"web page: {outcome.web_url or '(created on deploy)'}")
    for job, url in outcome.queues.items():
        con.result(f"queue of job {job}: {url or '(created on deploy)'}")
    con.result(f"submitters: add IAM users to the group {model.SUBMITTERS_GROUP}")
    con.result(f"agents: attach {outcome.target.agent_policy_arn}")
    con.result(f"when a try ends: a message to {outcome.target.topic_arn}")
    con.result(f"tries kept {outcome.target.retention_days} days, at most "
               f"{outcome.target.max_tries_per_hour} an hour per user")
    con.emit(outcome.json())
    return 0


def destroy(ctx: Context, opts: DestroyOptions) -> int:
    """Remove the Try server: what deploy made (our tag, our names), nothing else."""
    from hgautomation import trydeploy

    con = console.get()
    asking = not (opts.dry_run or opts.yes)
    if asking and not con.can_ask():  # before any AWS call
        raise errors.UsageError(
            "destroy-try-server removes the Try server and every try it holds; "
            "nothing removed", hint="review with --dry-run, then run on a terminal or "
                                    "add --yes")
    with open_aws(ctx, AWSOptions(profile=ctx.aws_profile), with_owner=False) as aws:
        region = aws.session.region
        if asking:
            plan = trydeploy.destroy(aws.session, dry_run=True)
            if plan:
                _print_changes(plan, True, f"to be removed in {region}")
                question = (f"destroy-try-server: remove "
                            f"{console.plural(len(plan), 'resource')} in {region}?")
                if not con.confirm(question):
                    raise errors.UsageError("destroy-try-server: not confirmed; "
                                            "nothing removed")
        changes = trydeploy.destroy(aws.session, dry_run=opts.dry_run)
    _print_changes(changes, opts.dry_run, f"Try server resources in {region}")
    verb = "would remove" if opts.dry_run else "removed"
    con.result(f"{verb} {console.plural(len(changes), 'resource')}")
    con.emit({"dry_run": opts.dry_run, "region": region,
              "changes": [c.json() for c in changes]})
    return 0


_CHANGE = "action detail name resource"

DEPLOY = Command(
    "deploy-try-server",
    options=(
        template(),
        Option("--job", kind="append", metavar="NAME", validator=job_name,
               help="a job every try runs, with a queue of its own (repeatable; "
                    "default: linux)"),
        Option("--retention-days", validator=options.bounded_int(
                   *model.RETENTION_DAYS_RANGE), default=model.DEFAULT_RETENTION_DAYS,
               metavar="N", help="days a try is kept: its bundle, logs and reports (S3 "
                                 "lifecycle) and its records (TTL) (default: %(default)s)"),
        Option("--max-tries-per-hour", validator=options.bounded_int(
                   *model.MAX_TRIES_PER_HOUR_RANGE),
               default=model.DEFAULT_MAX_TRIES_PER_HOUR, metavar="N",
               help="tries one user may send within an hour; the next is refused "
                    "(default: %(default)s)"),
        Option("--dry-run", kind="flag", help="only show what would change"),
    ),
    record=DeployOptions,
    flow=deploy,
    examples=("{prog} deploy-try-server", "{prog} deploy-try-server --dry-run",
              "{prog} deploy-try-server --job linux --job windows -T json",
              "{prog} deploy-try-server --retention-days 14 --max-tries-per-hour 10"),
    json_keys={"": "account agent_policy bucket changes dry_run jobs queues region "
                   "submitters_group table topic upload_function web_function web_url",
               "changes[]": _CHANGE},
)
DESTROY = Command(
    "destroy-try-server",
    options=(
        template(),
        Option("--dry-run", kind="flag", help="only show what would be removed"),
        Option("-y", "--yes", kind="flag",
               help="do not ask before removing; needed without a terminal"),
    ),
    record=DestroyOptions,
    flow=destroy,
    examples=("{prog} destroy-try-server --dry-run", "{prog} destroy-try-server"),
    json_keys={"": "changes dry_run region", "changes[]": _CHANGE},
)
