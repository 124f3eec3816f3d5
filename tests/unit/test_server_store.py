"""hgautomation.server.store against moto's in-process AWS (real DynamoDB, S3 and SQS
semantics, no server): definitions, creating, listing and reading tries.

``moto_deployment()`` builds a deployment from store's own definitions (what deploy
creates); the other test_server_* modules use it too.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from hgautomation.server import model, store

REGION = "us-west-2"
JOBS = ("linux", "win-x64")
NODE = "0123456789abcdef0123456789abcdef01234567"
BUNDLE = b"HG20\x00\x00\x00\x0eCompression=GZ" + b"\x00" * 40
NOW = 1796670780.0  # 2026-12-07T19:13:00Z


@dataclass
class MotoDeployment:
    """A deployment in moto: its configuration, clients and what it holds."""

    session: Any
    config: store.Config
    clients: store.Clients

    @property
    def environ(self) -> dict[str, str]:
        return self.config.environment()

    def objects(self) -> list[str]:
        listed = self.clients.s3.list_objects_v2(Bucket=self.config.bucket)
        return [o["Key"] for o in listed.get("Contents", [])]

    def items(self) -> list[dict]:
        return self.clients.table.scan(ConsistentRead=True)["Items"]

    def messages(self, job: str) -> list[dict]:
        """Every message waiting in *job*'s queue (received, then made visible again)."""
        sqs, url = self.clients.sqs, self.config.queues[job]
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                  VisibilityTimeout=0,
                                  WaitTimeSeconds=0).get("Messages", [])
        return [json.loads(m["Body"]) for m in got]

    def put_job(self, try_id: str, job: str, **attributes: Any) -> None:
        """Overwrite a job item's attributes, as the agent would have recorded them."""
        names = {f"#a{i}": k for i, k in enumerate(attributes)}
        values = {f":v{i}": _dynamo(v) for i, v in enumerate(attributes.values())}
        self.clients.table.update_item(
            Key=model.job_key(try_id, job), ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            UpdateExpression="SET " + ", ".join(f"{n} = {v}" for n, v in
                                                zip(names, values)))


def _dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, list):
        return [_dynamo(v) for v in value]
    if isinstance(value, dict):
        return {k: _dynamo(v) for k, v in value.items()}
    return value


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def moto_deployment(jobs: tuple[str, ...] = JOBS) -> Iterator[MotoDeployment]:
    """The table, queues and bucket made from store's definitions, inside mock_aws."""
    import boto3
    from moto import mock_aws

    # tests/conftest.py has moto load IAM's managed policies (for the end-to-end tier):
    # ~0.2 s per backend each request would set up, and nothing here reads them.
    with _environ(MOTO_IAM_LOAD_MANAGED_POLICIES="false"), mock_aws():
        session = boto3.session.Session(aws_access_key_id="testing",
                                        aws_secret_access_key="testing",
                                        region_name=REGION)
        ddb = session.client("dynamodb")
        ddb.create_table(**store.table_definition())
        ddb.update_time_to_live(**store.ttl_definition())
        sqs = session.client("sqs")
        queues = {}
        for job in jobs:
            dlq = sqs.create_queue(QueueName=model.dlq_name(job),
                                   Attributes=store.dlq_attributes())["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])
            queues[job] = sqs.create_queue(
                QueueName=model.queue_name(job),
                Attributes=store.queue_attributes(arn["Attributes"]["QueueArn"]))["QueueUrl"]
        bucket = model.bucket_name("123456789012", REGION)
        s3 = session.client("s3")
        s3.create_bucket(Bucket=bucket,
                         CreateBucketConfiguration={"LocationConstraint": REGION})
        for call, kwargs in store.bucket_definition().items():
            getattr(s3, call)(Bucket=bucket, **kwargs)
        config = store.Config(table=model.TABLE, bucket=bucket, jobs=jobs, queues=queues,
                              web_url="")
        yield MotoDeployment(session, config, store.connect(config, session))


@pytest.fixture
def deployment() -> Iterator[MotoDeployment]:
    with moto_deployment() as d:
        yield d


def submission(**changes: Any) -> store.Submission:
    fields = dict(node=NODE, branch="default", user="Alice <alice@example.org>",
                  message="fix the frobnicator\n\nLonger text.", bundle=BUNDLE)
    fields.update(changes)
    return store.Submission(**fields)


def request(**changes: Any) -> dict:
    """An upload request (the client's JSON) for ``submission(**changes)``."""
    s = submission()
    event = {"bundle": base64.b64encode(s.bundle).decode(), "node": s.node,
             "branch": s.branch, "user": s.user, "message": s.message}
    event.update(changes)
    return event


# -- definitions -------------------------------------------------------------------------

def test_the_table_has_the_recent_index_and_ttl(deployment):
    ddb = deployment.session.client("dynamodb")
    table = ddb.describe_table(TableName=model.TABLE)["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    index = table["GlobalSecondaryIndexes"][0]
    assert index["IndexName"] == model.RECENT_INDEX
    assert [(k["AttributeName"], k["KeyType"]) for k in index["KeySchema"]] == \
        [("kind", "HASH"), ("id", "RANGE")]
    ttl = ddb.describe_time_to_live(TableName=model.TABLE)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires"


def test_a_queue_dead_letters_after_max_attempts(deployment):
    sqs = deployment.clients.sqs
    attrs = sqs.get_queue_attributes(QueueUrl=deployment.config.queues["linux"],
                                     AttributeNames=["All"])["Attributes"]
    policy = json.loads(attrs["RedrivePolicy"])
    assert int(policy["maxReceiveCount"]) == model.MAX_RECEIVES
    assert policy["deadLetterTargetArn"].endswith(model.dlq_name("linux"))


def test_the_environment_round_trips():
    config = store.Config(table="t", bucket="b", jobs=("linux", "win-x64"),
                          queues={"linux": "q1", "win-x64": "q2"}, web_url="https://x",
                          topic="arn:aws:sns:us-west-2:1:hg-try-events", retention_days=7,
                          max_tries_per_hour=3)
    env = config.environment()
    assert env["TRY_QUEUE_WIN_X64"] == "q2"
    assert (env["TRY_TOPIC"], env["TRY_RETENTION_DAYS"], env["TRY_MAX_TRIES_PER_HOUR"]) == \
        ("arn:aws:sns:us-west-2:1:hg-try-events", "7", "3")
    assert store.Config.from_environ(env) == config


def test_the_limits_default_when_unset():
    """An environment from before the limits existed: 30 days, 20 tries an hour."""
    config = store.Config.from_environ({"TRY_TABLE": "t", "TRY_BUCKET": "b"})
    assert (config.retention_days, config.max_tries_per_hour, config.topic) == (30, 20, "")


@pytest.mark.parametrize("env, complaint", [
    ({"TRY_BUCKET": "b"}, "TRY_TABLE not set"),
    ({"TRY_TABLE": "t", "TRY_BUCKET": "b", "TRY_JOBS": "linux"}, "TRY_QUEUE_LINUX not set"),
    ({"TRY_TABLE": "t", "TRY_BUCKET": "b", "TRY_JOBS": "Linux!"}, "invalid job name"),
    ({"TRY_TABLE": "t", "TRY_BUCKET": "b", "TRY_RETENTION_DAYS": "0"},
     r"TRY_RETENTION_DAYS: expected a whole number from 1 to 3650, got '0'"),
    ({"TRY_TABLE": "t", "TRY_BUCKET": "b", "TRY_RETENTION_DAYS": "3651"}, "from 1 to 3650"),
    ({"TRY_TABLE": "t", "TRY_BUCKET": "b", "TRY_MAX_TRIES_PER_HOUR": "x"},
     "TRY_MAX_TRIES_PER_HOUR: expected a whole number from 1 to 1000"),
    ({"TRY_TABLE": "t", "TRY_BUCKET": "b", "TRY_MAX_TRIES_PER_HOUR": "-1"}, "from 1 to"),
])
def test_a_broken_environment_is_named(env, complaint):
    with pytest.raises(RuntimeError, match=complaint):
        store.Config.from_environ(env)


# -- creating and reading -----------------------------------------------------------------

def test_create_try_stores_then_queues(deployment):
    record = store.create_try(deployment.clients, deployment.config, submission(), now=NOW)
    assert model.TRY_ID_RE.match(record.id) and record.id.startswith("20261207T191300Z-")
    assert deployment.objects() == [model.bundle_key(record.id)]
    body = deployment.clients.s3.get_object(Bucket=deployment.config.bucket,
                                            Key=model.bundle_key(record.id))["Body"].read()
    assert body == BUNDLE
    items = {i["sk"]: i for i in deployment.items()}
    assert set(items) == {"META", "JOB#linux", "JOB#win-x64"}
    meta = items["META"]
    assert meta["kind"] == "try" and meta["id"] == record.id and meta["node"] == NODE
    assert meta["created"] == "2026-12-07T19:13:00Z" and meta["state"] == "queued"
    assert meta["jobs"] == ["linux", "win-x64"]
    assert meta["description"] == "fix the frobnicator\n\nLonger text."
    assert int(meta["expires"]) == int(NOW) + 30 * 86400  # the default retention
    assert meta["page_url"] == f"/try/{record.id}"  # relative: no web URL known
    job = items["JOB#linux"]
    assert (job["state"], job["attempt"], job["try_id"], job["name"]) == \
        ("queued", 0, record.id, "linux")
    for name in JOBS:
        assert deployment.messages(name) == [{"try": record.id, "job": name}]


def test_the_retention_sets_the_ttl_and_the_page_url_is_absolute_with_a_web_url(
        deployment):
    """Breaking: expires still 90 days whatever the deployment says; page_url missing."""
    config = store.Config(table=deployment.config.table, bucket=deployment.config.bucket,
                          jobs=("linux",), queues=deployment.config.queues,
                          web_url="https://abc.lambda-url.us-west-2.on.aws",
                          retention_days=7)
    record = store.create_try(deployment.clients, config, submission(), now=NOW)
    items = {i["sk"]: i for i in deployment.items()}
    assert int(items["META"]["expires"]) == int(items["JOB#linux"]["expires"]) == \
        int(NOW) + 7 * 86400
    assert items["META"]["page_url"] == \
        f"https://abc.lambda-url.us-west-2.on.aws/try/{record.id}"


def test_the_bucket_expires_tries_after_the_retention():
    rules = store.bucket_definition(7)["put_bucket_lifecycle_configuration"][
        "LifecycleConfiguration"]["Rules"]
    assert rules == [{"ID": "expire-tries", "Status": "Enabled", "Filter": {"Prefix": "tries/"},
                      "Expiration": {"Days": 7}}]
    assert store.bucket_definition()["put_bucket_lifecycle_configuration"][
        "LifecycleConfiguration"]["Rules"][0]["Expiration"] == {"Days": 30}


def test_a_job_that_cannot_be_queued_is_an_error_not_a_wait(deployment):
    """Breaking: a job left `queued` with no message, waiting for ever."""
    broken = store.Config(table=deployment.config.table, bucket=deployment.config.bucket,
                          jobs=("linux",), queues={"linux": "https://sqs.us-west-2."
                                                   "amazonaws.com/123456789012/nope"})
    with pytest.raises(Exception, match=r"NonExistentQueue|does not exist"):
        store.create_try(deployment.clients, broken, submission(), now=NOW)
    (meta,) = [i for i in deployment.items() if i["sk"] == "META"]
    assert meta["state"] == "error"
    job = store.read_try(deployment.clients.table, meta["id"]).jobs[0]
    assert job.state == "error" and "could not be queued" in job.error


def test_the_document_has_exactly_the_designed_keys(deployment):
    record = store.create_try(deployment.clients, deployment.config, submission(), now=NOW)
    deployment.put_job(record.id, "linux", state="failed", attempt=1, passed=10,
                       failed=["test-a.t"], flaky=["test-f.t"], preexisting=["test-p.t"],
                       skipped=2, duration=12.5,
                       failures=[{"name": "test-a.t", "output": "--- a\n+++ b\n"}],
                       log_key=model.log_key(record.id, "linux", 1))
    doc = store.try_document(deployment.clients.table, record.id)
    assert set(doc) == {"id", "node", "user", "branch", "description", "created", "state",
                        "url", "rerun_of", "jobs"}
    assert doc["url"] == f"/try/{record.id}" and doc["state"] == "running"
    linux, win = doc["jobs"]
    assert set(linux) == {"name", "state", "attempt", "passed", "failed", "flaky",
                          "preexisting", "skipped", "duration", "log_url", "failures"}
    assert linux == {"name": "linux", "state": "failed", "attempt": 1, "passed": 10,
                     "failed": ["test-a.t"], "flaky": ["test-f.t"],
                     "preexisting": ["test-p.t"], "skipped": 2, "duration": 12.5,
                     "log_url": f"/try/{record.id}/log/linux",
                     "failures": [{"name": "test-a.t", "output": "--- a\n+++ b\n"}]}
    assert win["log_url"] is None and win["duration"] is None and win["state"] == "queued"
    assert win["flaky"] == [] and win["preexisting"] == []
    json.dumps(doc)  # no Decimal left


def test_a_missing_or_malformed_try_is_none(deployment):
    assert store.try_document(deployment.clients.table, "20261207T191300Z-00000000") is None
    assert store.read_try(deployment.clients.table, "../../etc") is None


def test_recent_tries_newest_first_at_most_50(deployment):
    for i in range(51):
        store.create_try(deployment.clients, deployment.config,
                         submission(message=f"change {i}"), now=NOW + i)
    records = store.recent_tries(deployment.clients.table)
    assert len(records) == 50
    assert [r.summary for r in records[:3]] == ["change 50", "change 49", "change 48"]
    assert all(len(r.jobs) == 2 and r.jobs[0].name == "linux" for r in records)
    doc = store.list_document(records)
    assert list(doc) == ["tries"]
    assert "failures" not in doc["tries"][0]["jobs"][0]
    assert set(doc["tries"][0]["jobs"][0]) == {"name", "state", "attempt", "passed",
                                               "failed", "flaky", "preexisting", "skipped",
                                               "duration", "log_url"}


def test_the_list_shows_the_jobs_current_states(deployment):
    record = store.create_try(deployment.clients, deployment.config, submission(), now=NOW)
    deployment.put_job(record.id, "linux", state="running", attempt=1)
    (listed,) = store.recent_tries(deployment.clients.table)
    assert [j.state for j in listed.jobs] == ["running", "queued"]
    assert listed.state == "running"


def test_refresh_try_state_stores_the_jobs_verdict(deployment):
    record = store.create_try(deployment.clients, deployment.config, submission(), now=NOW)
    table = deployment.clients.table
    deployment.put_job(record.id, "linux", state="passed")
    assert store.refresh_try_state(table, record.id) == "running"
    deployment.put_job(record.id, "win-x64", state="failed")
    assert store.refresh_try_state(table, record.id) == "failed"
    meta = table.get_item(Key=model.try_key(record.id))["Item"]
    assert meta["state"] == "failed"


def test_the_log_url_is_presigned_and_served_as_text(deployment):
    url = store.log_url(deployment.clients.s3, deployment.config.bucket,
                        "tries/x/linux/1/log.txt")
    assert url.startswith(f"https://{deployment.config.bucket}.s3.")
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=300" in url
    assert "response-content-type=text%2Fplain" in url


class _ShortPages:
    """A table whose queries stop after 2 items, as DynamoDB's do at 1 MB."""

    def __init__(self, table: Any) -> None:
        self._table = table
        self.name, self.meta = table.name, table.meta

    def query(self, **kwargs: Any) -> dict:
        return self._table.query(**dict(kwargs, Limit=min(2, kwargs.get("Limit", 2))))


def test_recent_tries_reads_on_past_a_short_page(deployment):
    """Breaking: a list cut at the first page (long descriptions fill 1 MB quickly)."""
    for i in range(5):
        store.create_try(deployment.clients, deployment.config,
                         submission(message=f"change {i}"), now=NOW + i)
    records = store.recent_tries(_ShortPages(deployment.clients.table), limit=4)
    assert [r.summary for r in records] == ["change 4", "change 3", "change 2", "change 1"]
