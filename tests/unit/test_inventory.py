"""hgautomation.aws.inventory: rows of what we own, ages, expiry and cost (Stubber)."""

from __future__ import annotations

import datetime as dt

import pytest

from hgautomation import platforms
from hgautomation.aws import inventory as inv
from hgautomation.aws import tags as T

NOW = dt.datetime(2025, 6, 1, 12, 0, 0, tzinfo=dt.timezone.utc)


def _res(created="", **extra):
    return inv.Resource("instance", "i-1", "n", "alice", created=created, extra=extra)


@pytest.mark.parametrize("created,age", [
    ("2025-06-01T11:59:30Z", "0m"),
    ("2025-06-01T11:15:00Z", "45m"),
    ("2025-06-01T10:58:00Z", "1h02m"),
    ("2025-05-31T12:00:01Z", "23h59m"),
    ("2025-05-29T07:00:00Z", "3d5h"),
    ("2025-06-01T13:00:00Z", "0m"),  # clock skew: never negative
    ("", "?"),
    ("garbage", "?"),
])
def test_age(created, age):
    assert _res(created).age(NOW) == age


@pytest.mark.parametrize("expires,left", [
    ("2025-06-01T16:00:00Z", "4h00m"),
    ("2025-06-01T12:10:59Z", "10m"),
    ("2025-06-01T12:00:00Z", "EXPIRED"),
    ("2025-06-01T08:00:00Z", "EXPIRED"),
    ("", ""),
    ("not a time", ""),
])
def test_expires(expires, left):
    assert _res(expires=expires).expires(NOW) == left
    assert inv.Resource("key-pair", "k", "k", "").expires(NOW) == ""


def test_hourly_estimate():
    assert platforms.hourly_estimate("c5.large") == pytest.approx(0.085)
    assert platforms.hourly_estimate("c6i.2xlarge", windows=True) == pytest.approx(0.34 + 8 * 0.046)
    assert platforms.hourly_estimate("t3.micro", windows=True) == pytest.approx(0.0104 + 2 * 0.046)
    assert platforms.hourly_estimate("x99.huge") is None
    assert platforms.hourly_estimate("") is None


def _instance(iid, state="running", tags=None, itype="c5.large", **extra):
    data = {"InstanceId": iid, "InstanceType": itype, "State": {"Code": 16, "Name": state},
            "LaunchTime": dt.datetime(2025, 5, 1, 8, 0, 0, 123000, tzinfo=dt.timezone.utc),
            **extra}
    if tags is not None:
        data["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    return data


def test_instances_rows(stub, aws_session):
    tags = {"Name": "hg-tests-alice-1", T.MANAGED: "1", T.OWNER: "alice",
            T.CREATED_AT: "2025-05-01T07:59:00Z", T.EXPIRES_AT: "2025-05-01T11:59:00Z"}
    stub("ec2").add_response("describe_instances", {"Reservations": [{"Instances": [
        _instance("i-1", tags=tags, InstanceLifecycle="spot"),
        _instance("i-2", state="stopped", tags={T.MANAGED: "1", T.OWNER: "alice"}),
        _instance("i-3", tags={T.MANAGED: "1", T.OWNER: "alice"}, itype="c5.xlarge",
                  Platform="windows"),
    ]}]}, {"Filters": T.filters("alice", instance_state_name=[
        "pending", "running", "stopping", "stopped"])})
    one, two, three = inv.instances(aws_session, "alice")
    assert (one.kind, one.id, one.name, one.owner, one.state) == \
        ("instance", "i-1", "hg-tests-alice-1", "alice", "running")
    assert one.created == "2025-05-01T07:59:00Z"  # the tag wins over LaunchTime
    assert one.hourly == pytest.approx(0.085)
    assert one.extra == {"type": "c5.large", "spot": True, "expires": "2025-05-01T11:59:00Z"}
    assert one.tagged
    assert two.created == "2025-05-01T08:00:00Z"  # from LaunchTime, in UTC
    assert two.hourly is None  # a stopped instance costs no compute
    assert three.hourly == pytest.approx(0.17 + 4 * 0.046)


def test_untagged_instances_exclude_anything_with_our_tags(stub, aws_session):
    stub("ec2").add_response("describe_instances", {"Reservations": [{"Instances": [
        _instance("i-old", tags={"Name": "hg-old"}),
        _instance("i-notours", tags={"Name": "hg-x", T.MANAGED: "0"}),
    ]}]}, {"Filters": [{"Name": "tag:Name", "Values": ["hg-*"]},
                       {"Name": "instance-state-name",
                        "Values": ["pending", "running", "stopping", "stopped"]}]})
    (row,) = inv.untagged_instances(aws_session)
    assert row.id == "i-old" and row.tagged is False and row.owner == ""


def test_key_pairs_and_security_groups_rows(stub, aws_session):
    ec2 = stub("ec2")
    ec2.add_response("describe_key_pairs", {"KeyPairs": [
        {"KeyName": "hg-automation-bob", "KeyPairId": "key-1",
         "CreateTime": dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc),
         "Tags": [{"Key": T.MANAGED, "Value": "1"}, {"Key": T.OWNER, "Value": "bob"}]},
    ]}, {"Filters": T.filters(None)})
    ec2.add_response("describe_security_groups", {"SecurityGroups": [
        {"GroupId": "sg-1", "GroupName": "hg-linux-dev-1-bob", "Description": "d",
         "Tags": [{"Key": T.MANAGED, "Value": "1"}, {"Key": T.OWNER, "Value": "bob"}]},
    ]}, {"Filters": T.filters(None)})
    (key,) = inv.key_pairs(aws_session, None)
    assert (key.kind, key.id, key.name, key.owner, key.created) == \
        ("key-pair", "key-1", "hg-automation-bob", "bob", "2025-01-01T00:00:00Z")
    (group,) = inv.security_groups(aws_session, None)
    assert (group.kind, group.id, group.name, group.owner, group.created) == \
        ("security-group", "sg-1", "hg-linux-dev-1-bob", "bob", "")


def test_listing_rows_mark_spot_and_leave_a_repeated_name_out():
    from hgautomation.commands import ec2 as commands

    spot = inv.Resource("instance", "i-1", "hg-temp-alice-1", "alice", state="running",
                        hourly=0.085, extra={"spot": True})
    assert commands._listing_row(spot)[-1] == "0.085*"
    on_demand = inv.Resource("instance", "i-2", "hg-temp-alice-2", "alice", hourly=0.085)
    assert commands._listing_row(on_demand)[-1] == "0.085"
    role = inv.Resource("role", "hg-ephemeral-ec2-role-1", "hg-ephemeral-ec2-role-1", "")
    assert commands._listing_row(role)[1:3] == ["", "shared"]
    legacy = inv.Resource("key-pair", "key-9", "hg-automation", "", tagged=False)
    assert commands._listing_row(legacy)[2] == "(untagged)"
