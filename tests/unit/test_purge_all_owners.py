"""purge with --all-owners and --images: the IAM side and the images, with and without
--include-untagged, dry or not, every call checked (inventory and AWS calls stood in for).

Breaking it looks like: untagged IAM entries deleted without --include-untagged, a role
deleted before its instance profile, an image deregistered in a dry run, or a step of the
console named otherwise.
"""

from __future__ import annotations

from hgautomation.aws import iam as iam_
from hgautomation.aws import images as images_
from hgautomation.aws import instances as inst
from hgautomation.aws import inventory as inv
from hgautomation.aws import purge

R = inv.Resource


class EC2:
    def __init__(self, log):
        self.log = log

    def delete_security_group(self, **kwargs):
        self.log.append(("delete_security_group", kwargs))

    def delete_key_pair(self, **kwargs):
        self.log.append(("delete_key_pair", kwargs))


class Session:
    def __init__(self):
        self.log: list = []

    def client(self, name):
        assert name == "ec2"
        return EC2(self.log)


IMG = R("image", "ami-1", "hg-linux-dev-debian12", "", extra={"snapshots": ["snap-1"]})
OLD_IMG = R("image", "ami-9", "hg-old", "", tagged=False, extra={"snapshots": ["snap-8", "snap-9"]})
PROFILE = R("instance-profile", "hg-ephemeral-ec2-1", "hg-ephemeral-ec2-1", "",
            extra={"profile": {"InstanceProfileName": "hg-ephemeral-ec2-1"}})
OLD_PROFILE = R("instance-profile", "hg-p", "hg-p", "", tagged=False,
                extra={"profile": {"InstanceProfileName": "hg-p"}})
ROLE = R("role", "hg-ephemeral-ec2-role-1", "hg-ephemeral-ec2-role-1", "")
OLD_ROLE = R("role", "hg-r", "hg-r", "", tagged=False)
INSTANCE = R("instance", "i-1", "hg-a", "alice")
OLD_INSTANCE = R("instance", "i-9", "hg-b", "", tagged=False)
GROUP = R("security-group", "sg-1", "hg-linux-dev-1-alice", "alice")
OLD_GROUP = R("security-group", "sg-9", "hg-linux-dev-1", "", tagged=False)
KEY = R("key-pair", "key-1", "hg-automation-alice", "alice")
OLD_KEY = R("key-pair", "key-9", "hg-automation", "", tagged=False)


def _world(monkeypatch, session):
    """Stand-ins that refuse any session but ``session``."""
    log = session.log
    owners = []

    def the(s):
        assert s is session
        return s
    monkeypatch.setattr(inv, "instances", lambda s, o: (the(s) and owners.append(o)) or [INSTANCE])
    monkeypatch.setattr(inv, "untagged_instances", lambda s: [OLD_INSTANCE])
    monkeypatch.setattr(inv, "images", lambda s: the(s) and [IMG])
    monkeypatch.setattr(inv, "untagged_images", lambda s: [OLD_IMG])
    monkeypatch.setattr(inv, "security_groups", lambda s, o: owners.append(o) or [GROUP])
    monkeypatch.setattr(inv, "untagged_security_groups", lambda s: [OLD_GROUP])
    monkeypatch.setattr(inv, "key_pairs", lambda s, o: owners.append(o) or [KEY])
    monkeypatch.setattr(inv, "untagged_key_pairs", lambda s: [OLD_KEY])
    # Roles listed first: the purge must still take the instance profiles first.
    monkeypatch.setattr(inv, "iam_entries",
                        lambda s: the(s) and [OLD_ROLE, ROLE, OLD_PROFILE, PROFILE])
    known = images_.Image("ami-1", "hg-linux-dev-debian12", "2025", snapshot_ids=("snap-1",))
    monkeypatch.setattr(images_, "find_ours", lambda s: the(s) and [known])
    monkeypatch.setattr(images_, "deregister",
                        lambda s, images: the(s) and log.append(("deregister", list(images))))
    monkeypatch.setattr(inst, "terminate", lambda s, ids: log.append(("terminate", ids))
                        or {i: "terminated" for i in ids})
    monkeypatch.setattr(iam_, "delete_role",
                        lambda s, name: the(s) and log.append(("delete_role", name)))
    monkeypatch.setattr(iam_, "delete_instance_profile",
                        lambda s, p: the(s) and log.append(("delete_instance_profile", p)))
    return owners, known


def test_all_owners_without_include_untagged_leaves_untagged_iam(monkeypatch, captured):
    session = Session()
    owners, known = _world(monkeypatch, session)
    sel = purge.Selection(owner="alice", all_owners=True, images=True)
    actions = purge.purge(session, sel, wait_timeout=0)
    assert owners == [None, None, None]  # every owner's
    assert [(a.resource.id, a.action) for a in actions] == [
        ("i-1", "terminated"), ("i-9", purge.UNTAGGED_SKIP),
        ("ami-1", "deleted"), ("ami-9", purge.UNTAGGED_SKIP),
        ("sg-1", "deleted"), ("sg-9", purge.UNTAGGED_SKIP),
        ("key-1", "deleted"), ("key-9", purge.UNTAGGED_SKIP),
        ("hg-p", purge.UNTAGGED_SKIP), ("hg-ephemeral-ec2-1", "deleted"),
        ("hg-r", purge.UNTAGGED_SKIP), ("hg-ephemeral-ec2-role-1", "deleted"),
    ]
    assert session.log == [
        ("terminate", ["i-1"]),
        ("deregister", [known]),
        ("delete_security_group", {"GroupId": "sg-1"}),
        ("delete_key_pair", {"KeyName": "hg-automation-alice"}),
        ("delete_instance_profile", {"InstanceProfileName": "hg-ephemeral-ec2-1"}),
        ("delete_role", "hg-ephemeral-ec2-role-1"),
    ]
    shown = captured.err_text + captured.out_text
    steps = [line[4:] for line in shown.splitlines() if line.startswith("==> ")]
    assert steps == ["instances", "images", "security groups", "key pairs", "IAM"]


def test_all_owners_with_include_untagged_takes_everything(monkeypatch, captured):
    session = Session()
    _, known = _world(monkeypatch, session)
    sel = purge.Selection(owner="alice", all_owners=True, images=True, include_untagged=True)
    actions = purge.purge(session, sel, wait_timeout=0)
    assert all(a.action in ("terminated", "deleted") for a in actions) and len(actions) == 12
    old = images_.Image("ami-9", "hg-old", "", snapshot_ids=("snap-8", "snap-9"))
    assert session.log == [
        ("terminate", ["i-1", "i-9"]),
        ("deregister", [known, old]),
        ("delete_security_group", {"GroupId": "sg-1"}),
        ("delete_security_group", {"GroupId": "sg-9"}),
        ("delete_key_pair", {"KeyName": "hg-automation-alice"}),
        ("delete_key_pair", {"KeyName": "hg-automation"}),
        ("delete_instance_profile", {"InstanceProfileName": "hg-p"}),
        ("delete_instance_profile", {"InstanceProfileName": "hg-ephemeral-ec2-1"}),
        ("delete_role", "hg-r"),
        ("delete_role", "hg-ephemeral-ec2-role-1"),
    ]
    (_, images), = [e for e in session.log if e[0] == "deregister"]
    assert images[1].snapshot_ids == ("snap-8", "snap-9") and images[1].name == "hg-old"


def test_all_owners_dry_run_changes_nothing(monkeypatch, captured):
    session = Session()
    _world(monkeypatch, session)
    sel = purge.Selection(owner="alice", all_owners=True, images=True, include_untagged=True,
                          dry_run=True)
    actions = purge.purge(session, sel, wait_timeout=0)
    assert session.log == []
    assert [a.action for a in actions] == ["would terminate"] * 2 + ["would delete"] * 10


def test_owner_only_touches_no_iam_and_no_images(monkeypatch, captured):
    session = Session()
    owners, _ = _world(monkeypatch, session)
    actions = purge.purge(session, purge.Selection(owner="alice"), wait_timeout=0)
    assert owners == ["alice", "alice", "alice"]
    assert ("ami-9", "skipped: untagged (--images --include-untagged)") in [
        (a.resource.id, a.action) for a in actions]
    assert "ami-1" not in [a.resource.id for a in actions]
    assert not any(a.resource.kind in ("role", "instance-profile") for a in actions)
    assert "IAM" not in captured.err_text + captured.out_text


def test_terminate_waits_only_while_not_terminated(monkeypatch):
    session = Session()
    _world(monkeypatch, session)
    waits = []
    monkeypatch.setattr(inst, "terminate", lambda s, ids: {"i-1": "shutting-down"})
    monkeypatch.setattr(inst, "wait_for_state", lambda *a, **k: waits.append((a, k)))
    sel = purge.Selection(owner="alice")
    purge.terminate_instances(session, sel, wait_timeout=0)
    purge.terminate_instances(session, sel)  # no wait unless asked
    assert waits == []
    purge.terminate_instances(session, sel, wait_timeout=7)
    assert waits == [((session, ["i-1"], {"terminated"}, 7), {"interval": 5.0,
                                                            "what": "instances"})]
    monkeypatch.setattr(inst, "terminate", lambda s, ids: {"i-1": "terminated"})
    purge.terminate_instances(session, sel, wait_timeout=7)
    assert len(waits) == 1


def test_purge_waits_600_seconds_by_default(monkeypatch, captured):
    session = Session()
    _world(monkeypatch, session)
    seen = []
    monkeypatch.setattr(purge, "terminate_instances",
                        lambda s, sel, wait_timeout: seen.append(wait_timeout) or [])
    purge.purge(session, purge.Selection(owner="alice"))
    assert seen == [600.0]


def test_a_failed_delete_names_what_it_was_deleting(monkeypatch, captured):
    from botocore.exceptions import ClientError

    from hgautomation import errors

    session = Session()
    _world(monkeypatch, session)

    def refuse(**kwargs):
        raise ClientError({"Error": {"Code": "DependencyViolation", "Message": "in use"}},
                          "DeleteSecurityGroup")

    monkeypatch.setattr(EC2, "delete_security_group", lambda self, **kw: refuse(**kw))
    try:
        purge.purge(session, purge.Selection(owner="alice"), wait_timeout=0)
    except errors.HgAutomationError as exc:
        assert "(delete security group hg-linux-dev-1-alice)" in str(exc)
    else:
        raise AssertionError("the refused delete was not reported")
