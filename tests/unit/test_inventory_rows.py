"""inventory: every field of every kind of row, the IAM side (which roles and profiles are
ours, which only look it) and the duration boundaries. A row that counted every role as
ours, swapped two fields or lost its extra data fails here."""

from __future__ import annotations

import datetime as dt

import pytest

from hgautomation.aws import iam as iam_
from hgautomation.aws import images as images_
from hgautomation.aws import inventory as inv
from hgautomation.aws import tags as T

OURS = [{"Key": T.MANAGED, "Value": "1"}, {"Key": T.CREATED_AT, "Value": "2025-01-02T03:04:05Z"}]
WHEN = dt.datetime(2024, 12, 31, 23, 0, tzinfo=dt.timezone(dt.timedelta(hours=-2)))


def _fields(r: inv.Resource) -> tuple:
    return (r.kind, r.id, r.name, r.owner, r.created, r.state, r.hourly, r.tagged, r.extra)


def test_iam_entries_tell_ours_from_lookalikes(monkeypatch):
    profiles = [
        {"InstanceProfileName": "hg-ephemeral-ec2-1", "Path": "/", "Tags": OURS},
        {"InstanceProfileName": "hg-p2", "Path": iam_.PATH, "CreateDate": WHEN},
        {"InstanceProfileName": "hg-p3", "Path": "/", "CreateDate": "2024-05-06T07:08:09.5Z"},
        {"InstanceProfileName": "hg-p4", "Path": "/",
         "Tags": [{"Key": T.MANAGED, "Value": "0"}]},
    ]
    roles = [
        {"RoleName": "hg-ephemeral-ec2-role-1", "Path": "/", "Tags": OURS},
        {"RoleName": "hg-r2", "Path": iam_.PATH, "CreateDate": WHEN},
        {"RoleName": "hg-r3", "Path": "/other/"},
    ]
    monkeypatch.setattr(iam_, "list_ours", lambda session: (roles, profiles))
    rows = inv.iam_entries(object())
    assert [_fields(r) for r in rows] == [
        ("instance-profile", "hg-ephemeral-ec2-1", "hg-ephemeral-ec2-1", "",
         "2025-01-02T03:04:05Z", "", None, True, {"profile": profiles[0]}),
        ("instance-profile", "hg-p2", "hg-p2", "", "2025-01-01T01:00:00Z", "", None, True,
         {"profile": profiles[1]}),
        ("instance-profile", "hg-p3", "hg-p3", "", "2024-05-06T07:08:09Z", "", None, False,
         {"profile": profiles[2]}),
        ("instance-profile", "hg-p4", "hg-p4", "", "", "", None, False,
         {"profile": profiles[3]}),
        ("role", "hg-ephemeral-ec2-role-1", "hg-ephemeral-ec2-role-1", "",
         "2025-01-02T03:04:05Z", "", None, True, {}),
        ("role", "hg-r2", "hg-r2", "", "2025-01-01T01:00:00Z", "", None, True, {}),
        ("role", "hg-r3", "hg-r3", "", "", "", None, False, {}),
    ]


def test_key_and_group_rows_every_field(stub, aws_session):
    ec2 = stub("ec2")
    ec2.add_response("describe_key_pairs", {"KeyPairs": [
        {"KeyName": "hg-automation-bob", "KeyPairId": "key-1", "CreateTime": WHEN,
         "Tags": [*OURS, {"Key": T.OWNER, "Value": "bob"}]},
        {"KeyName": "hg-automation-eve"},
    ]}, {"Filters": T.filters("bob")})
    assert [_fields(r) for r in inv.key_pairs(aws_session, "bob")] == [
        ("key-pair", "key-1", "hg-automation-bob", "bob", "2025-01-02T03:04:05Z", "", None,
         True, {}),
        ("key-pair", "hg-automation-eve", "hg-automation-eve", "", "", "", None, True, {}),
    ]
    ec2.add_response("describe_key_pairs", {"KeyPairs": [
        {"KeyName": "hg-old", "KeyPairId": "key-9", "CreateTime": WHEN},
        {"KeyName": "hg-x", "KeyPairId": "key-8", "Tags": [{"Key": T.MANAGED, "Value": "0"}]},
    ]}, {"Filters": [{"Name": "key-name", "Values": ["hg-*"]}]})
    assert [_fields(r) for r in inv.untagged_key_pairs(aws_session)] == [
        ("key-pair", "key-9", "hg-old", "", "2025-01-01T01:00:00Z", "", None, False, {})]
    ec2.add_response("describe_security_groups", {"SecurityGroups": [
        {"GroupId": "sg-1", "GroupName": "hg-linux-dev-1-bob", "Description": "d",
         "Tags": [*OURS, {"Key": T.OWNER, "Value": "bob"}]},
    ]}, {"Filters": T.filters("bob")})
    assert [_fields(r) for r in inv.security_groups(aws_session, "bob")] == [
        ("security-group", "sg-1", "hg-linux-dev-1-bob", "bob", "2025-01-02T03:04:05Z", "",
         None, True, {})]
    ec2.add_response("describe_security_groups", {"SecurityGroups": [
        {"GroupId": "sg-9", "GroupName": "hg-linux-dev-1", "Description": "d"},
        {"GroupId": "sg-8", "GroupName": "hg-x", "Description": "d",
         "Tags": [{"Key": "hgautomation:owner", "Value": "x"}]},
    ]}, {"Filters": [{"Name": "group-name", "Values": ["hg-*"]}]})
    assert [_fields(r) for r in inv.untagged_security_groups(aws_session)] == [
        ("security-group", "sg-9", "hg-linux-dev-1", "", "", "", None, False, {})]


def test_image_rows_every_field(monkeypatch):
    ours = images_.Image("ami-1", "hg-linux-dev-debian12", "2025-03-04T05:06:07.000Z",
                         state="pending", tags={T.MANAGED: "1"}, snapshot_ids=("snap-1",))
    old = images_.Image("ami-9", "hg-old", "2020-01-01T00:00:00.000Z",
                        snapshot_ids=("snap-8", "snap-9"))
    monkeypatch.setattr(images_, "find_ours", lambda session: [ours])
    monkeypatch.setattr(images_, "find_untagged", lambda session: [old])
    assert [_fields(r) for r in inv.images(object())] == [
        ("image", "ami-1", "hg-linux-dev-debian12", "", "2025-03-04T05:06:07Z", "pending", None,
         True, {"snapshots": ["snap-1"]})]
    assert [_fields(r) for r in inv.untagged_images(object())] == [
        ("image", "ami-9", "hg-old", "", "2020-01-01T00:00:00Z", "available", None, False,
         {"snapshots": ["snap-8", "snap-9"]})]


def test_instance_row_every_field(stub, aws_session):
    stub("ec2").add_response("describe_instances", {"Reservations": [{"Instances": [
        {"InstanceId": "i-1", "InstanceType": "c5.large", "State": {"Code": 0, "Name": "pending"},
         "Platform": "Windows", "LaunchTime": WHEN,
         "Tags": [{"Key": "Name", "Value": "hg-old"}]},
        {"InstanceId": "i-2", "State": {"Code": 80, "Name": "stopped"},
         "Tags": [{"Key": "Name", "Value": "hg-old2"}]},
    ]}]}, {"Filters": [{"Name": "tag:Name", "Values": ["hg-*"]},
                       {"Name": "instance-state-name",
                        "Values": ["pending", "running", "stopping", "stopped"]}]})
    one, two = inv.untagged_instances(aws_session)
    assert _fields(one) == ("instance", "i-1", "hg-old", "", "2025-01-01T01:00:00Z", "pending",
                            pytest.approx(0.085 + 2 * 0.046), False,
                            {"type": "c5.large", "spot": False, "expires": ""})
    assert _fields(two) == ("instance", "i-2", "hg-old2", "", "", "stopped", None, False,
                            {"type": "", "spot": False, "expires": ""})


@pytest.mark.parametrize("seconds, text", [
    (-5, "0m"), (59, "0m"), (60, "1m"), (3599, "59m"), (3600, "1h00m"), (3660, "1h01m"),
    (86399, "23h59m"), (86400, "1d0h"), (90000, "1d1h"), (2 * 86400 + 7199, "2d1h"),
])
def test_duration_boundaries(seconds, text):
    assert inv._duration(seconds) == text


def test_age_and_expiry_use_now_by_default(monkeypatch):
    now = dt.datetime(2025, 6, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
    monkeypatch.setattr(T, "now", lambda: now)
    row = inv.Resource("instance", "i", "n", "", created="2025-06-01T10:00:00Z",
                       extra={"expires": "2025-06-01T12:00:01Z"})
    assert row.age() == "2h00m" and row.expires() == "0m"
    assert row.expires(now + dt.timedelta(seconds=1)) == "EXPIRED"


def test_instance_without_name_or_type(stub, aws_session):
    stub("ec2").add_response("describe_instances", {"Reservations": [{"Instances": [
        {"InstanceId": "i-3", "State": {"Code": 16, "Name": "running"},
         "Tags": [{"Key": T.MANAGED, "Value": "1"}]},
    ]}]}, {"Filters": T.filters(None, instance_state_name=[
        "pending", "running", "stopping", "stopped"])})
    (row,) = inv.instances(aws_session, None)
    assert (row.name, row.hourly, row.extra["type"]) == ("", None, "")


def test_created_from_a_time_in_another_zone(monkeypatch):
    import time

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        assert inv._created({}, WHEN) == "2025-01-01T01:00:00Z"
    finally:
        monkeypatch.undo()
        time.tzset()
    assert inv._created({}, 5) == "" and inv._created({}, "") == ""
    assert inv._created({T.CREATED_AT: ""}, "2024-01-01T00:00:00.123Z") == "2024-01-01T00:00:00Z"


@pytest.mark.parametrize("call, action", [
    (lambda s: inv.key_pairs(s, None), "describe key pairs"),
    (inv.untagged_key_pairs, "describe key pairs"),
    (lambda s: inv.security_groups(s, None), "describe security groups"),
    (inv.untagged_security_groups, "describe security groups"),
])
def test_a_refused_listing_names_itself(stub, aws_session, call, action):
    from hgautomation import errors

    ec2 = stub("ec2")
    method = "describe_key_pairs" if "key" in action else "describe_security_groups"
    ec2.add_client_error(method, "UnauthorizedOperation", "no")
    with pytest.raises(errors.HgAutomationError) as raised:
        call(aws_session)
    assert f"({action})" in str(raised.value)


def test_listings_pass_their_session_on(monkeypatch):
    session = object()
    seen = []
    monkeypatch.setattr(images_, "find_ours", lambda s: seen.append(s) or [])
    monkeypatch.setattr(iam_, "list_ours", lambda s: seen.append(s) or ([], []))
    inv.images(session)
    inv.iam_entries(session)
    assert seen == [session, session]
