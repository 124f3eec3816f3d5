"""hgautomation.aws.session: call counting, botocore error mapping, session set-up."""

from __future__ import annotations

import threading

import pytest
from botocore import exceptions as bx

from hgautomation import errors
from hgautomation.aws import session as session_mod
from hgautomation.aws.session import AWSSession, CallCounter, translate_errors

from .helpers import make_session


def _client_error(code: str, message: str = "went wrong", op: str = "DescribeThings"):
    error = {"Code": code, "Message": message} if code else {"Message": message}
    return bx.ClientError({"Error": error, "ResponseMetadata": {}}, op)


# -- CallCounter -------------------------------------------------------------------

def test_counter_counts_by_operation_and_mutating():
    counter = CallCounter()
    for op in ["DescribeInstances", "DescribeInstances", "RunInstances", "ListRoles",
               "GetCallerIdentity", "TerminateInstances"]:
        counter.record(op)
    assert counter.calls == {"DescribeInstances": 2, "RunInstances": 1, "ListRoles": 1,
                             "GetCallerIdentity": 1, "TerminateInstances": 1}
    assert counter.total == 6
    assert counter.mutating == 2
    assert counter.summary() == (
        "6 AWS calls, 2 mutating AWS calls (DescribeInstances=2, GetCallerIdentity=1, "
        "ListRoles=1, RunInstances=1, TerminateInstances=1)")


def test_empty_counter_summary():
    assert CallCounter().summary() == "0 AWS calls, 0 mutating AWS calls"


def test_counter_is_thread_safe():
    counter = CallCounter()

    def work():
        for _ in range(2000):
            counter.record("CreateTags")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counter.calls == {"CreateTags": 16000}


# -- translate_errors ------------------------------------------------------------------

@pytest.mark.parametrize("exc", [
    bx.NoCredentialsError(),
    bx.PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"),
    bx.ProfileNotFound(profile="nope"),
    bx.NoAuthTokenError(),
])
def test_missing_credentials_map_to_exit_6(exc):
    with pytest.raises(errors.AWSCredentialsError) as raised, translate_errors("sts:Get"):
        raise exc
    assert raised.value.exit_code == 6
    assert raised.value.message.startswith("no usable AWS credentials (sts:Get): ")
    assert "AWS_PROFILE" in raised.value.hint
    assert raised.value.__cause__ is exc  # botocore's own error stays for --debug and the log


@pytest.mark.parametrize("exc", [
    bx.EndpointConnectionError(endpoint_url="https://ec2.example"),
    bx.ConnectTimeoutError(endpoint_url="https://ec2.example"),
    bx.ReadTimeoutError(endpoint_url="https://ec2.example"),
    bx.ConnectionClosedError(endpoint_url="https://ec2.example"),
])
def test_unreachable_endpoint_maps_to_exit_7(exc):
    with pytest.raises(errors.AWSEndpointError) as raised, translate_errors("describe"):
        raise exc
    assert raised.value.exit_code == 7
    assert raised.value.message.startswith("cannot reach AWS (describe): ")
    assert "https://ec2.example" in raised.value.message


def test_client_error_maps_to_exit_5_with_its_code():
    with pytest.raises(errors.AWSError) as raised, translate_errors("describe instances"):
        raise _client_error("InvalidInstanceID.NotFound", "The instance ID 'i-1' does not exist")
    exc = raised.value
    assert type(exc) is errors.AWSError and exc.exit_code == 5
    assert exc.code == "InvalidInstanceID.NotFound"
    assert exc.message == ("InvalidInstanceID.NotFound (describe instances): "
                           "The instance ID 'i-1' does not exist")


def test_client_error_without_code_or_action():
    with pytest.raises(errors.AWSError) as raised, translate_errors():
        raise _client_error("", "mystery")
    assert raised.value.code == ""
    assert raised.value.message == "error: mystery"


@pytest.mark.parametrize("code", ["AuthFailure", "InvalidClientTokenId", "ExpiredToken",
                                  "SignatureDoesNotMatch", "UnrecognizedClientException"])
def test_rejected_credentials_map_to_exit_6(code):
    with pytest.raises(errors.AWSCredentialsError) as raised, translate_errors("x"):
        raise _client_error(code, "nope")
    assert raised.value.exit_code == 6
    assert raised.value.message == f"AWS rejected the credentials (x): {code}: nope"


def test_other_botocore_errors_map_to_exit_5():
    with pytest.raises(errors.AWSError) as raised, translate_errors("waiting"):
        raise bx.WaiterError(name="InstanceRunning", reason="too slow", last_response={})
    assert type(raised.value) is errors.AWSError
    assert raised.value.message.startswith("WaiterError (waiting): ")


def test_non_botocore_exceptions_pass_through():
    with pytest.raises(KeyError), translate_errors("x"):
        raise KeyError("k")
    with pytest.raises(errors.UsageError), translate_errors("x"):
        raise errors.UsageError("mine")


def test_no_exception_no_error():
    with translate_errors("x"):
        value = 1
    assert value == 1


# -- AWSSession -------------------------------------------------------------------------

def test_session_counts_api_calls_not_clients():
    from botocore.stub import Stubber

    session = make_session()  # a fresh one: counting is wired up at construction
    client = session.client("ec2")
    assert client is session.client("ec2")  # cached per service
    with Stubber(client) as ec2:
        ec2.add_response("describe_regions", {"Regions": []})
        ec2.add_response("create_tags", {}, {"Resources": ["i-1"], "Tags": []})
        client.describe_regions()
        client.create_tags(Resources=["i-1"], Tags=[])
    assert session.counter.calls == {"DescribeRegions": 1, "CreateTags": 1}
    assert session.counter.mutating == 1
    assert session.counter.summary() == (
        "2 AWS calls, 1 mutating AWS calls (CreateTags=1, DescribeRegions=1)")


def test_caller_identity(stub, aws_session):
    identity = {"Account": "123456789012", "Arn": "arn:aws:iam::123456789012:user/alice",
                "UserId": "AIDA"}
    stub("sts").add_response("get_caller_identity", identity)
    assert aws_session.caller_identity() == identity
    assert aws_session.counter.calls == {"GetCallerIdentity": 1}


def test_caller_identity_errors_are_translated(stub, aws_session):
    stub("sts").add_client_error("get_caller_identity", "InvalidClientTokenId", "bad token")
    with pytest.raises(errors.AWSCredentialsError, match="sts:GetCallerIdentity"):
        aws_session.caller_identity()


@pytest.mark.parametrize("value,attempts", [(None, 5), ("3", 3), ("", 5)])
def test_max_attempts_from_the_environment(monkeypatch, value, attempts):
    if value is None:
        monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)
    else:
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", value)
    session = make_session()
    assert session.config.retries == {"mode": "adaptive", "total_max_attempts": attempts}
    assert session.config.region_name == "us-west-2"


# Once taken silently (as 1, 1 and the default 5): now exit 3 naming the variable.
@pytest.mark.parametrize("value", ["0", "-4", "lots", "3.5", "\u0663", "9" * 20, "101"])
def test_a_bad_max_attempts_is_exit_3_naming_it(monkeypatch, value):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", value)
    with pytest.raises(errors.ConfigurationError, match="AWS_MAX_ATTEMPTS=") as raised:
        make_session()
    assert raised.value.exit_code == 3


def test_open_session_refuses_an_unknown_region():
    with pytest.raises(errors.AWSEndpointError) as raised:
        session_mod.open_session("mars-north-1")
    assert raised.value.exit_code == 7
    assert "'mars-north-1'" in raised.value.message


def test_known_regions_include_the_usual_ones():
    regions = session_mod.known_regions()
    assert {"us-west-2", "us-east-1", "eu-central-1"} <= regions
    assert "mars-north-1" not in regions


def test_open_session_uses_the_region_and_env_credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    session = session_mod.open_session("eu-west-1")
    assert isinstance(session, AWSSession) and session.region == "eu-west-1"
    assert session.boto.region_name == "eu-west-1"
    assert session.counter.total == 0  # nothing was asked of AWS


def test_open_session_without_credentials_is_exit_6(monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "empty").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "empty"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "empty"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(errors.AWSCredentialsError) as raised:
        session_mod.open_session("us-west-2")
    assert raised.value.exit_code == 6


def test_open_session_with_a_missing_profile_is_exit_6(monkeypatch, tmp_path):
    (tmp_path / "empty").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "empty"))
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    with pytest.raises(errors.AWSCredentialsError, match="no-such-profile"):
        session_mod.open_session("us-west-2")


@pytest.mark.parametrize("value, seconds", [(None, (10, 30)), ("2", (2, 2)), ("", (10, 30))])
def test_timeouts_are_bounded_and_adjustable(monkeypatch, value, seconds):
    if value is None:
        monkeypatch.delenv("HGAUTOMATION_AWS_TIMEOUT", raising=False)
    else:
        monkeypatch.setenv("HGAUTOMATION_AWS_TIMEOUT", value)
    config = make_session().config
    assert (config.connect_timeout, config.read_timeout) == seconds


# "x" was once the default silently; -5 and 20 digits reached botocore.
@pytest.mark.parametrize("value", ["x", "abc", "-5", "0", "9" * 20, "3601", " 5", "5.5"])
def test_a_bad_aws_timeout_is_exit_3_naming_it(monkeypatch, value):
    monkeypatch.setenv("HGAUTOMATION_AWS_TIMEOUT", value)
    with pytest.raises(errors.ConfigurationError, match="HGAUTOMATION_AWS_TIMEOUT=") as raised:
        make_session()
    assert raised.value.exit_code == 3


@pytest.mark.parametrize("name, value", [("AWS_ENDPOINT_URL", "nope"),
                                         ("AWS_ENDPOINT_URL_EC2", "ftp://x"),
                                         ("AWS_ENDPOINT_URL", "http://")])
def test_endpoint_urls_must_be_http_urls(name, value):
    with pytest.raises(errors.AWSEndpointError, match=f"{name}="):
        session_mod.check_endpoint_urls({name: value})


def test_good_endpoint_urls_pass():
    session_mod.check_endpoint_urls({"AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
                                        "AWS_ENDPOINT_URL_STS": "https://sts.example"})


def test_retries_are_announced(monkeypatch, captured):
    session = make_session()
    op = type("Op", (), {"name": "DescribeInstances"})()
    session._announce_retry(attempts=1, caught_exception=TimeoutError(), operation=op)
    session._announce_retry(attempts=2, response=(None, {"ResponseMetadata": {
        "HTTPStatusCode": 503}}), operation=op)
    session._announce_retry(attempts=1, response=(None, {"ResponseMetadata": {
        "HTTPStatusCode": 200}}), operation=op)  # a success: nothing to say
    session._announce_retry(attempts=session.max_attempts, caught_exception=TimeoutError(),
                            operation=op)  # the last attempt: no retry follows
    assert captured.err_text.splitlines() == [
        "    AWS DescribeInstances: TimeoutError; retrying (2/5)",
        "    AWS DescribeInstances: HTTP 503; retrying (3/5)"]
