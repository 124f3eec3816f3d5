"""EC2 housekeeping: set up account state, list, terminate and purge what is ours."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from hgautomation import console
from hgautomation.commands import aws_options, open_aws, template
from hgautomation.context import Context
from hgautomation.declare import Command, Option
from hgautomation.options import AWSOptions


@dataclass(frozen=True)
class SetupOptions:
    aws: AWSOptions
    rdp: bool


@dataclass(frozen=True)
class ListOptions:
    template: str
    aws: AWSOptions
    all_owners: bool


@dataclass(frozen=True)
class RemovalOptions:
    """terminate-ec2-instances and purge-ec2-resources (which alone has --images)."""

    template: str
    aws: AWSOptions
    all_owners: bool
    include_untagged: bool
    dry_run: bool
    yes: bool
    images: bool = False


def _selection(opts: RemovalOptions, owner: str):
    from hgautomation.aws.purge import Selection

    return Selection(owner=owner, all_owners=opts.all_owners, images=opts.images,
                     include_untagged=opts.include_untagged, dry_run=opts.dry_run)


def _removable(actions) -> list:
    return [a for a in actions if not a.action.startswith("skipped")]


def _confirm_wide(opts: RemovalOptions, command: str, plan) -> None:
    """--all-owners and --images reach other people's or shared resources: show what
    would go (``plan``: the dry-run actions) and ask; --yes skips the question, and
    without a terminal the command refuses (UsageError, exit 2) before any change."""
    from hgautomation import errors

    flags = [f for f, on in (("--all-owners", opts.all_owners),
                             ("--images", opts.images)) if on]
    if not flags or opts.dry_run or opts.yes or not _removable(plan):
        return
    con = console.get()
    what = f"{command} {' '.join(flags)}"
    if not con.can_ask():
        raise errors.UsageError(
            f"{what} removes other people's or shared resources; nothing removed",
            hint="review with --dry-run, then run on a terminal or add --yes")
    _print_actions(plan, "to be removed", dry_run=True, summary=False)
    count = len(_removable(plan))
    if not con.confirm(f"{what}: remove {console.plural(count, 'resource')}?"):
        raise errors.UsageError(f"{what}: not confirmed; nothing removed")


def resource_json(r) -> dict:
    """One resource in -T json output (keys: ``LIST.json_keys``)."""
    return {"type": r.kind, "id": r.id, "name": r.name, "owner": r.owner or None,
            "tagged": r.tagged, "created": r.created or None, "state": r.state or None,
            "expires": r.extra.get("expires") or None, "hourly_usd": r.hourly,
            "spot": bool(r.extra.get("spot"))}


def _actions_json(actions, dry_run: bool) -> dict:
    done = _removable(actions)
    return {"dry_run": dry_run, "removed": len(done), "skipped": len(actions) - len(done),
            "actions": [dict(resource_json(a.resource), action=a.action) for a in actions]}


def _print_actions(actions, what: str, dry_run: bool, summary: bool = True) -> None:
    from hgautomation.aws.purge import SUMMARY_HEADERS, by_action, summary_rows

    con = console.get()
    # One table per action keeps each within 100 columns.
    con.result(f"{what}{' (dry run: nothing changed)' if dry_run else ''}:")
    if not actions:
        con.result("(nothing)")
    for action, group in by_action(actions).items():
        con.table(SUMMARY_HEADERS, summary_rows(group), title=f"{action} ({len(group)}):")
    if not summary:
        return
    done = _removable(actions)
    skipped = len(actions) - len(done)
    verb = "would remove" if dry_run else "removed"
    con.result(f"{verb} {console.plural(len(done), 'resource')}"
               + (f", skipped {skipped}" if skipped else ""))


def setup_account(ctx: Context, opts: SetupOptions) -> int:
    """Create or repair the owner's key pair, security groups and the IAM profile."""
    from hgautomation.aws import tags

    with open_aws(ctx, opts.aws, kinds=("linux", "windows"), rdp=opts.rdp) as aws:
        session, owner, state = aws.session, aws.owner, aws.state
        con = console.get()
        rows = [["key pair", state.key_name, ""],
                ["key pair (Windows)", state.windows_key_name, ""]]
        rows += [["security group", tags.security_group_name(kind, owner), sg]
                 for kind, sg in state.security_group_ids.items()]
        profile = state.instance_profile_arn
        rows.append(["instance profile", tags.INSTANCE_PROFILE_NAME if profile else "(none)",
                     ""])
        con.table(["resource", "name", "id"], rows,
                  title=f"account state of owner {owner} in {session.region}:")
        # The long values on lines of their own: the table stays narrow.
        con.result(f"private key: {state.key_path}")
        con.result(f"private key (Windows): {state.windows_key_path}")
        if profile:
            con.result(f"instance profile: {profile}")
    return 0


def list_resources(ctx: Context, opts: ListOptions) -> int:
    """What we own: age, state and an estimated cost per hour of running instances."""
    from hgautomation.aws import inventory as inv

    con = console.get()
    with open_aws(ctx, opts.aws) as aws:
        session, owner = aws.session, aws.owner
        who = None if opts.all_owners else owner
        rows: list[inv.Resource] = []
        rows += inv.instances(session, who)
        rows += inv.untagged_instances(session)
        rows += inv.images(session) + inv.untagged_images(session)
        rows += inv.security_groups(session, who) + inv.untagged_security_groups(session)
        rows += inv.key_pairs(session, who) + inv.untagged_key_pairs(session)
        rows += inv.iam_entries(session)
        con.result(f"hgautomation resources in {session.region} "
                   f"({'all owners' if opts.all_owners else 'owner ' + owner}):")
        if not rows:
            con.result("(nothing)")
        # A table per type, without the columns that type leaves empty: each fits
        # 100 columns.
        sections: dict[str, list[inv.Resource]] = {}
        for r in rows:
            sections.setdefault(r.kind, []).append(r)
        for kind, group in sections.items():
            con.table(["id", "name", "owner", "age", "expires in", "state", "$/hour"],
                      [_listing_row(r) for r in group], drop_empty=True,
                      title=f"{console.plural(len(group), kind.replace('-', ' '))}:")
        if any(r.extra.get("spot") for r in rows):
            con.result("* spot instance: its on-demand price is shown; spot costs less")
        total = sum(r.hourly for r in rows if r.hourly is not None)
        running = sum(1 for r in rows if r.hourly is not None)
        con.result(f"{console.plural(running, 'running instance')}, estimated ${total:.2f}/hour")
        con.emit({"region": session.region, "owner": owner, "all_owners": opts.all_owners,
                  "resources": [resource_json(r) for r in rows],
                  "running_instances": running, "hourly_usd": round(total, 4)})
    return 0


def _listing_row(r) -> list[str]:
    cost = "" if r.hourly is None else f"{r.hourly:.3f}" + ("*" if r.extra.get("spot") else "")
    owner = r.owner or ("(untagged)" if not r.tagged else "shared")
    return [r.id, "" if r.name == r.id else r.name, owner, r.age(), r.expires(), r.state, cost]


def terminate(ctx: Context, opts: RemovalOptions) -> int:
    """Terminate our instances (the owner's, or every owner's with --all-owners)."""
    from hgautomation.aws import purge as purge_

    with open_aws(ctx, opts.aws) as aws:
        session, owner = aws.session, aws.owner
        sel = _selection(opts, owner)
        if sel.all_owners and not (sel.dry_run or opts.yes):
            _confirm_wide(opts, "terminate-ec2-instances", purge_.terminate_instances(
                session, dataclasses.replace(sel, dry_run=True)))
        actions = purge_.terminate_instances(session, sel)
        _print_actions(actions, "instances", sel.dry_run)
        console.get().emit(_actions_json(actions, sel.dry_run))
    return 0


def purge(ctx: Context, opts: RemovalOptions) -> int:
    """Remove our instances, images, security groups, key pairs and IAM entries."""
    from hgautomation.aws import purge as purge_

    with open_aws(ctx, opts.aws) as aws:
        session, owner = aws.session, aws.owner
        sel = _selection(opts, owner)
        if (sel.all_owners or sel.images) and not (sel.dry_run or opts.yes):
            _confirm_wide(opts, "purge-ec2-resources",
                          purge_.purge(session, dataclasses.replace(sel, dry_run=True)))
        actions = purge_.purge(session, sel)
        _print_actions(actions, "purge", sel.dry_run)
        console.get().emit(_actions_json(actions, sel.dry_run))
    return 0


_RESOURCE = "created expires hourly_usd id name owner spot state tagged type"
_REMOVAL = {"": "actions dry_run removed skipped", "actions[]": "action " + _RESOURCE}


def _removal_options() -> tuple[Option, ...]:
    return (
        Option("--all-owners", kind="flag",
               help="every owner's resources, not only yours (purge: also the shared IAM "
                    "role and profile)"),
        Option("--include-untagged", kind="flag",
               help="also remove hg-... resources without our tags (made by older tools)"),
        Option("--dry-run", kind="flag", help="only show what would be done"),
        Option("-y", "--yes", kind="flag",
               help="do not ask before removing other people's or shared resources "
                    "(--all-owners, --images); needed without a terminal"))


TERMINATE = Command(
    "terminate-ec2-instances",
    options=(template(), *aws_options(creates_instances=False, ingress=False),
             *_removal_options()),
    record=RemovalOptions,
    flow=terminate,
    examples=("{prog} terminate-ec2-instances",
              "{prog} terminate-ec2-instances --all-owners"),
    json_keys=_REMOVAL,
)
PURGE = Command(
    "purge-ec2-resources",
    options=(template(), *aws_options(creates_instances=False, ingress=False),
             *_removal_options(),
             Option("--images", kind="flag",
                    help="also deregister our (shared) dev images and their snapshots")),
    record=RemovalOptions,
    flow=purge,
    examples=("{prog} purge-ec2-resources --dry-run",
              "{prog} purge-ec2-resources --images"),
    json_keys=_REMOVAL,
)
LIST = Command(
    "list-ec2-resources",
    options=(template(), *aws_options(creates_instances=False, ingress=False),
             Option("--all-owners", kind="flag",
                    help="every owner's resources, not only yours")),
    record=ListOptions,
    flow=list_resources,
    examples=("{prog} list-ec2-resources", "{prog} list-ec2-resources --all-owners"),
    json_keys={"": "all_owners hourly_usd owner region resources running_instances",
               "resources[]": _RESOURCE},
)
SETUP = Command(
    "setup-ec2-account",
    options=(*aws_options(creates_instances=False),
             Option("--rdp", kind="flag",
                    help="also allow RDP (3389/tcp) to Windows instances from "
                         "--ingress-cidr")),
    record=SetupOptions,
    flow=setup_account,
    examples=("{prog} setup-ec2-account --ingress-cidr 203.0.113.7/32",),
)
