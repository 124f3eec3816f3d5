"""hgautomation.aws.security_groups.ensure_security_group over a botocore Stubber."""

from __future__ import annotations

import datetime as dt

import pytest

from hgautomation import errors
from hgautomation.aws import security_groups as sg
from hgautomation.aws import tags as T

NAME = "hg-linux-dev-1-alice"
WHEN = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
OURS = [{"Key": T.MANAGED, "Value": "1"}, {"Key": T.CREATED_AT, "Value": "2025-01-02T03:04:05Z"},
        {"Key": T.OWNER, "Value": "alice"}]


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch):
    monkeypatch.setattr(T, "now", lambda: WHEN)


def _describe(stub, name, groups):
    stub("ec2").add_response("describe_security_groups", {"SecurityGroups": groups},
                             {"Filters": [{"Name": "group-name", "Values": [name]}]})


def _group(perms, tags=OURS, name=NAME):
    return {"GroupId": "sg-1", "GroupName": name, "Description": "d", "OwnerId": "1",
            "IpPermissions": perms, "Tags": tags}


def _tcp(port, cidr, description="hgautomation owner address"):
    perm = {"IpProtocol": "tcp", "FromPort": port, "ToPort": port}
    if ":" in cidr:
        perm["Ipv6Ranges"] = [{"CidrIpv6": cidr}]
    else:
        perm["IpRanges"] = [{"CidrIp": cidr, "Description": description}]
    return perm


def test_creates_the_group_and_allows_ssh(stub, aws_session, captured):
    _describe(stub, NAME, [])
    ec2 = stub("ec2")
    ec2.add_response("create_security_group", {"GroupId": "sg-new"}, {
        "GroupName": NAME, "Description": "hgautomation linux dev hosts of alice",
        "TagSpecifications": [{"ResourceType": "security-group", "Tags": OURS}]})
    ec2.add_response("authorize_security_group_ingress", {}, {
        "GroupId": "sg-new", "IpPermissions": [_tcp(22, "192.0.2.1/32")]})
    assert sg.ensure_security_group(aws_session, "linux", "alice", "192.0.2.1/32") == "sg-new"
    assert "security group hg-linux-dev-1-alice: creating (ingress 192.0.2.1/32)" \
        in captured.err_text


def test_in_sync_group_makes_no_mutating_call(stub, aws_session, captured):
    _describe(stub, NAME, [_group([_tcp(22, "192.0.2.1/32", "any description")])])
    assert sg.ensure_security_group(aws_session, "linux", "alice", "192.0.2.1/32") == "sg-1"
    assert aws_session.counter.mutating == 0


def test_a_new_address_is_allowed_before_the_old_one_is_revoked(stub, aws_session, captured):
    old = _tcp(22, "198.51.100.9/32")
    _describe(stub, NAME, [_group([old])])
    ec2 = stub("ec2")
    ec2.add_response("authorize_security_group_ingress", {}, {
        "GroupId": "sg-1", "IpPermissions": [_tcp(22, "192.0.2.1/32")]})
    ec2.add_response("revoke_security_group_ingress", {}, {
        "GroupId": "sg-1", "IpPermissions": [_tcp(22, "198.51.100.9/32")]})
    sg.ensure_security_group(aws_session, "linux", "alice", "192.0.2.1/32")
    assert aws_session.counter.mutating == 2
    # The address it takes over is named: another machine of the same owner loses it.
    assert ("warning: security group hg-linux-dev-1-alice allowed 198.51.100.9/32, not "
            "this machine's 192.0.2.1/32: another machine using owner 'alice', or a "
            "changed address") in captured.err_text


def test_foreign_rules_removed_are_no_machine_to_warn_about(stub, aws_session, captured):
    udp = {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53,
           "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    _describe(stub, NAME, [_group([_tcp(22, "192.0.2.1/32"), udp])])
    stub("ec2").add_response("revoke_security_group_ingress", {}, {
        "GroupId": "sg-1", "IpPermissions": [udp]})
    sg.ensure_security_group(aws_session, "linux", "alice", "192.0.2.1/32")
    assert "warning:" not in captured.err_text


def test_foreign_rules_are_removed_as_they_are(stub, aws_session, captured):
    udp = {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53,
           "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    everything = {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "sg-9"}]}
    from_group = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                  "UserIdGroupPairs": [{"GroupId": "sg-7"}]}
    v6 = _tcp(22, "2001:db8::/64")
    _describe(stub, NAME, [_group([_tcp(22, "192.0.2.1/32"), udp, everything, from_group,
                                   v6])])
    stub("ec2").add_response("revoke_security_group_ingress", {}, {
        "GroupId": "sg-1", "IpPermissions": [
            everything, udp,
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
             "Ipv6Ranges": [{"CidrIpv6": "2001:db8::/64"}]},
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
             "UserIdGroupPairs": [{"GroupId": "sg-7"}]},
        ]})
    sg.ensure_security_group(aws_session, "linux", "alice", "192.0.2.1/32")


def test_windows_with_rdp_allows_both_ports(stub, aws_session, captured):
    name = "hg-windows-dev-1-alice"
    _describe(stub, name, [_group([_tcp(22, "192.0.2.1/32")], name=name)])
    stub("ec2").add_response("authorize_security_group_ingress", {}, {
        "GroupId": "sg-1", "IpPermissions": [_tcp(3389, "192.0.2.1/32")]})
    sg.ensure_security_group(aws_session, "windows", "alice", "192.0.2.1/32", rdp=True)


def test_rdp_is_only_for_windows(stub, aws_session, captured):
    _describe(stub, NAME, [_group([_tcp(22, "192.0.2.1/32")])])
    sg.ensure_security_group(aws_session, "linux", "alice", "192.0.2.1/32", rdp=True)
    assert aws_session.counter.mutating == 0


def test_ipv6_ingress(stub, aws_session, captured):
    _describe(stub, NAME, [_group([])])
    stub("ec2").add_response("authorize_security_group_ingress", {}, {
        "GroupId": "sg-1", "IpPermissions": [_tcp(22, "2001:db8::7/128")]})
    sg.ensure_security_group(aws_session, "linux", "alice", "2001:db8::7/128")


@pytest.mark.parametrize("tags", [
    [],
    [{"Key": T.MANAGED, "Value": "1"}, {"Key": T.OWNER, "Value": "bob"}],
    [{"Key": T.MANAGED, "Value": "0"}, {"Key": T.OWNER, "Value": "alice"}],
])
def test_a_same_named_group_that_is_not_ours_is_refused(stub, aws_session, captured, tags):
    _describe(stub, NAME, [_group([_tcp(22, "0.0.0.0/0")], tags=tags)])
    with pytest.raises(errors.AWSError) as raised:
        sg.ensure_security_group(aws_session, "linux", "alice", "192.0.2.1/32")
    assert raised.value.exit_code == 5
    assert "hg-linux-dev-1-alice (sg-1) exists but is not tagged as ours" in \
        raised.value.message
    assert aws_session.counter.mutating == 0


def test_authorize_failure_is_translated(stub, aws_session, captured):
    _describe(stub, NAME, [_group([])])
    stub("ec2").add_client_error("authorize_security_group_ingress", "RulesPerSecurityGroup"
                                 "LimitExceeded", "too many")
    with pytest.raises(errors.AWSError) as raised:
        sg.ensure_security_group(aws_session, "linux", "alice", "192.0.2.1/32")
    assert raised.value.code == "RulesPerSecurityGroupLimitExceeded"
    assert "authorize ingress on hg-linux-dev-1-alice" in raised.value.message
