"""SSM: run a document on an instance and poll it to a final status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hgautomation import errors, poll
from hgautomation.aws.session import AWSSession, client_error_code, translate_errors

FINAL_STATUSES = {"Success", "Failed", "Cancelled", "TimedOut", "Undeliverable",
                  "Terminated", "InvalidPlatform", "AccessDenied", "DeliveryTimedOut",
                  "ExecutionTimedOut"}
LINUX_DOCUMENT = "AWS-RunShellScript"
WINDOWS_DOCUMENT = "AWS-RunPowerShellScript"


@dataclass(frozen=True)
class CommandResult:
    command_id: str
    instance_id: str
    status: str
    stdout: str
    stderr: str


def run_command(session: AWSSession, instance_id: str, commands: Sequence[str], *,
                document: str = LINUX_DOCUMENT, timeout: float = 1800.0,
                interval: float = 2.0, comment: str = "hgautomation") -> CommandResult:
    """Run *commands* through *document* and poll it to a final status (bounded).

    Any final status but Success raises RemoteCommandError with the output tail.
    """
    from botocore.exceptions import ClientError

    ssm = session.client("ssm")
    with translate_errors("send command"):
        command_id = ssm.send_command(
            InstanceIds=[instance_id], DocumentName=document, Comment=comment[:100],
            Parameters={"commands": list(commands)},
            TimeoutSeconds=max(30, int(timeout)))["Command"]["CommandId"]
    status = "Pending"

    def check() -> dict | None:
        nonlocal status
        with translate_errors("get command invocation"):
            try:
                inv = ssm.get_command_invocation(CommandId=command_id,
                                                 InstanceId=instance_id)
            except ClientError as exc:
                # Just after SendCommand the invocation may not exist yet.
                if client_error_code(exc) != "InvocationDoesNotExist":
                    raise
                return None
        status = inv.get("Status", "") or "Pending"
        return inv if status in FINAL_STATUSES else None

    inv = poll.until(check, timeout=timeout, interval=interval,
                     what=f"SSM command {command_id} on {instance_id}",
                     timeout_error=lambda: f"SSM command {command_id} on {instance_id} "
                                             f"still {status} after {timeout:.0f}s")
    result = CommandResult(command_id, instance_id, status,
                           inv.get("StandardOutputContent", ""),
                           inv.get("StandardErrorContent", ""))
    if status != "Success":
        lines = result.stdout.splitlines() + result.stderr.splitlines()
        tail = "\n".join(lines[-20:])
        raise errors.RemoteCommandError(
            f"SSM command {command_id} on {instance_id} ended {status}: "
            + (tail.splitlines()[-1] if tail else "no output"),
            command=" && ".join(commands), status=inv.get("ResponseCode"),
            output_tail=tail)
    return result
