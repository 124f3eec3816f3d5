"""A failure keeps its cause: ``--debug`` shows botocore's or the OS's own error chained
under ours, and the run's log always has it; local faults are not reported as remote ones."""

from __future__ import annotations

import errno
import re
from pathlib import Path

import pytest

from hgautomation import console, errors

CHAINED = "The above exception was the direct cause of the following exception"


@pytest.fixture
def real_aws_calls_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every AWS API call answers with a ClientError, at botocore's one door for calls:
    the whole path from the command line down runs as it does against EC2."""
    from botocore.client import BaseClient
    from botocore.exceptions import ClientError

    def refuse(self, operation_name, api_params):
        raise ClientError({"Error": {"Code": "InvalidParameterValue",
                                     "Message": "stand-in refusal"}}, operation_name)

    monkeypatch.setattr(BaseClient, "_make_api_call", refuse)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    # cli.main configures the process-wide console; the next test gets the old one back.
    monkeypatch.setattr(console, "_current", console.get())


def _run(tmp_path: Path, *extra: str) -> int:
    from hgautomation import cli

    return cli.main(["--state-path", str(tmp_path / "state"), "--aws-region", "us-west-2",
                     *extra, "list-ec2-resources"], prog="hgautomation")


def _log(tmp_path: Path) -> str:
    (log,) = (tmp_path / "state" / "logs").glob("*-list-ec2-resources.log")
    return log.read_text()


def test_debug_shows_the_botocore_cause(real_aws_calls_fail, tmp_path, capsys):
    """Breaking looks like: `raise ... from None` in aws/session.py drops the ClientError,
    and --debug shows only our own AWSError."""
    assert _run(tmp_path, "--debug") == errors.AWSError.exit_code
    err = capsys.readouterr().err
    assert "botocore.exceptions.ClientError: An error occurred (InvalidParameterValue)" in err
    assert CHAINED in err
    assert err.index("ClientError") < err.index(CHAINED) < err.index("AWSError")
    assert err.rstrip().splitlines()[-1].startswith("aws error: InvalidParameterValue")


def test_the_log_has_the_cause_without_debug(real_aws_calls_fail, tmp_path, capsys):
    assert _run(tmp_path) == errors.AWSError.exit_code
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err  # one line on stderr
    log = _log(tmp_path)
    assert re.search(r"botocore\.exceptions\.ClientError: .*InvalidParameterValue", log)
    assert CHAINED in log


# -- a missing local file is not the host's fault -----------------------------------------

class _Stat:
    st_size = 0


class _RemoteWithFile:
    def stat(self, path):
        return _Stat()


class _RemoteWithout:
    def stat(self, path):
        # paramiko's form of SFTP's "no such file": no file name on the error.
        raise FileNotFoundError(errno.ENOENT, "No such file")


def _files(sftp):
    from hgautomation.ssh.transfer import Files

    files = Files(client=None, target="host")
    files._sftp = sftp
    return files


def test_a_download_into_a_missing_local_directory_is_a_local_error(tmp_path):
    """It used to be "remote command failed: host: /remote/file does not exist" (exit 10)."""
    local = tmp_path / "gone" / "report.json"
    with pytest.raises(errors.ConfigurationError) as raised:
        _files(_RemoteWithFile()).get("/remote/report.json", local)
    assert raised.value.message == f"cannot write {local}: No such file or directory"
    assert isinstance(raised.value.__cause__, FileNotFoundError)


def test_a_missing_remote_file_is_still_the_hosts(tmp_path):
    with pytest.raises(errors.RemoteCommandError) as raised:
        _files(_RemoteWithout()).get("/remote/report.json", tmp_path / "report.json")
    assert raised.value.message == "host: /remote/report.json does not exist"
    assert isinstance(raised.value.__cause__, FileNotFoundError)
    assert list(tmp_path.iterdir()) == []  # no .part left behind


# -- a shipped script's exit codes are named once -----------------------------------------

def test_prepare_run_exits_only_with_its_named_codes():
    """Breaking looks like: a bare `exit 3` in the script, or a code the Python does not
    know by name."""
    from hgautomation import linux

    codes = linux.script_exit_codes("prepare-run.sh")
    assert codes == {"EXIT_CANNOT_PREPARE": 3, "EXIT_NOT_CONTRACT": 4}
    text = linux.script("prepare-run.sh").decode()
    exits = re.findall(r"\bexit\s+(\S+)", text)
    assert sorted(set(exits)) == ['"$EXIT_CANNOT_PREPARE"', '"$EXIT_NOT_CONTRACT"'], exits


class _Host:
    target = "host"

    def __init__(self, status: int):
        self.status = status

    def run(self, argv, *, sink, **kw) -> int:
        sink.append("the script's last line")
        return self.status


@pytest.mark.parametrize("name, error", [
    ("EXIT_CANNOT_PREPARE", errors.ConfigurationError),
    ("EXIT_NOT_CONTRACT", errors.HostContractError),
])
def test_prepare_reads_the_codes_by_name(name, error):
    from hgautomation import linux

    status = linux.script_exit_codes("prepare-run.sh")[name]
    with pytest.raises(error, match="host: the script's last line"):
        linux.prepare(_Host(status), "xfs", None)
    with pytest.raises(errors.RemoteCommandError):
        linux.prepare(_Host(1), "xfs", None)
