"""hgautomation.aws.ssm.run_command over a botocore Stubber: Success, Failed, timeout."""

from __future__ import annotations

import pytest

from hgautomation import errors
from hgautomation.aws import ssm

IID = "i-0123456789abcdef0"
CID = "0b0e1f52-7b37-4e5e-9d1c-3f0c1b2a4d5e"


def _send(stub, commands, *, timeout_seconds=30, document=ssm.LINUX_DOCUMENT,
          comment="hgautomation"):
    stub("ssm").add_response("send_command", {"Command": {"CommandId": CID}}, {
        "InstanceIds": [IID], "DocumentName": document, "Comment": comment,
        "Parameters": {"commands": list(commands)}, "TimeoutSeconds": timeout_seconds})


def _invocation(stub, status, stdout="", stderr="", code=None):
    response = {"CommandId": CID, "InstanceId": IID, "Status": status,
                "StandardOutputContent": stdout, "StandardErrorContent": stderr}
    if code is not None:
        response["ResponseCode"] = code
    stub("ssm").add_response("get_command_invocation", response,
                             {"CommandId": CID, "InstanceId": IID})


def test_run_command_success(stub, aws_session, captured):
    _send(stub, ["echo hello", "uname"], timeout_seconds=60)
    _invocation(stub, "Success", stdout="hello\nLinux\n", code=0)
    result = ssm.run_command(aws_session, IID, ["echo hello", "uname"], timeout=60,
                             interval=0)
    assert result == ssm.CommandResult(CID, IID, "Success", "hello\nLinux\n", "")
    assert aws_session.counter.calls == {"SendCommand": 1, "GetCommandInvocation": 1}


def test_run_command_polls_until_final(stub, aws_session, captured):
    _send(stub, ["true"])
    stub("ssm").add_client_error("get_command_invocation", "InvocationDoesNotExist",
                                 expected_params={"CommandId": CID, "InstanceId": IID})
    _invocation(stub, "Pending")
    _invocation(stub, "InProgress")
    _invocation(stub, "Delayed")
    _invocation(stub, "Success")
    result = ssm.run_command(aws_session, IID, ["true"], timeout=30, interval=0)
    assert result.status == "Success"
    assert aws_session.counter.calls["GetCommandInvocation"] == 5


def test_run_command_failure_carries_the_tail_and_status(stub, aws_session, captured):
    _send(stub, ["apt-get update", "apt-get install x"])
    stdout = "".join(f"line {n}\n" for n in range(30))
    _invocation(stub, "Failed", stdout=stdout, stderr="E: broken package\n", code=100)
    with pytest.raises(errors.RemoteCommandError) as raised:
        ssm.run_command(aws_session, IID, ["apt-get update", "apt-get install x"],
                        timeout=30, interval=0)
    exc = raised.value
    assert exc.exit_code == 10
    assert exc.message == f"SSM command {CID} on {IID} ended Failed: E: broken package"
    assert exc.command == "apt-get update && apt-get install x"
    assert exc.status == 100
    tail = exc.output_tail.splitlines()
    assert len(tail) == 20
    assert tail[0] == "line 11" and tail[-2] == "line 29" and tail[-1] == "E: broken package"


@pytest.mark.parametrize("status", ["Cancelled", "TimedOut", "Undeliverable",
                                    "DeliveryTimedOut", "ExecutionTimedOut", "AccessDenied"])
def test_every_other_final_status_is_a_failure(stub, aws_session, captured, status):
    _send(stub, ["x"])
    _invocation(stub, status)
    with pytest.raises(errors.RemoteCommandError) as raised:
        ssm.run_command(aws_session, IID, ["x"], timeout=30, interval=0)
    assert raised.value.message.endswith(f"ended {status}: no output")
    assert raised.value.status is None and raised.value.output_tail == ""


def test_run_command_times_out(stub, aws_session, captured):
    _send(stub, ["sleep 1000"])
    _invocation(stub, "InProgress")
    with pytest.raises(errors.WaitTimeout) as raised:
        ssm.run_command(aws_session, IID, ["sleep 1000"], timeout=0, interval=0)
    assert raised.value.exit_code == 12
    assert raised.value.message == f"SSM command {CID} on {IID} still InProgress after 0s"


def test_long_comment_is_cut_and_timeout_is_passed_on(stub, aws_session, captured):
    _send(stub, ["x"], timeout_seconds=1800, document=ssm.WINDOWS_DOCUMENT,
          comment="c" * 100)
    _invocation(stub, "Success")
    ssm.run_command(aws_session, IID, ["x"], document=ssm.WINDOWS_DOCUMENT,
                    comment="c" * 150, timeout=1800.7, interval=0)


def test_send_command_errors_are_translated(stub, aws_session, captured):
    stub("ssm").add_client_error("send_command", "InvalidInstanceId", "not managed")
    with pytest.raises(errors.AWSError) as raised:
        ssm.run_command(aws_session, IID, ["x"], timeout=30, interval=0)
    assert raised.value.code == "InvalidInstanceId"
    assert "send command" in raised.value.message


def test_other_invocation_errors_are_not_retried(stub, aws_session, captured):
    _send(stub, ["x"])
    stub("ssm").add_client_error("get_command_invocation", "InvalidCommandId", "bad id")
    with pytest.raises(errors.AWSError) as raised:
        ssm.run_command(aws_session, IID, ["x"], timeout=30, interval=0)
    assert raised.value.code == "InvalidCommandId"
    assert raised.value.message == "InvalidCommandId (get command invocation): bad id"


def test_failure_tail_keeps_stdout_and_stderr_lines_apart(stub, aws_session, captured):
    _send(stub, ["x"])
    _invocation(stub, "Failed", stdout="compiling", stderr="error: boom\n", code=1)
    with pytest.raises(errors.RemoteCommandError) as raised:
        ssm.run_command(aws_session, IID, ["x"], timeout=30, interval=0)
    assert raised.value.output_tail.splitlines() == ["compiling", "error: boom"]


def test_failure_after_a_not_yet_known_invocation(stub, aws_session, captured):
    """Moved from the end-to-end tier (test_aws_units.py): moto lacks this sequence."""
    command_id = "0b0e1f52-7b37-4e5e-9d1c-3f0c1b2a4d5e"
    stub("ssm").add_response("send_command", {"Command": {"CommandId": command_id}})
    stub("ssm").add_client_error("get_command_invocation", "InvocationDoesNotExist")
    stub("ssm").add_response("get_command_invocation", {
        "Status": "Failed", "ResponseCode": 3, "StandardOutputContent": "step 1\nstep 2\n",
        "StandardErrorContent": "E: broken package\n"})
    with pytest.raises(errors.RemoteCommandError) as failure:
        ssm.run_command(aws_session, "i-0123", ["apt-get install x"], timeout=10, interval=0)
    assert "i-0123" in str(failure.value) and "broken package" in str(failure.value)
    assert "step 2" in failure.value.output_tail and failure.value.status == 3
