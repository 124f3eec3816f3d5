"""hgautomation.aws.instances: records, the launch spec, terminate and waits (Stubber)."""

from __future__ import annotations

import email
from pathlib import Path

import pytest

from hgautomation import errors
from hgautomation.aws import account, deadman, instances
from hgautomation.options import AWSOptions

# -- Instance.from_api --------------------------------------------------------------


def test_instance_from_api_full_record():
    record = instances.Instance.from_api({
        "InstanceId": "i-1", "PublicIpAddress": "198.51.100.7",
        "PrivateIpAddress": "10.0.0.7", "InstanceType": "c5.large",
        "InstanceLifecycle": "spot",
        "Tags": [{"Key": "Name", "Value": "hg-tests-alice-1"},
                 {"Key": "hgautomation:owner", "Value": "alice"}],
    })
    assert record.id == "i-1"
    assert record.address == "198.51.100.7"
    assert record.private_ip == "10.0.0.7"
    assert record.instance_type == "c5.large"
    assert record.name == "hg-tests-alice-1"
    assert record.spot is True
    assert record.tags == {"Name": "hg-tests-alice-1", "hgautomation:owner": "alice"}


def test_instance_from_api_minimal_record_uses_private_address():
    record = instances.Instance.from_api({"InstanceId": "i-2", "PrivateIpAddress": "10.0.0.2"})
    assert record.public_ip is None
    assert record.address == "10.0.0.2"
    assert (record.name, record.instance_type, record.spot, record.tags) == ("", "", False, {})
    assert instances.Instance.from_api({"InstanceId": "i-3"}).address is None


def test_instance_equality_ignores_tags():
    a = instances.Instance("i-1", "1.2.3.4", None, tags={"a": "1"})
    b = instances.Instance("i-1", "1.2.3.4", None, tags={"b": "2"})
    assert a == b
    assert a != instances.Instance("i-1", "1.2.3.5", None)


# -- LaunchSpec --------------------------------------------------------------------------

def _aws(aws_session, *, spot=False, profile_arn="arn:aws:iam::1:instance-profile/hg/p"):
    state = account.AccountState(
        owner="alice", key_name="hg-alice", key_path=Path("/keys/hg-alice"),
        public_key="ssh-ed25519 AAAA alice",
        security_group_ids={"linux": "sg-linux", "windows": "sg-windows"},
        instance_profile_arn=profile_arn, windows_key_name="hg-alice.windows",
        windows_key_path=Path("/keys/hg-alice.windows"))
    return account.AWS(aws_session, "alice", AWSOptions(spot=spot), state)


def test_launch_spec_is_made_from_the_account_state(aws_session):
    """Windows launches with the owner's RSA key pair (EC2 refuses ed25519 there), Linux
    with the ed25519 one."""
    disk = {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 32}}
    spec = _aws(aws_session, spot=True).launch_spec(
        "windows", image_id="ami-1", instance_type="m6i.large", user_data="<powershell>",
        purpose="build", block_device_mappings=[disk])
    assert spec == instances.LaunchSpec(
        owner="alice", image_id="ami-1", instance_type="m6i.large", platform="windows",
        purpose="build", user_data="<powershell>", key_name="hg-alice.windows",
        security_group_ids=("sg-windows",),
        instance_profile_arn="arn:aws:iam::1:instance-profile/hg/p",
        block_device_mappings=(disk,), spot=True)
    plain = _aws(aws_session, profile_arn="").launch_spec(
        "linux", image_id="ami-2", instance_type="c5.large")
    assert plain.security_group_ids == ("sg-linux",) and plain.key_name == "hg-alice"
    assert plain.instance_profile_arn is None and plain.spot is False
    assert (plain.purpose, plain.user_data, plain.block_device_mappings) == ("temp", "", ())


def _parts(user_data: str) -> list[str]:
    return [part.get_payload(decode=True).decode()
            for part in email.message_from_string(user_data).get_payload()]


def test_run_params_carry_the_whole_spec():
    disk = {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 32}}
    spec = instances.LaunchSpec(
        owner="alice", image_id="ami-1", instance_type="c5.large", user_data="#cloud-config\n",
        key_name="hg-alice", security_group_ids=("sg-1",), instance_profile_arn="arn:p",
        subnet_id="subnet-1", block_device_mappings=(disk,), max_lifetime_minutes=5)
    params = spec.run_params()
    user_data = params.pop("UserData")
    assert params == {
        "ImageId": "ami-1", "InstanceType": "c5.large", "MinCount": 1, "MaxCount": 1,
        "InstanceInitiatedShutdownBehavior": "terminate", "SecurityGroupIds": ["sg-1"],
        "KeyName": "hg-alice", "IamInstanceProfile": {"Arn": "arn:p"},
        "BlockDeviceMappings": [disk], "SubnetId": "subnet-1"}
    # (the MIME boundary is random: compare the parts)
    assert _parts(user_data) == _parts(deadman.deadman_user_data("#cloud-config\n", 5, "linux"))
    assert "+ 300 ))" in _parts(user_data)[0]


def test_run_params_leave_out_what_the_spec_does_not_set():
    spec = instances.LaunchSpec(owner="alice", image_id="ami-1", instance_type="c5.large",
                                platform="windows")
    params = spec.run_params()
    assert set(params) == {"ImageId", "InstanceType", "MinCount", "MaxCount",
                           "InstanceInitiatedShutdownBehavior", "UserData"}
    assert params["UserData"].startswith("<powershell>\n")  # the Windows switch


# -- terminate ---------------------------------------------------------------------------

def _terminating(ids, state="shutting-down"):
    return {"TerminatingInstances": [
        {"InstanceId": i, "CurrentState": {"Code": 32, "Name": state},
         "PreviousState": {"Code": 16, "Name": "running"}} for i in ids]}


def test_terminate_batches_of_1000_sorted_and_deduplicated(stub, aws_session):
    ids = [f"i-{n:05d}" for n in range(1500)]
    ec2 = stub("ec2")
    ec2.add_response("terminate_instances", _terminating(ids[:1000]),
                     {"InstanceIds": ids[:1000]})
    ec2.add_response("terminate_instances", _terminating(ids[1000:], "terminated"),
                     {"InstanceIds": ids[1000:]})
    states = instances.terminate(aws_session, list(reversed(ids)) + ids[:10])
    assert len(states) == 1500
    assert states["i-00000"] == "shutting-down" and states["i-01499"] == "terminated"


def test_terminate_nothing_makes_no_call(stub, aws_session):
    stub("ec2")
    assert instances.terminate(aws_session, []) == {}
    assert aws_session.counter.total == 0


def test_terminate_error_is_translated(stub, aws_session):
    stub("ec2").add_client_error("terminate_instances", "UnauthorizedOperation", "no")
    with pytest.raises(errors.AWSError) as raised:
        instances.terminate(aws_session, ["i-1"])
    assert raised.value.code == "UnauthorizedOperation"


# -- wait_for_state ----------------------------------------------------------------------

def _reservation(*records):
    return {"Reservations": [{"Instances": [
        {"InstanceId": iid, "State": {"Code": 0, "Name": state}, **extra}
        for iid, state, extra in records]}]}


def test_wait_for_state_retries_unknown_ids_then_waits_for_addresses(stub, aws_session,
                                                                      captured):
    ec2 = stub("ec2")
    ec2.add_client_error("describe_instances", "InvalidInstanceID.NotFound", "not yet",
                         expected_params={"InstanceIds": ["i-1", "i-2"]})
    ec2.add_response("describe_instances", _reservation(
        ("i-1", "pending", {}), ("i-2", "running", {"PublicIpAddress": "192.0.2.2"})),
        {"InstanceIds": ["i-1", "i-2"]})
    ec2.add_response("describe_instances", _reservation(
        ("i-1", "running", {}), ("i-2", "running", {"PublicIpAddress": "192.0.2.2"})),
        {"InstanceIds": ["i-1", "i-2"]})
    ec2.add_response("describe_instances", _reservation(
        ("i-1", "running", {"PublicIpAddress": "192.0.2.1"}),
        ("i-2", "running", {"PublicIpAddress": "192.0.2.2"})),
        {"InstanceIds": ["i-1", "i-2"]})
    ready = instances.wait_for_state(aws_session, ["i-1", "i-2"], {"running"}, 30,
                                     interval=0, need_address="PublicIpAddress")
    assert sorted(i["InstanceId"] for i in ready) == ["i-1", "i-2"]
    assert aws_session.counter.calls == {"DescribeInstances": 4}


def test_wait_for_state_other_errors_propagate(stub, aws_session, captured):
    stub("ec2").add_client_error("describe_instances", "UnauthorizedOperation", "no")
    with pytest.raises(errors.AWSError) as raised:
        instances.wait_for_state(aws_session, ["i-1"], {"running"}, 30, interval=0)
    assert raised.value.code == "UnauthorizedOperation"


@pytest.mark.parametrize("state", ["terminated", "shutting-down"])
def test_wait_for_state_stops_when_an_instance_dies(stub, aws_session, captured, state):
    stub("ec2").add_response("describe_instances", _reservation(
        ("i-1", "running", {}), ("i-2", state, {})))
    with pytest.raises(errors.AWSError, match=r"^instance i-2 terminated unexpectedly"):
        instances.wait_for_state(aws_session, ["i-1", "i-2"], {"running"}, 30, interval=0)


def test_waiting_for_termination_is_not_a_death(stub, aws_session, captured):
    ec2 = stub("ec2")
    ec2.add_response("describe_instances", _reservation(("i-1", "shutting-down", {})))
    ec2.add_response("describe_instances", _reservation(("i-1", "terminated", {})))
    ready = instances.wait_for_state(aws_session, ["i-1"], {"terminated"}, 30, interval=0)
    assert [i["InstanceId"] for i in ready] == ["i-1"]


def test_wait_for_state_timeout_names_the_pending_instances(stub, aws_session, captured):
    stub("ec2").add_response("describe_instances", _reservation(
        ("i-1", "running", {}), ("i-2", "pending", {}), ("i-3", "stopping", {})))
    with pytest.raises(errors.WaitTimeout) as raised:
        instances.wait_for_state(aws_session, ["i-3", "i-1", "i-2"], {"running"}, 0,
                                 interval=0, what="hosts")
    assert raised.value.message == "hosts i-2, i-3 not running after 0s"


def test_temporary_instances_needs_one_instance(stub, aws_session, captured):
    stub("ec2")
    spec = instances.LaunchSpec(owner="alice", image_id="ami-1", instance_type="c5.large")
    with pytest.raises(errors.UsageError), instances.temporary_instances(
            aws_session, spec, count=0):
        pass
    assert aws_session.counter.total == 0
