"""Terminate and purge what is ours, in dependency order, batched where the API allows.

Order: instances -> images + snapshots -> security groups -> key pairs ->
instance profiles -> roles. Without ``all_owners`` only the owner's personal
resources are touched; images only with ``images``; IAM (shared) only with
``all_owners``; untagged ``hg-...`` resources only with ``include_untagged``.
"""

from __future__ import annotations

from dataclasses import dataclass

from hgautomation import console
from hgautomation.aws import iam as iam_
from hgautomation.aws import images as images_
from hgautomation.aws import instances as inst
from hgautomation.aws import inventory as inv
from hgautomation.aws.session import AWSSession, translate_errors

UNTAGGED_SKIP = "skipped: untagged (--include-untagged)"


@dataclass(frozen=True)
class Selection:
    owner: str
    all_owners: bool = False
    images: bool = False
    include_untagged: bool = False
    dry_run: bool = False

    @property
    def owner_filter(self) -> str | None:
        return None if self.all_owners else self.owner


@dataclass(frozen=True)
class Action:
    resource: inv.Resource
    action: str


def _split(sel: Selection, ours: list[inv.Resource], untagged: list[inv.Resource]):
    chosen = list(ours) + (list(untagged) if sel.include_untagged else [])
    skipped = [] if sel.include_untagged else list(untagged)
    return chosen, skipped


def _verb(sel: Selection, done: str) -> str:
    return f"would {'terminate' if done == 'terminated' else 'delete'}" if sel.dry_run else done


def terminate_instances(session: AWSSession, sel: Selection, *,
                        wait_timeout: float = 0.0) -> list[Action]:
    """Terminate the selected instances in one batched call; optionally wait until gone."""
    chosen, skipped = _split(sel, inv.instances(session, sel.owner_filter),
                             inv.untagged_instances(session))
    actions = [Action(r, UNTAGGED_SKIP) for r in skipped]
    if chosen and not sel.dry_run:
        ids = [r.id for r in chosen]
        states = inst.terminate(session, ids)
        # Security groups can only go once their instances are gone.
        if wait_timeout and any(states.get(i) != "terminated" for i in ids):
            inst.wait_for_state(session, ids, {"terminated"}, wait_timeout, interval=5.0,
                                what="instances")
    return [Action(r, _verb(sel, "terminated")) for r in chosen] + actions


def purge(session: AWSSession, sel: Selection, *, wait_timeout: float = 600.0) -> list[Action]:
    """Remove the selected resources; returns what was (or would be) done to each."""
    con = console.get()
    ec2 = session.client("ec2")
    actions: list[Action] = []

    with con.step("instances"):
        actions += terminate_instances(session, sel, wait_timeout=wait_timeout)

    with con.step("images"):
        untagged = inv.untagged_images(session)
        if sel.images:
            chosen, skipped = _split(sel, inv.images(session), untagged)
            if chosen and not sel.dry_run:
                by_id = {i.id: i for i in images_.find_ours(session)}
                images_.deregister(session, [by_id.get(r.id) or images_.Image(
                    r.id, r.name, r.created, snapshot_ids=tuple(r.extra["snapshots"]))
                    for r in chosen])
            actions += [Action(r, _verb(sel, "deleted")) for r in chosen]
            actions += [Action(r, UNTAGGED_SKIP) for r in skipped]
        else:
            actions += [Action(r, "skipped: untagged (--images --include-untagged)")
                        for r in untagged]

    # Personal resources deleted one by one (EC2 has no batch delete for them).
    personal = (
        ("security group", inv.security_groups, inv.untagged_security_groups,
         lambda r: ec2.delete_security_group(GroupId=r.id)),
        ("key pair", inv.key_pairs, inv.untagged_key_pairs,
         lambda r: ec2.delete_key_pair(KeyName=r.name)),
    )
    for kind, ours, untagged_of, delete in personal:
        with con.step(f"{kind}s"):
            chosen, skipped = _split(sel, ours(session, sel.owner_filter), untagged_of(session))
            for r in chosen:
                if not sel.dry_run:
                    with translate_errors(f"delete {kind} {r.name}"):
                        delete(r)
                actions.append(Action(r, _verb(sel, "deleted")))
            actions += [Action(r, UNTAGGED_SKIP) for r in skipped]

    if sel.all_owners:
        # IAM is shared by every owner: only a whole-account purge removes it.
        with con.step("IAM"):
            rows = inv.iam_entries(session)
            for kind in ("instance-profile", "role"):
                for r in rows:
                    if r.kind != kind:
                        continue
                    if not r.tagged and not sel.include_untagged:
                        actions.append(Action(r, UNTAGGED_SKIP))
                        continue
                    if not sel.dry_run:
                        if kind == "role":
                            iam_.delete_role(session, r.name)
                        else:
                            iam_.delete_instance_profile(session, r.extra["profile"])
                    actions.append(Action(r, _verb(sel, "deleted")))
    return actions


def by_action(actions: list[Action]) -> dict[str, list[Action]]:
    """The actions grouped by what is done to them, in first-seen order."""
    groups: dict[str, list[Action]] = {}
    for a in actions:
        groups.setdefault(a.action, []).append(a)
    return groups


def summary_rows(actions: list[Action]) -> list[list[str]]:
    """Rows under SUMMARY_HEADERS for actions of one kind (a table per action)."""
    return [[a.resource.kind, a.resource.id, a.resource.name,
             a.resource.owner or ("-" if a.resource.tagged else "(untagged)")]
            for a in actions]


SUMMARY_HEADERS = ["type", "id", "name", "owner"]
