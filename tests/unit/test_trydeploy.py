"""hgautomation.trydeploy: the desired state, the diffs, the package, and reconcile steps
over a botocore Stubber."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest

from hgautomation import errors, trydeploy
from hgautomation.commands import try_server
from hgautomation.server import model, store

T = trydeploy.Target(partition="aws", account="123456789012", region="us-west-2",
                     jobs=("linux", "win-x"))
OURS = {model.TAG_MANAGED: "1"}


# -- names and policies --------------------------------------------------------------------

def test_names_and_arns():
    assert T.bucket == "hg-try-123456789012-us-west-2"
    assert T.bucket_arn == "arn:aws:s3:::hg-try-123456789012-us-west-2"
    assert T.table_arn == "arn:aws:dynamodb:us-west-2:123456789012:table/hg-try-state"
    assert T.queue_arn("q") == "arn:aws:sqs:us-west-2:123456789012:q"
    assert T.role_arn("r") == "arn:aws:iam::123456789012:role/hg-try/r"
    assert T.agent_policy_arn == "arn:aws:iam::123456789012:policy/hg-try/hg-try-agent"
    # Each dead-letter queue is made before the queue that names it.
    assert T.queue_names == ["hg-try-job-linux-dlq", "hg-try-job-linux",
                             "hg-try-job-win-x-dlq", "hg-try-job-win-x"]
    china = trydeploy.Target(partition="aws-cn", account="1", region="cn-north-1")
    assert china.function_arn("f") == "arn:aws-cn:lambda:cn-north-1:1:function:f"


def _resources(policy: dict) -> list[str]:
    return [r for s in policy["Statement"] for r in s["Resource"]]


def _actions(policy: dict) -> set[str]:
    return {a for s in policy["Statement"] for a in s["Action"]}


@pytest.mark.parametrize("make", [trydeploy.upload_policy, trydeploy.web_policy,
                                  trydeploy.submitters_policy, trydeploy.agent_policy])
def test_every_policy_names_its_resources(make):
    """Least privilege: no statement on "*" or on a whole service; sids unique (IAM
    refuses a policy with two equal ones)."""
    policy = make(T)
    assert all(r != "*" and r.count(":") >= 5 for r in _resources(policy))
    assert not any(a.endswith(":*") for a in _actions(policy))
    sids = [s["Sid"] for s in policy["Statement"]]
    assert len(sids) == len(set(sids))


def test_who_may_do_what():
    assert not _actions(trydeploy.web_policy(T)) & {"dynamodb:PutItem", "dynamodb:UpdateItem",
                                                    "s3:PutObject", "sqs:SendMessage"}
    submitters = trydeploy.submitters_policy(T)
    assert _actions(submitters) == {"lambda:InvokeFunction", "dynamodb:GetItem",
                                    "dynamodb:Query", "dynamodb:BatchGetItem"}
    assert T.function_arn(model.UPLOAD_FUNCTION) in _resources(submitters)
    assert T.function_arn(model.WEB_FUNCTION) not in _resources(submitters)
    upload = trydeploy.upload_policy(T)
    queues = [r for r in _resources(upload) if ":sqs:" in r]
    assert queues == [T.queue_arn("hg-try-job-linux"), T.queue_arn("hg-try-job-win-x")]
    agent = trydeploy.agent_policy(T)
    assert not any(r.endswith("-dlq") for r in _resources(agent))
    assert "sqs:SendMessage" not in _actions(agent)
    # Agents read bundles and write only logs and reports.
    writes = [r for s in agent["Statement"] if "s3:PutObject" in s["Action"]
              for r in s["Resource"]]
    assert all(r.endswith(("/log.txt", "/report.json")) for r in writes)


def test_same_policy_ignores_order_and_single_element_lists():
    a = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["b", "a"], "Resource": ["x"]},
        {"Effect": "Deny", "Action": "c", "Resource": "y"}]}
    b = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Action": ["c"], "Resource": ["y"]},
        {"Effect": "Allow", "Action": ["a", "b"], "Resource": "x"}]}
    assert trydeploy.same_policy(a, b)
    assert trydeploy.same_policy(json.dumps(a), b)
    from urllib.parse import quote

    assert trydeploy.same_policy(quote(json.dumps(a)), b)  # as IAM may return it
    b["Statement"][1]["Action"].append("d")
    assert not trydeploy.same_policy(a, b)


# -- diffs -------------------------------------------------------------------------------------

def test_queue_attributes_come_from_the_store_definitions():
    dlq = T.queue_arn("hg-try-job-linux-dlq")
    assert trydeploy.queue_attributes(T, "hg-try-job-linux") == store.queue_attributes(dlq)
    assert trydeploy.queue_attributes(T, "hg-try-job-linux-dlq") == store.dlq_attributes()


def test_attribute_changes():
    wanted = trydeploy.queue_attributes(T, "hg-try-job-linux")
    redrive = json.loads(wanted["RedrivePolicy"])
    # As SQS gives them back: numbers as text, booleans in any case, extra attributes.
    current = {**wanted, "RedrivePolicy": json.dumps({
        "maxReceiveCount": str(redrive["maxReceiveCount"]),
        "deadLetterTargetArn": redrive["deadLetterTargetArn"]}),
        "SqsManagedSseEnabled": "True", "QueueArn": "arn:x", "DelaySeconds": "0"}
    assert trydeploy.attribute_changes(current, wanted) == {}
    current["VisibilityTimeout"] = "30"
    del current["RedrivePolicy"]
    assert trydeploy.attribute_changes(current, wanted) == {
        "VisibilityTimeout": wanted["VisibilityTimeout"],
        "RedrivePolicy": wanted["RedrivePolicy"]}
    current["RedrivePolicy"] = json.dumps({**redrive, "maxReceiveCount": 3})  # an old deploy
    assert "RedrivePolicy" in trydeploy.attribute_changes(current, wanted)


def test_environment():
    env = trydeploy.environment(T, {"linux": "https://q/linux", "win-x": None},
                                "https://abc.lambda-url.us-west-2.on.aws/")
    assert env == {"TRY_TABLE": "hg-try-state", "TRY_BUCKET": T.bucket,
                   "TRY_JOBS": "linux,win-x", "TRY_QUEUE_LINUX": "https://q/linux",
                   "TRY_WEB_URL": "https://abc.lambda-url.us-west-2.on.aws",
                   "TRY_TOPIC": "arn:aws:sns:us-west-2:123456789012:hg-try-events",
                   "TRY_RETENTION_DAYS": "30", "TRY_MAX_TRIES_PER_HOUR": "20"}
    assert "TRY_WEB_URL" not in trydeploy.environment(T, {}, None)
    limited = trydeploy.Target(partition="aws", account="1", region="eu-west-1",
                               retention_days=7, max_tries_per_hour=2)
    env = trydeploy.environment(limited, {}, None)
    assert (env["TRY_RETENTION_DAYS"], env["TRY_MAX_TRIES_PER_HOUR"]) == ("7", "2")
    assert env["TRY_TOPIC"] == "arn:aws:sns:eu-west-1:1:hg-try-events"


def test_config_changes():
    wanted = trydeploy.function_config(T, model.WEB_FUNCTION, {"A": "1", "B": "2"})
    current = {k: v for k, v in wanted.items() if k != "FunctionName"}
    current["Environment"] = {"Variables": {"B": "2", "A": "1"}}
    current["CodeSha256"] = "whatever"
    assert trydeploy.config_changes(current, wanted) == []
    current.update(Timeout=3, Environment={"Variables": {"A": "1"}})
    assert trydeploy.config_changes(current, wanted) == ["Timeout", "Environment"]
    del current["Environment"]  # Lambda leaves it out when there is none
    assert "Environment" in trydeploy.config_changes(current, wanted)
    assert wanted["Role"] == T.role_arn(model.WEB_ROLE)
    assert wanted["Handler"] == "hgautomation.server.web.handler"


def test_lifecycle_rules_keep_the_others():
    ours = store.bucket_definition()["put_bucket_lifecycle_configuration"][
        "LifecycleConfiguration"]["Rules"]
    other = {"ID": "someone-elses", "Status": "Enabled", "Filter": {"Prefix": "x/"},
             "Expiration": {"Days": 1}}
    assert trydeploy.lifecycle_rules(ours + [other], ours) is None
    assert trydeploy.lifecycle_rules([other], ours) == [other, *ours]
    changed = [dict(ours[0], Expiration={"Days": 1})]
    assert trydeploy.lifecycle_rules(changed + [other], ours) == [other, *ours]


def test_conflicts_name_what_is_not_ours():
    found = trydeploy.Observed(
        bucket={"tags": OURS}, table={"tags": {}},
        queues={"hg-try-job-linux": {"tags": OURS}, "hg-try-job-linux-dlq": None},
        roles={model.UPLOAD_ROLE: {"tags": {model.TAG_MANAGED: "0"}}, model.WEB_ROLE: None},
        group={"group": {"Path": "/"}}, agent_policy=None,
        functions={model.WEB_FUNCTION: {"tags": OURS}, model.UPLOAD_FUNCTION: None})
    assert trydeploy.conflicts(T, found) == [
        "DynamoDB table hg-try-state", "IAM role hg-try-upload", "IAM group hg-try-submitters"]
    assert trydeploy.conflicts(T, trydeploy.Observed()) == []


# -- the package -------------------------------------------------------------------------------

def test_package_is_the_server_part_built_the_same_every_time():
    first, second = trydeploy.package(), trydeploy.package()
    assert first == second
    with zipfile.ZipFile(io.BytesIO(first)) as z:
        infos = z.infolist()
    names = [i.filename for i in infos]
    root = Path(trydeploy.__file__).parent
    assert names == sorted(["hgautomation/__init__.py"] + [
        f"hgautomation/server/{p.name}" for p in (root / "server").glob("*.py")])
    assert "hgautomation/server/upload.py" in names and "hgautomation/server/web.py" in names
    assert {i.date_time for i in infos} == {trydeploy.ZIP_DATE}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}
    with zipfile.ZipFile(io.BytesIO(first)) as z:
        assert z.read("hgautomation/server/model.py") == (root / "server/model.py").read_bytes()
    digest = hashlib.sha256(first).digest()
    import base64

    assert trydeploy.code_sha256(first) == base64.b64encode(digest).decode()


# -- reconcile steps over a Stubber ------------------------------------------------------------

def test_a_drifted_queue_gets_only_what_it_lacks(stub, aws_session, captured):
    name = "hg-try-job-linux"
    wanted = trydeploy.queue_attributes(T, name)
    current = dict(wanted, VisibilityTimeout="5")
    stub("sqs").add_response("set_queue_attributes", {}, {
        "QueueUrl": "https://q", "Attributes": {"VisibilityTimeout": wanted[
            "VisibilityTimeout"]}})
    change = trydeploy._Changes(dry_run=False)
    url = trydeploy._reconcile_queue(aws_session, T, name,
                                     {"url": "https://q", "attributes": current,
                                      "tags": OURS}, change)
    assert url == "https://q"
    assert change.made == [trydeploy.Change("sqs-queue", name, "update", "VisibilityTimeout")]
    assert f"sqs-queue {name}: updating (VisibilityTimeout)" in captured.err_text


def test_a_dry_run_records_and_calls_nothing(stub, aws_session, captured):
    stub("sqs")  # any call would find no response queued and fail
    change = trydeploy._Changes(dry_run=True)
    assert trydeploy._reconcile_queue(aws_session, T, "hg-try-job-linux", None, change) is None
    assert change.made == [trydeploy.Change("sqs-queue", "hg-try-job-linux", "create")]
    assert aws_session.counter.total == 0
    assert "hg-try-job-linux: would create" in captured.err_text


def test_deploy_refuses_before_any_change(stub, aws_session, monkeypatch, captured):
    """A resource under our name without our tag: one error naming it, no change made
    (the first change would otherwise be the bucket's)."""
    stub("sts").add_response("get_caller_identity", {
        "Arn": "arn:aws:iam::123456789012:user/alice", "Account": "123456789012",
        "UserId": "x"})
    monkeypatch.setattr(trydeploy, "observe", lambda session, t: trydeploy.Observed(
        queues={"hg-try-job-linux": {"tags": {}}}))
    with pytest.raises(errors.AWSError, match=r"not ours .*SQS queue hg-try-job-linux; "
                                              r"nothing changed"):
        trydeploy.deploy(aws_session, ["linux"])
    assert aws_session.counter.mutating == 0


def test_job_names():
    assert try_server.job_name("linux-2") == "linux-2"
    for bad in ("", "Linux", "-x", "a_b", "x" * 33, "linux\n"):
        with pytest.raises(errors.UsageError):
            try_server.job_name(bad)


# -- the topic and the limits ------------------------------------------------------------------

def test_the_topic_and_who_may_publish_to_it():
    """Least privilege: agents and the upload function publish to our topic only; the
    web function (read only) not at all."""
    assert T.topic_arn == "arn:aws:sns:us-west-2:123456789012:hg-try-events"
    assert T.topic_arn == model.topic_arn(T.account, T.region)
    china = trydeploy.Target(partition="aws-cn", account="1", region="cn-north-1")
    assert china.topic_arn == "arn:aws-cn:sns:cn-north-1:1:hg-try-events"
    for make in (trydeploy.agent_policy, trydeploy.upload_policy):
        (publish,) = [s for s in make(T)["Statement"] if "sns:Publish" in s["Action"]]
        assert publish["Action"] == ["sns:Publish"] and publish["Resource"] == [T.topic_arn]
    for make in (trydeploy.web_policy, trydeploy.submitters_policy):
        assert not any(a.startswith("sns:") for a in _actions(make(T)))
    # The rate limit reads the submitter's item.
    assert "dynamodb:GetItem" in _actions(trydeploy.upload_policy(T))


def test_a_topic_not_ours_is_a_conflict():
    found = trydeploy.Observed(topic={"attributes": {}, "tags": {}})
    assert trydeploy.conflicts(T, found) == ["SNS topic hg-try-events"]
    found.topic["tags"] = OURS
    assert trydeploy.conflicts(T, found) == []


def test_a_missing_topic_is_created_tagged(stub, aws_session):
    stub("sns").add_response("create_topic", {"TopicArn": T.topic_arn}, {
        "Name": "hg-try-events", "Attributes": trydeploy.TOPIC_ATTRIBUTES,
        "Tags": [{"Key": model.TAG_MANAGED, "Value": "1"}]})
    change = trydeploy._Changes(dry_run=False)
    trydeploy._reconcile_topic(aws_session, T, None, change)
    assert change.made == [trydeploy.Change("sns-topic", "hg-try-events", "create",
                                            "a message when a try ends")]


def test_a_topic_as_it_should_be_is_left_alone_and_drift_repaired(stub, aws_session):
    stub("sns")  # any call would find no response queued and fail
    change = trydeploy._Changes(dry_run=False)
    ours = {"attributes": dict(trydeploy.TOPIC_ATTRIBUTES, TopicArn=T.topic_arn),
            "tags": OURS}
    trydeploy._reconcile_topic(aws_session, T, ours, change)
    assert change.made == [] and aws_session.counter.total == 0
    stub("sns").add_response("set_topic_attributes", {}, {
        "TopicArn": T.topic_arn, "AttributeName": "DisplayName",
        "AttributeValue": trydeploy.TOPIC_ATTRIBUTES["DisplayName"]})
    trydeploy._reconcile_topic(aws_session, T, dict(ours, attributes={}), change)
    assert change.made == [trydeploy.Change("sns-topic", "hg-try-events", "update",
                                            "DisplayName")]


def test_the_lifecycle_follows_the_retention():
    """Breaking: a second deploy with another --retention-days leaves the old rule."""
    thirty = store.bucket_definition(30)["put_bucket_lifecycle_configuration"][
        "LifecycleConfiguration"]["Rules"]
    seven = store.bucket_definition(7)["put_bucket_lifecycle_configuration"][
        "LifecycleConfiguration"]["Rules"]
    assert trydeploy.lifecycle_rules(thirty, thirty) is None
    assert trydeploy.lifecycle_rules(thirty, seven) == seven


def test_the_json_names_the_topic():
    outcome = trydeploy.Outcome(T, False, [], {}, None)
    assert outcome.json()["topic"] == "arn:aws:sns:us-west-2:123456789012:hg-try-events"


def test_the_limit_options_are_bounded_and_default():
    from hgautomation import arguments

    opts = arguments.parse_args(["deploy-try-server"], environ={}).options
    assert (opts.retention_days, opts.max_tries_per_hour) == (30, 20)
    opts = arguments.parse_args(["deploy-try-server", "--retention-days", "7",
                                 "--max-tries-per-hour", "2"], environ={}).options
    assert (opts.retention_days, opts.max_tries_per_hour) == (7, 2)
    for flag, bad in (("--retention-days", "0"), ("--retention-days", "3651"),
                      ("--retention-days", "7d"), ("--max-tries-per-hour", "0"),
                      ("--max-tries-per-hour", "1001"), ("--max-tries-per-hour", "-1")):
        with pytest.raises(errors.UsageError, match="expected a whole number"):
            arguments.parse_args(["deploy-try-server", flag, bad], environ={})


# -- deploy and destroy against moto's in-process AWS --------------------------------------------

@pytest.fixture
def moto_session(monkeypatch):
    """An AWSSession inside mock_aws (IAM without its managed policies: fast)."""
    from moto import mock_aws

    from .helpers import make_session

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_EC2_METADATA_DISABLED", "true"),
                        ("MOTO_IAM_LOAD_MANAGED_POLICIES", "false")):
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield make_session()


def _lifecycle_days(session) -> list[int]:
    rules = session.client("s3").get_bucket_lifecycle_configuration(
        Bucket=model.bucket_name("123456789012", "us-west-2"))["Rules"]
    return [r["Expiration"]["Days"] for r in rules]


def _env(session, name: str) -> dict:
    return session.client("lambda").get_function_configuration(FunctionName=name)[
        "Environment"]["Variables"]


def test_deploy_makes_the_topic_and_the_limits_and_a_second_run_changes_nothing(
        moto_session, captured):
    dry = trydeploy.deploy(moto_session, ["linux"], dry_run=True, code=b"zip")
    assert ("sns-topic", "hg-try-events", "create") in {
        (c.resource, c.name, c.action) for c in dry.changes}
    assert moto_session.client("sns").list_topics()["Topics"] == []

    first = trydeploy.deploy(moto_session, ["linux"], code=b"zip", retention_days=7,
                             max_tries_per_hour=2)
    arn = first.json()["topic"]
    sns = moto_session.client("sns")
    assert [t["TopicArn"] for t in sns.list_topics()["Topics"]] == [arn]
    assert {"Key": model.TAG_MANAGED, "Value": "1"} in sns.list_tags_for_resource(
        ResourceArn=arn)["Tags"]
    assert _lifecycle_days(moto_session) == [7]
    for name in (model.UPLOAD_FUNCTION, model.WEB_FUNCTION):
        env = _env(moto_session, name)
        assert (env["TRY_TOPIC"], env["TRY_RETENTION_DAYS"],
                env["TRY_MAX_TRIES_PER_HOUR"]) == (arn, "7", "2")
    assert trydeploy.deploy(moto_session, ["linux"], code=b"zip", retention_days=7,
                            max_tries_per_hour=2).changes == []

    # Another N: the lifecycle rule and both functions' environment follow.
    again = trydeploy.deploy(moto_session, ["linux"], code=b"zip", retention_days=14)
    assert sorted((c.resource, c.name, c.detail) for c in again.changes) == [
        ("lambda-function", model.UPLOAD_FUNCTION, "environment"),
        ("lambda-function", model.WEB_FUNCTION, "environment"),
        ("s3-bucket", model.bucket_name("123456789012", "us-west-2"),
         "expiry of old tries")]
    assert _lifecycle_days(moto_session) == [14]
    assert _env(moto_session, model.WEB_FUNCTION)["TRY_RETENTION_DAYS"] == "14"
    assert _env(moto_session, model.UPLOAD_FUNCTION)["TRY_MAX_TRIES_PER_HOUR"] == "20"

    planned = trydeploy.destroy(moto_session, dry_run=True)
    assert ("sns-topic", "hg-try-events", "delete") in {
        (c.resource, c.name, c.action) for c in planned}
    trydeploy.destroy(moto_session)
    assert sns.list_topics()["Topics"] == []


def test_destroy_leaves_a_topic_that_is_not_ours(moto_session, captured):
    sns = moto_session.client("sns")
    arn = sns.create_topic(Name=model.TOPIC)["TopicArn"]
    assert trydeploy.destroy(moto_session) == []
    assert [t["TopicArn"] for t in sns.list_topics()["Topics"]] == [arn]
    with pytest.raises(errors.AWSError, match=r"not ours .*SNS topic hg-try-events"):
        trydeploy.deploy(moto_session, ["linux"], code=b"zip")
