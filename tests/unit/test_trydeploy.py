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
                   "TRY_WEB_URL": "https://abc.lambda-url.us-west-2.on.aws"}
    assert "TRY_WEB_URL" not in trydeploy.environment(T, {}, None)


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
