"""hgautomation.aws.purge: what is selected, skipped, or removed, in which order (Stubber)."""

from __future__ import annotations

from hgautomation.aws import inventory as inv
from hgautomation.aws import purge
from hgautomation.aws import tags as T

LIVE = ["pending", "running", "stopping", "stopped"]
ALICE = [{"Key": T.MANAGED, "Value": "1"}, {"Key": T.OWNER, "Value": "alice"}]


def _instances(*records):
    return {"Reservations": [{"Instances": [
        {"InstanceId": iid, "State": {"Code": 16, "Name": "running"},
         "Tags": [{"Key": "Name", "Value": name}] + tags}
        for iid, name, tags in records]}]} if records else {"Reservations": []}


def _list_instances(ec2, owner, ours=(), untagged=()):
    ec2.add_response("describe_instances", _instances(*ours),
                     {"Filters": T.filters(owner, instance_state_name=LIVE)})
    ec2.add_response("describe_instances", _instances(*untagged), {"Filters": [
        {"Name": "tag:Name", "Values": ["hg-*"]},
        {"Name": "instance-state-name", "Values": LIVE}]})


def _list_untagged_images(ec2, found=()):
    ec2.add_response("describe_images", {"Images": list(found)}, {
        "Owners": ["self"], "Filters": [{"Name": "name", "Values": ["hg-*"]}]})


def _list_groups(ec2, owner, ours=(), untagged=()):
    ec2.add_response("describe_security_groups", {"SecurityGroups": list(ours)},
                     {"Filters": T.filters(owner)})
    ec2.add_response("describe_security_groups", {"SecurityGroups": list(untagged)},
                     {"Filters": [{"Name": "group-name", "Values": ["hg-*"]}]})


def _list_keys(ec2, owner, ours=(), untagged=()):
    ec2.add_response("describe_key_pairs", {"KeyPairs": list(ours)},
                     {"Filters": T.filters(owner)})
    ec2.add_response("describe_key_pairs", {"KeyPairs": list(untagged)},
                     {"Filters": [{"Name": "key-name", "Values": ["hg-*"]}]})


GROUP = {"GroupId": "sg-1", "GroupName": "hg-linux-dev-1-alice", "Description": "d",
         "Tags": ALICE}
OLD_GROUP = {"GroupId": "sg-9", "GroupName": "hg-linux-dev-1", "Description": "d"}
KEY = {"KeyName": "hg-automation-alice", "KeyPairId": "key-1", "Tags": ALICE}
OLD_KEY = {"KeyName": "hg-automation", "KeyPairId": "key-9"}
OLD_IMAGE = {"ImageId": "ami-9", "Name": "hg-linux-dev-old", "State": "available"}


def test_selection_owner_filter():
    assert purge.Selection(owner="alice").owner_filter == "alice"
    assert purge.Selection(owner="alice", all_owners=True).owner_filter is None


def test_dry_run_lists_and_changes_nothing(stub, aws_session, captured):
    ec2 = stub("ec2")
    _list_instances(ec2, "alice", ours=[("i-1", "hg-tests-alice-1", ALICE)],
                    untagged=[("i-9", "hg-legacy", [])])
    _list_untagged_images(ec2, [OLD_IMAGE])
    _list_groups(ec2, "alice", [GROUP], [OLD_GROUP])
    _list_keys(ec2, "alice", [KEY], [OLD_KEY])
    actions = purge.purge(aws_session, purge.Selection(owner="alice", dry_run=True))
    assert aws_session.counter.mutating == 0
    assert [(a.resource.id, a.action) for a in actions] == [
        ("i-1", "would terminate"),
        ("i-9", purge.UNTAGGED_SKIP),
        ("ami-9", "skipped: untagged (--images --include-untagged)"),
        ("sg-1", "would delete"),
        ("sg-9", purge.UNTAGGED_SKIP),
        ("key-1", "would delete"),
        ("key-9", purge.UNTAGGED_SKIP),
    ]
    groups = purge.by_action(actions)
    assert list(groups) == ["would terminate", purge.UNTAGGED_SKIP,
                            "skipped: untagged (--images --include-untagged)", "would delete"]
    assert [a.resource.id for a in groups[purge.UNTAGGED_SKIP]] == ["i-9", "sg-9", "key-9"]
    assert purge.summary_rows(groups[purge.UNTAGGED_SKIP])[0] == \
        ["instance", "i-9", "hg-legacy", "(untagged)"]


def test_purge_removes_in_dependency_order(stub, aws_session, captured):
    # The stubber enforces the order: instances, then groups, then key pairs.
    ec2 = stub("ec2")
    _list_instances(ec2, "alice", ours=[("i-1", "hg-tests-alice-1", ALICE)])
    ec2.add_response("terminate_instances", {"TerminatingInstances": [
        {"InstanceId": "i-1", "CurrentState": {"Code": 48, "Name": "terminated"}}]},
        {"InstanceIds": ["i-1"]})
    _list_untagged_images(ec2)
    _list_groups(ec2, "alice", [GROUP])
    ec2.add_response("delete_security_group", {}, {"GroupId": "sg-1"})
    _list_keys(ec2, "alice", [KEY])
    ec2.add_response("delete_key_pair", {}, {"KeyName": "hg-automation-alice"})
    actions = purge.purge(aws_session, purge.Selection(owner="alice"), wait_timeout=0)
    assert [(a.resource.kind, a.action) for a in actions] == [
        ("instance", "terminated"), ("security-group", "deleted"), ("key-pair", "deleted")]


def test_include_untagged_takes_the_legacy_resources_too(stub, aws_session, captured):
    ec2 = stub("ec2")
    _list_instances(ec2, "alice", untagged=[("i-9", "hg-legacy", [])])
    ec2.add_response("terminate_instances", {"TerminatingInstances": [
        {"InstanceId": "i-9", "CurrentState": {"Code": 48, "Name": "terminated"}}]},
        {"InstanceIds": ["i-9"]})
    _list_untagged_images(ec2, [OLD_IMAGE])
    _list_groups(ec2, "alice", untagged=[OLD_GROUP])
    ec2.add_response("delete_security_group", {}, {"GroupId": "sg-9"})
    _list_keys(ec2, "alice", untagged=[OLD_KEY])
    ec2.add_response("delete_key_pair", {}, {"KeyName": "hg-automation"})
    actions = purge.purge(aws_session, purge.Selection(owner="alice", include_untagged=True),
                          wait_timeout=0)
    assert [(a.resource.id, a.action) for a in actions] == [
        ("i-9", "terminated"),
        # Images need --images as well, even with --include-untagged.
        ("ami-9", "skipped: untagged (--images --include-untagged)"),
        ("sg-9", "deleted"), ("key-9", "deleted")]


def test_terminate_instances_waits_until_gone(stub, aws_session, captured):
    ec2 = stub("ec2")
    _list_instances(ec2, None, ours=[("i-1", "a", ALICE), ("i-2", "b", ALICE)])
    ec2.add_response("terminate_instances", {"TerminatingInstances": [
        {"InstanceId": i, "CurrentState": {"Code": 32, "Name": "shutting-down"}}
        for i in ("i-1", "i-2")]}, {"InstanceIds": ["i-1", "i-2"]})
    ec2.add_response("describe_instances", {"Reservations": [{"Instances": [
        {"InstanceId": i, "State": {"Code": 48, "Name": "terminated"}}
        for i in ("i-1", "i-2")]}]}, {"InstanceIds": ["i-1", "i-2"]})
    sel = purge.Selection(owner="alice", all_owners=True)
    actions = purge.terminate_instances(aws_session, sel, wait_timeout=30)
    assert [a.action for a in actions] == ["terminated", "terminated"]


def test_summary_rows_owner_column():
    shared = inv.Resource("image", "ami-1", "hg-img", "")
    legacy = inv.Resource("key-pair", "key-9", "hg-automation", "", tagged=False)
    mine = inv.Resource("key-pair", "key-1", "hg-automation-alice", "alice")
    rows = purge.summary_rows([purge.Action(shared, "deleted"), purge.Action(legacy, "x"),
                               purge.Action(mine, "would delete")])
    assert rows == [["image", "ami-1", "hg-img", "-"],
                    ["key-pair", "key-9", "hg-automation", "(untagged)"],
                    ["key-pair", "key-1", "hg-automation-alice", "alice"]]
    assert len(purge.SUMMARY_HEADERS) == len(rows[0])
