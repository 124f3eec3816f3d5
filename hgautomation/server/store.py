"""DynamoDB, S3 and SQS reads and writes of tries, shared by the Lambda functions, the
agent and the client; and the definitions of the table, queues and bucket deploy makes.

``table`` arguments are boto3 DynamoDB ``Table`` resources (numbers come back as
``Decimal``; the records below turn them into ``int``/``float``); ``s3`` and ``sqs``
are boto3 clients. The items are laid out as model.py's docstring says.
"""

from __future__ import annotations

import calendar
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hgautomation.server import model

RECENT_LIMIT = 50
LOG_URL_SECONDS = 300  # lifetime of a presigned log URL

# The functions' environment (deploy sets it, `Config.from_environ` reads it).
ENV_TABLE, ENV_BUCKET, ENV_JOBS, ENV_WEB_URL = "TRY_TABLE", "TRY_BUCKET", "TRY_JOBS", "TRY_WEB_URL"
ENV_TOPIC, ENV_RETENTION_DAYS, ENV_MAX_TRIES = (
    "TRY_TOPIC", "TRY_RETENTION_DAYS", "TRY_MAX_TRIES_PER_HOUR")


def queue_env(job: str) -> str:
    """The environment variable holding job *job*'s queue URL: ``TRY_QUEUE_<JOB>``."""
    return "TRY_QUEUE_" + job.upper().replace("-", "_")


# -- what deploy creates (the unit tests create the same thing from these) ---------------

def table_definition() -> dict:
    """``create_table`` arguments: keys ``pk``/``sk``, on demand, the ``recent`` index."""
    return {
        "TableName": model.TABLE,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                      {"AttributeName": "sk", "KeyType": "RANGE"}],
        "AttributeDefinitions": [{"AttributeName": name, "AttributeType": "S"}
                                 for name in ("pk", "sk", "kind", "id")],
        # Only try items have `kind`: the index is the list of tries, ids sort by time.
        "GlobalSecondaryIndexes": [{
            "IndexName": model.RECENT_INDEX,
            "KeySchema": [{"AttributeName": "kind", "KeyType": "HASH"},
                          {"AttributeName": "id", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        }],
    }


def ttl_definition() -> dict:
    """``update_time_to_live`` arguments: items expire at their ``expires`` (epoch)."""
    return {"TableName": model.TABLE,
            "TimeToLiveSpecification": {"Enabled": True, "AttributeName": "expires"}}


def dlq_attributes() -> dict[str, str]:
    """``create_queue`` Attributes of a job's dead-letter queue."""
    return {"MessageRetentionPeriod": str(14 * 86400), "SqsManagedSseEnabled": "true"}


def queue_attributes(dlq_arn: str) -> dict[str, str]:
    """``create_queue`` Attributes of a job's queue: a message lands in *dlq_arn* after
    ``model.MAX_RECEIVES`` receives; invisible for one lease once received."""
    return {
        "VisibilityTimeout": str(model.DEFAULT_LEASE_SECONDS),
        "MessageRetentionPeriod": str(14 * 86400),
        "ReceiveMessageWaitTimeSeconds": "20",
        "SqsManagedSseEnabled": "true",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn,
                                     "maxReceiveCount": model.MAX_RECEIVES}),
    }


def bucket_definition(retention_days: int = model.DEFAULT_RETENTION_DAYS
                      ) -> dict[str, dict]:
    """The bucket's settings, by the S3 call that applies each (``Bucket`` left out):
    encrypted, public access blocked, objects expire with their try (after
    *retention_days*, as its items do)."""
    return {
        "put_public_access_block": {"PublicAccessBlockConfiguration": {
            "BlockPublicAcls": True, "IgnorePublicAcls": True,
            "BlockPublicPolicy": True, "RestrictPublicBuckets": True}},
        "put_bucket_encryption": {"ServerSideEncryptionConfiguration": {"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}},
        "put_bucket_lifecycle_configuration": {"LifecycleConfiguration": {"Rules": [
            {"ID": "expire-tries", "Status": "Enabled", "Filter": {"Prefix": "tries/"},
             "Expiration": {"Days": retention_days}}]}},
    }


# -- configuration and connections ----------------------------------------------------

@dataclass(frozen=True)
class Config:
    """One deployment as the functions see it: table, bucket, jobs and their queues,
    its topic and its limits."""

    table: str
    bucket: str
    jobs: tuple[str, ...] = ()
    queues: Mapping[str, str] = field(default_factory=dict)  # job -> queue URL
    web_url: str = ""  # the site's root URL; "" until deploy knows it
    topic: str = ""  # the SNS topic's ARN
    retention_days: int = model.DEFAULT_RETENTION_DAYS
    max_tries_per_hour: int = model.DEFAULT_MAX_TRIES_PER_HOUR

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Config:
        """Read ``TRY_TABLE``, ``TRY_BUCKET``, ``TRY_JOBS``, ``TRY_QUEUE_<JOB>``,
        ``TRY_WEB_URL``, ``TRY_TOPIC``, ``TRY_RETENTION_DAYS``,
        ``TRY_MAX_TRIES_PER_HOUR``. A missing or malformed one is a deployment bug:
        RuntimeError."""
        missing = [n for n in (ENV_TABLE, ENV_BUCKET) if not environ.get(n)]
        jobs = tuple(j.strip() for j in environ.get(ENV_JOBS, "").split(",") if j.strip())
        bad = [j for j in jobs if not model.JOB_NAME_RE.match(j)]
        if bad:
            raise RuntimeError(f"{ENV_JOBS}: invalid job name {bad[0]!r}")
        missing += [queue_env(j) for j in jobs if not environ.get(queue_env(j))]
        if missing:
            raise RuntimeError(f"environment: {', '.join(missing)} not set")
        return cls(table=environ[ENV_TABLE], bucket=environ[ENV_BUCKET], jobs=jobs,
                   queues={j: environ[queue_env(j)] for j in jobs},
                   web_url=environ.get(ENV_WEB_URL, "").rstrip("/"),
                   topic=environ.get(ENV_TOPIC, ""),
                   retention_days=_bounded(environ, ENV_RETENTION_DAYS,
                                           model.DEFAULT_RETENTION_DAYS,
                                           model.RETENTION_DAYS_RANGE),
                   max_tries_per_hour=_bounded(environ, ENV_MAX_TRIES,
                                               model.DEFAULT_MAX_TRIES_PER_HOUR,
                                               model.MAX_TRIES_PER_HOUR_RANGE))

    def environment(self) -> dict[str, str]:
        """The functions' environment variables for this configuration."""
        env = {ENV_TABLE: self.table, ENV_BUCKET: self.bucket, ENV_JOBS: ",".join(self.jobs)}
        env.update({queue_env(j): url for j, url in self.queues.items()})
        if self.web_url:
            env[ENV_WEB_URL] = self.web_url
        if self.topic:
            env[ENV_TOPIC] = self.topic
        env[ENV_RETENTION_DAYS] = str(self.retention_days)
        env[ENV_MAX_TRIES] = str(self.max_tries_per_hour)
        return env


def _bounded(environ: Mapping[str, str], name: str, default: int,
             bounds: tuple[int, int]) -> int:
    """A whole number within *bounds* from *environ* (unset: *default*)."""
    text = environ.get(name, "")
    if not text:
        return default
    low, high = bounds
    if not (text.isascii() and text.isdigit() and low <= int(text) <= high):
        raise RuntimeError(f"{name}: expected a whole number from {low} to {high}, "
                           f"got {text!r}")
    return int(text)


@dataclass(frozen=True)
class Clients:
    """The table resource and the S3 and SQS clients of one deployment."""

    table: Any
    s3: Any
    sqs: Any


_warm: dict[str, Clients] = {}  # by table: reused while the function is warm


def warm_clients(config: Config) -> Clients:
    """The deployment's clients, made on a function's first request and reused while the
    function stays warm."""
    if config.table not in _warm:
        _warm[config.table] = connect(config)
    return _warm[config.table]


def connect(config: Config, session: Any = None) -> Clients:
    """Clients for *config* from *session* (a boto3 Session; default: the environment's)."""
    import boto3
    from botocore.config import Config as BotoConfig

    session = session or boto3.session.Session()
    s3_config = BotoConfig(signature_version="s3v4", s3={"addressing_style": "virtual"})
    return Clients(table=session.resource("dynamodb").Table(config.table),
                   s3=session.client("s3", config=s3_config), sqs=session.client("sqs"))


# -- records -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Failure:
    """One failed test: its name and output (the .err diff)."""

    name: str
    output: str


@dataclass(frozen=True)
class Job:
    """One job of a try, as its item says."""

    name: str
    state: str
    attempt: int = 0
    passed: int = 0
    failed: tuple[str, ...] = ()  # the new failures: they fail the job
    skipped: int = 0
    failures: tuple[Failure, ...] = ()
    duration: float | None = None
    flaky: tuple[str, ...] = ()  # failed, then passed when re-run
    preexisting: tuple[str, ...] = ()  # fail on the try's base too
    log_key: str = ""
    started: str = ""
    ended: str = ""
    error: str = ""

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Job:
        return cls(
            name=str(item["name"]), state=str(item.get("state") or model.QUEUED),
            attempt=_int(item.get("attempt")), passed=_int(item.get("passed")),
            failed=_names(item.get("failed")), flaky=_names(item.get("flaky")),
            preexisting=_names(item.get("preexisting")), skipped=_int(item.get("skipped")),
            failures=tuple(Failure(str(f.get("name", "")), str(f.get("output", "")))
                           for f in item.get("failures") or ()),
            duration=None if item.get("duration") is None else float(item["duration"]),
            log_key=str(item.get("log_key") or ""), started=str(item.get("started") or ""),
            ended=str(item.get("ended") or ""), error=str(item.get("error") or ""))


@dataclass(frozen=True)
class Try:
    """One try and its jobs (in the order the try lists them)."""

    id: str
    node: str
    user: str
    branch: str
    description: str
    created: str
    jobs: tuple[Job, ...]
    stored_state: str = model.QUEUED
    rerun_of: str = ""  # the try this one sends again (try --rerun)

    @property
    def state(self) -> str:
        """Derived from the jobs as read (the stored copy may lag a claim)."""
        return model.try_state([j.state for j in self.jobs]) if self.jobs \
            else self.stored_state

    @property
    def summary(self) -> str:
        lines = self.description.strip().splitlines()
        return lines[0] if lines else ""

    @classmethod
    def from_items(cls, meta: Mapping[str, Any], job_items: Iterable[Mapping[str, Any]]) -> Try:
        by_name = {str(i["name"]): Job.from_item(i) for i in job_items}
        names = [str(n) for n in meta.get("jobs") or ()]
        # A job item missing (a partial write) still shows, as queued.
        jobs = [by_name.pop(n, Job(name=n, state=model.QUEUED)) for n in names]
        jobs += [by_name[n] for n in sorted(by_name)]
        return cls(id=str(meta["id"]), node=str(meta.get("node", "")),
                   user=str(meta.get("user", "")), branch=str(meta.get("branch", "")),
                   description=str(meta.get("description", "")),
                   created=str(meta.get("created", "")), jobs=tuple(jobs),
                   stored_state=str(meta.get("state") or model.QUEUED),
                   rerun_of=str(meta.get("rerun_of") or ""))


def _names(value: Any) -> tuple[str, ...]:
    return tuple(str(n) for n in value or ())


def _int(value: Any) -> int:
    return int(value) if isinstance(value, (int, Decimal)) else 0


def log_path(try_id: str, job: str) -> str:
    """The job's log, relative to the site root."""
    return f"{model.page_path(try_id)}/log/{job}"


def job_document(try_id: str, job: Job, failures: bool = True) -> dict:
    """A job as the API document has it (``failures`` left out for the list)."""
    doc = {"name": job.name, "state": job.state, "attempt": job.attempt,
           "passed": job.passed, "failed": list(job.failed), "flaky": list(job.flaky),
           "preexisting": list(job.preexisting), "skipped": job.skipped,
           "duration": job.duration,
           "log_url": log_path(try_id, job.name) if job.log_key else None}
    if failures:
        doc["failures"] = [{"name": f.name, "output": f.output} for f in job.failures]
    return doc


def document(record: Try, failures: bool = True) -> dict:
    """The API document of a try (``/api/try/<id>``; without failures for the list);
    ``rerun_of``: the id of the try it sends again, or None."""
    return {"id": record.id, "node": record.node, "user": record.user,
            "branch": record.branch, "description": record.description,
            "created": record.created, "state": record.state,
            "url": model.page_path(record.id), "rerun_of": record.rerun_of or None,
            "jobs": [job_document(record.id, j, failures) for j in record.jobs]}


# -- writing a try ------------------------------------------------------------------------

@dataclass(frozen=True)
class Submission:
    """A checked upload request."""

    node: str
    branch: str
    user: str
    message: str
    bundle: bytes
    # A rerun: the try it reruns, whose stored bundle (this key) is copied, not sent.
    rerun_of: str = ""
    copy_bundle: str = ""


def iso_time(epoch: float) -> str:
    """``2026-12-07T19:13:00Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def parse_iso_time(text: str) -> float | None:
    """The epoch of an ``iso_time`` string; None if it is not one."""
    try:
        return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None


def create_try(clients: Clients, config: Config, submission: Submission,
               now: float | None = None) -> Try:
    """Store the bundle, the try item and one queued job item per configured job, then
    queue one message per job. A job whose message cannot be sent is recorded as
    ``error`` (it would otherwise wait forever) and the error is raised."""
    if not config.jobs:
        raise RuntimeError(f"{ENV_JOBS}: no job configured")
    now = time.time() if now is None else now
    try_id = model.new_try_id(now)
    expires = int(now) + config.retention_days * 86400
    if submission.copy_bundle:
        clients.s3.copy_object(Bucket=config.bucket, Key=model.bundle_key(try_id),
                               CopySource={"Bucket": config.bucket,
                                           "Key": submission.copy_bundle})
    else:
        clients.s3.put_object(Bucket=config.bucket, Key=model.bundle_key(try_id),
                              Body=submission.bundle, ContentType="application/octet-stream")
    meta = {**model.try_key(try_id), "kind": "try", "id": try_id,
            "node": submission.node, "user": submission.user,
            "branch": submission.branch, "description": submission.message,
            "created": iso_time(now), "jobs": list(config.jobs),
            "bundle_key": model.bundle_key(try_id), "expires": expires,
            "page_url": config.web_url + model.page_path(try_id), "state": model.QUEUED}
    if submission.rerun_of:
        meta["rerun_of"] = submission.rerun_of
    job_items = [{**model.job_key(try_id, job), "try_id": try_id, "name": job,
                  "state": model.QUEUED, "attempt": 0, "passed": 0, "failed": [],
                  "skipped": 0, "failures": [], "expires": expires}
                 for job in config.jobs]
    # Jobs first: the try is listed (through the index) only once they all exist.
    for item in [*job_items, meta]:
        clients.table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
    for job in config.jobs:
        try:
            clients.sqs.send_message(QueueUrl=config.queues[job],
                                     MessageBody=model.message(try_id, job))
        except Exception as exc:
            clients.table.update_item(
                Key=model.job_key(try_id, job),
                UpdateExpression="SET #s = :error, #e = :why, ended = :now",
                ExpressionAttributeNames={"#s": "state", "#e": "error"},
                ExpressionAttributeValues={":error": model.ERROR, ":now": iso_time(now),
                                           ":why": f"could not be queued: {exc}"})
            refresh_try_state(clients.table, try_id)
            raise
    return Try.from_items(meta, job_items)


def refresh_try_state(table: Any, try_id: str) -> str:
    """Store on the try item the state its jobs give it (model.try_state); return it.
    The agent calls it after each change of a job's state."""
    jobs = _query_try(table, try_id)[1]
    state = model.try_state([str(j.get("state")) for j in jobs])
    table.update_item(Key=model.try_key(try_id), UpdateExpression="SET #s = :s",
                      ConditionExpression="attribute_exists(pk)",
                      ExpressionAttributeNames={"#s": "state"},
                      ExpressionAttributeValues={":s": state})
    return state


# -- reading ---------------------------------------------------------------------------------

def _query_try(table: Any, try_id: str) -> tuple[dict | None, list[dict]]:
    """The try's item and its job items (one strongly consistent query)."""
    from boto3.dynamodb.conditions import Key

    items: list[dict] = []
    kwargs: dict[str, Any] = {
        "KeyConditionExpression": Key("pk").eq(model.try_key(try_id)["pk"]),
        "ConsistentRead": True}
    while True:
        page = table.query(**kwargs)
        items += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    meta = next((i for i in items if i.get("sk") == "META"), None)
    return meta, [i for i in items if str(i.get("sk", "")).startswith("JOB#")]


def read_try(table: Any, try_id: str) -> Try | None:
    """The try *try_id* with its jobs, or None if there is none."""
    if not model.TRY_ID_RE.match(try_id):
        return None
    meta, jobs = _query_try(table, try_id)
    return None if meta is None else Try.from_items(meta, jobs)


def try_document(table: Any, try_id: str) -> dict | None:
    """The API document of try *try_id* (``/api/try/<id>``), or None if there is none."""
    record = read_try(table, try_id)
    return None if record is None else document(record)


# What the list reads of each job: everything the list document shows, not the outputs.
_LIST_JOB_FIELDS = ("pk", "sk", "try_id", "name", "state", "attempt", "passed", "failed",
                    "flaky", "preexisting", "skipped", "duration", "log_key")


def recent_tries(table: Any, limit: int = RECENT_LIMIT) -> list[Try]:
    """The newest *limit* tries, newest first, their jobs without failure outputs."""
    from boto3.dynamodb.conditions import Key

    kwargs: dict[str, Any] = {"IndexName": model.RECENT_INDEX, "ScanIndexForward": False,
                              "KeyConditionExpression": Key("kind").eq("try")}
    metas: list[dict] = []
    while len(metas) < limit:  # a page ends at 1 MB: long descriptions make it short
        page = table.query(Limit=limit - len(metas), **kwargs)
        metas += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    keys = [model.job_key(str(m["id"]), str(n)) for m in metas for n in m.get("jobs") or ()]
    jobs: dict[str, list[dict]] = {}
    for item in _batch_get(table, keys, _LIST_JOB_FIELDS):
        jobs.setdefault(str(item.get("try_id")), []).append(item)
    return [Try.from_items(m, jobs.get(str(m["id"]), [])) for m in metas]


def _batch_get(table: Any, keys: list[dict], fields: tuple[str, ...]) -> list[dict]:
    names = {f"#f{i}": name for i, name in enumerate(fields)}
    found: list[dict] = []
    for start in range(0, len(keys), 100):  # BatchGetItem's limit
        request = {table.name: {"Keys": keys[start:start + 100],
                                "ProjectionExpression": ", ".join(names),
                                "ExpressionAttributeNames": names}}
        for _ in range(8):
            answer = table.meta.client.batch_get_item(RequestItems=request)
            found += answer.get("Responses", {}).get(table.name, [])
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("DynamoDB left keys unprocessed: try again")
    return found


def list_document(records: Iterable[Try]) -> dict:
    """``/api/tries``: the tries' documents without their failures."""
    return {"tries": [document(r, failures=False) for r in records]}


@dataclass(frozen=True)
class TestResult:
    """One result of a test in its history."""

    __test__ = False  # not a pytest test class

    try_id: str
    job: str
    result: str
    created: str


def test_history(table: Any, name: str, limit: int = model.HISTORY_LIMIT) -> list[TestResult]:
    """The newest *limit* results of test *name* across tries, newest first."""
    from boto3.dynamodb.conditions import Key

    if not model.TEST_NAME_RE.match(name):
        return []
    page = table.query(KeyConditionExpression=Key("pk").eq(f"TEST#{name}"),
                       ScanIndexForward=False, Limit=limit)
    return [TestResult(str(i.get("try_id", "")), str(i.get("job", "")),
                       str(i.get("result", "")), str(i.get("created", "")))
            for i in page.get("Items", [])]


def history_document(name: str, results: Iterable[TestResult]) -> dict:
    """``/api/test/<name>``: the test's newest results."""
    return {"name": name, "url": model.test_path(name),
            "results": [{"try": r.try_id, "job": r.job, "result": r.result,
                         "created": r.created, "url": model.page_path(r.try_id)}
                        for r in results]}


def log_url(s3: Any, bucket: str, key: str, expires: int = LOG_URL_SECONDS) -> str:
    """A presigned GET URL of a log, served as plain UTF-8 text whatever it contains."""
    return s3.generate_presigned_url(
        "get_object", ExpiresIn=expires,
        Params={"Bucket": bucket, "Key": key,
                "ResponseContentType": "text/plain; charset=utf-8",
                "ResponseContentDisposition": "inline"})
