"""hgautomation.aws.instances: records, dead-man user data, terminate and waits (Stubber)."""

from __future__ import annotations

import email
import re

import pytest

from hgautomation import errors
from hgautomation.aws import instances

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


# -- deadman_user_data ----------------------------------------------------------------

def _parts(user_data: str) -> list[tuple[str, str]]:
    message = email.message_from_string(user_data)
    assert message.get_content_type() == "multipart/mixed"
    return [(part.get_content_type(), part.get_payload(decode=True).decode())
            for part in message.get_payload()]


def test_linux_deadman_comes_first_then_cloud_config():
    data = instances.deadman_user_data("#cloud-config\nssh_keys: {}\n", 30, "linux")
    (kind1, script), (kind2, config) = _parts(data)
    assert kind1 == "text/x-shellscript" and kind2 == "text/cloud-config"
    assert script.startswith("#!/bin/sh\n")
    assert "dir=/run/hgautomation" in script and "+ 1800 ))" in script
    assert "while sleep 30; do" in script and "        poweroff\n" in script
    assert "@" not in script.replace("@SECONDS@", "")  # every placeholder filled
    assert config == "#cloud-config\nssh_keys: {}\n"


def test_linux_shell_user_data_is_a_shell_part():
    data = instances.deadman_user_data("#!/bin/bash\necho hi\n", 5, "linux")
    kinds = [k for k, _ in _parts(data)]
    assert kinds == ["text/x-shellscript", "text/x-shellscript"]
    assert _parts(data)[1][1] == "#!/bin/bash\necho hi\n"


def test_linux_without_user_data_has_only_the_deadman():
    (only,) = _parts(instances.deadman_user_data("", 60, "linux"))
    assert "+ 3600 ))" in only[1]


@pytest.mark.parametrize("minutes,expected", [(0, 1), (-10, 1), (2.9, 2), (600, 600)])
def test_lifetime_is_whole_minutes_and_at_least_one(minutes, expected):
    (_, script), = _parts(instances.deadman_user_data("", minutes, "linux"))
    assert f"+ {expected * 60} ))" in script
    windows = instances.deadman_user_data("", minutes, "windows")
    assert f"ToUnixTimeSeconds() + {expected * 60}" in windows


def test_windows_deadman_goes_into_the_existing_powershell_block():
    data = instances.deadman_user_data("<powershell>\nWrite-Host hi\n</powershell>\n", 30,
                                       "windows")
    assert data.count("<powershell>") == 1 and data.count("</powershell>") == 1
    assert data.startswith("<powershell>\n")
    assert data.index("C:\\hgautomation\\deadline") < data.index("Write-Host hi")
    assert "shutdown.exe /s /f /t 0" in data


def test_windows_deadman_wraps_plain_user_data():
    data = instances.deadman_user_data("", 10, "windows")
    assert re.fullmatch(r"<powershell>\n(.*\n)+</powershell>\n", data)
    assert "ToUnixTimeSeconds() + 600" in data


def test_deadman_user_data_for_both_platforms():
    """Moved from the end-to-end tier (test_aws_units.py)."""
    linux = instances.deadman_user_data("#cloud-config\nssh_keys: {}\n", 30, "linux")
    assert "+ 1800 ))" in linux and "text/cloud-config" in linux
    windows = instances.deadman_user_data("<powershell>\nWrite-Host hi\n</powershell>", 30,
                                          "windows")
    assert windows.index("ToUnixTimeSeconds() + 1800") < windows.index("Write-Host hi")
    assert windows.count("<powershell>") == 1


def test_heartbeat_argv_moves_the_linux_deadline():
    argv = instances.heartbeat_argv("linux", 3600)
    assert argv[:2] == ["sh", "-c"] and argv[3:] == ["sh", "/run/hgautomation/deadline", "3600"]
    with pytest.raises(ValueError):
        instances.heartbeat_argv("windows")


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
    with pytest.raises(errors.UsageError), instances.temporary_instances(
            aws_session, owner="alice", image_id="ami-1", instance_type="c5.large",
            count=0):
        pass
    assert aws_session.counter.total == 0
