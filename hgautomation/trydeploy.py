"""Deploy and destroy the Try server: the AWS resources it runs on, reconciled.

:func:`deploy` reads everything first (:func:`observe`), refuses before any change if
a resource with one of our fixed names is not ours (:func:`conflicts`), then creates or
repairs what differs, in dependency order: bucket, queues, table, the SNS topic (a
message when a try ends), roles, the submitters' group, the agents' policy, the web
function and its public URL, the upload function (Lambda makes each function's log
group on its first run). A second run makes
no mutating call. With ``dry_run`` nothing changes
and the changes are only listed. :func:`destroy` removes what carries our tag
(``model.TAG_MANAGED``; the group, which IAM cannot tag, by its path) under our fixed
names, and nothing else.

The functions' code is :func:`package`: ``hgautomation/__init__.py`` and
``hgautomation/server/*.py`` zipped the same way every time, so an unchanged package
has the same ``CodeSha256`` and is not uploaded again.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hgautomation import console, errors
from hgautomation.aws.session import AWSSession, client_error_code, translate_errors
from hgautomation.server import model, store

PATH = f"/{model.PREFIX}/"  # IAM path of our roles, group and policy (not aws/iam.py's)
TAGS = {model.TAG_MANAGED: "1"}
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can say: no build time in the zip

# name -> (handler, role, timeout seconds, memory MB)
FUNCTIONS: dict[str, tuple[str, str, int, int]] = {
    model.UPLOAD_FUNCTION: ("hgautomation.server.upload.handler", model.UPLOAD_ROLE, 60, 512),
    model.WEB_FUNCTION: ("hgautomation.server.web.handler", model.WEB_ROLE, 15, 256),
}
DESCRIPTIONS = {
    model.UPLOAD_FUNCTION: "Mercurial Try server: takes a bundle, records and queues a try",
    model.WEB_FUNCTION: "Mercurial Try server: the results pages (read only)",
}
# The public URL needs both (Lambda's function URL permission model since 2025).
URL_PERMISSIONS = (
    ("hg-try-url-public", {"Action": "lambda:InvokeFunctionUrl", "Principal": "*",
                           "FunctionUrlAuthType": "NONE"}),
    ("hg-try-url-invoke", {"Action": "lambda:InvokeFunction", "Principal": "*",
                           "InvokedViaFunctionUrl": True}),
)
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
}
ROLE_CREATE_WAIT = 90.0  # seconds a new role may take until Lambda can assume it


# -- what one deployment is called -------------------------------------------------

@dataclass(frozen=True)
class Target:
    """One deployment: its account, region, jobs and limits, and every name and ARN
    they give."""

    partition: str
    account: str
    region: str
    jobs: tuple[str, ...] = model.DEFAULT_JOBS
    retention_days: int = model.DEFAULT_RETENTION_DAYS
    max_tries_per_hour: int = model.DEFAULT_MAX_TRIES_PER_HOUR

    @property
    def bucket(self) -> str:
        return model.bucket_name(self.account, self.region)

    @property
    def table(self) -> str:
        return model.TABLE

    def _arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        region = self.region if regional else ""
        account = "" if service == "s3" else self.account
        return f"arn:{self.partition}:{service}:{region}:{account}:{resource}"

    @property
    def bucket_arn(self) -> str:
        return self._arn("s3", self.bucket, regional=False)

    @property
    def table_arn(self) -> str:
        return self._arn("dynamodb", f"table/{self.table}")

    def queue_arn(self, name: str) -> str:
        return self._arn("sqs", name)

    def function_arn(self, name: str) -> str:
        return self._arn("lambda", f"function:{name}")

    def log_group_arn(self, function: str) -> str:
        return self._arn("logs", f"log-group:{log_group(function)}")

    def role_arn(self, name: str) -> str:
        return self._arn("iam", f"role{PATH}{name}", regional=False)

    @property
    def topic_arn(self) -> str:
        return model.topic_arn(self.account, self.region, self.partition)

    @property
    def agent_policy_arn(self) -> str:
        return self._arn("iam", f"policy{PATH}{model.AGENT_POLICY}", regional=False)

    @property
    def queue_names(self) -> list[str]:
        """Every queue, each dead-letter queue before the queue that sends to it."""
        return [n for job in self.jobs for n in (model.dlq_name(job), model.queue_name(job))]


def log_group(function: str) -> str:
    return f"/aws/lambda/{function}"


def target(session: AWSSession, jobs: Sequence[str], **limits: int) -> Target:
    """The deployment of the caller's account in the session's region (*limits*: the
    Target's ``retention_days``, ``max_tries_per_hour``)."""
    arn = session.caller_identity()["Arn"]
    return Target(partition=arn.split(":")[1], account=arn.split(":")[4],
                  region=session.region, jobs=tuple(jobs), **limits)


# -- the desired state: pure functions of the target ----------------------------------

# What reading tries takes (server.store: a try's items, the recent index, a batch of tries).
READ_TRIES = ("dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:Query")


def _statement(actions: Sequence[str], resources: Sequence[str], sid: str) -> dict:
    return {"Sid": sid, "Effect": "Allow", "Action": sorted(actions),
            "Resource": sorted(resources)}


def _policy(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _logs_statement(t: Target, function: str) -> dict:
    # Lambda makes the function's log group on its first run; nothing else is written.
    return _statement(["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                      [t.log_group_arn(function), f"{t.log_group_arn(function)}:*"],
                      "FunctionLogs")


def upload_policy(t: Target) -> dict:
    """The upload function: store the bundle, record the try, queue its jobs; tell
    the topic when a cancel ends a try."""
    return _policy(
        _statement(["s3:PutObject"], [f"{t.bucket_arn}/tries/*"], "Bundles"),
        # A rerun copies its try's bundle (CopyObject reads the source).
        _statement(["s3:GetObject"], [f"{t.bucket_arn}/tries/*/bundle.hg"], "RerunBundles"),
        # UpdateItem and Query: a job that cannot be queued is recorded as an error.
        # GetItem: the submitter's rate-limit item.
        _statement(["dynamodb:BatchWriteItem", "dynamodb:GetItem", "dynamodb:PutItem",
                    "dynamodb:Query", "dynamodb:UpdateItem"], [t.table_arn], "Tries"),
        _statement(["sqs:SendMessage"], [t.queue_arn(model.queue_name(j)) for j in t.jobs],
                   "Jobs"),
        _statement(["sns:Publish"], [t.topic_arn], "Events"),
        _logs_statement(t, model.UPLOAD_FUNCTION))


def web_policy(t: Target) -> dict:
    """The web function: read tries (and the recent index), presign log downloads."""
    return _policy(
        _statement(READ_TRIES, [t.table_arn, f"{t.table_arn}/index/*"], "Tries"),
        _statement(["s3:GetObject"], [f"{t.bucket_arn}/tries/*"], "JobLogs"),
        _logs_statement(t, model.WEB_FUNCTION))


def submitters_policy(t: Target) -> dict:
    """Members of the group submit tries and read their state with their own keys."""
    return _policy(
        _statement(["lambda:InvokeFunction"], [t.function_arn(model.UPLOAD_FUNCTION)],
                   "Submit"),
        _statement(READ_TRIES, [t.table_arn, f"{t.table_arn}/index/*"], "ReadTries"))


def agent_policy(t: Target) -> dict:
    """Agents take jobs, renew and record them, fetch bundles, store logs and reports."""
    return _policy(
        _statement(["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueUrl",
                    "sqs:ReceiveMessage"],
                   [t.queue_arn(model.queue_name(j)) for j in t.jobs], "Jobs"),
        _statement(["dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"],
                   [t.table_arn, f"{t.table_arn}/index/*"], "State"),
        _statement(["s3:GetObject"], [f"{t.bucket_arn}/tries/*/bundle.hg"], "Bundles"),
        _statement(["s3:PutObject"], [f"{t.bucket_arn}/tries/*/log.txt",
                                      f"{t.bucket_arn}/tries/*/report.json"], "Results"),
        _statement(["sns:Publish"], [t.topic_arn], "Events"))


def queue_attributes(t: Target, name: str) -> dict[str, str]:
    """The attributes queue ``name`` must have (a job's queue redrives to its DLQ)."""
    for job in t.jobs:
        if name == model.queue_name(job):
            return store.queue_attributes(t.queue_arn(model.dlq_name(job)))
    return store.dlq_attributes()


def _same_attribute(key: str, current: str | None, wanted: str) -> bool:
    if current is None:
        return False
    if key == "RedrivePolicy":
        try:
            have = json.loads(current)
        except ValueError:
            return False
        want = json.loads(wanted)
        return (have.get("deadLetterTargetArn") == want["deadLetterTargetArn"]
                and str(have.get("maxReceiveCount")) == str(want["maxReceiveCount"]))
    return str(current).lower() == wanted.lower()


def attribute_changes(current: dict[str, str], wanted: dict[str, str]) -> dict[str, str]:
    """The wanted attributes the queue does not have yet (extra attributes stay)."""
    return {k: v for k, v in wanted.items() if not _same_attribute(k, current.get(k), v)}


def environment(t: Target, queue_urls: dict[str, str | None],
                web_url: str | None) -> dict[str, str]:
    """Both functions' environment (TRY_WEB_URL once the web function's URL exists; a
    queue's URL once it exists)."""
    return store.Config(table=t.table, bucket=t.bucket, jobs=t.jobs,
                        queues={j: u for j, u in queue_urls.items() if u},
                        web_url=(web_url or "").rstrip("/"), topic=t.topic_arn,
                        retention_days=t.retention_days,
                        max_tries_per_hour=t.max_tries_per_hour).environment()


# The topic's attributes deploy sets (DisplayName: the sender's name of an e-mail).
TOPIC_ATTRIBUTES = {"DisplayName": "Mercurial Try server"}


def function_config(t: Target, name: str, env: dict[str, str]) -> dict:
    """UpdateFunctionConfiguration's arguments for function ``name``."""
    handler, role, timeout, memory = FUNCTIONS[name]
    return {"FunctionName": name, "Runtime": model.LAMBDA_RUNTIME, "Handler": handler,
            "Role": t.role_arn(role), "Timeout": timeout, "MemorySize": memory,
            "Description": DESCRIPTIONS[name], "Environment": {"Variables": env}}


def config_changes(current: dict, wanted: dict) -> list[str]:
    """The fields of a function's configuration that differ from ``wanted``."""
    changed = []
    for key, value in wanted.items():
        if key == "FunctionName":
            continue
        have = current.get(key)
        if key == "Environment":
            have = {"Variables": (have or {}).get("Variables") or {}}
        if have != value:
            changed.append(key)
    return changed


def package() -> bytes:
    """The functions' zip: the package's ``__init__`` and ``server/``, byte for byte the
    same for the same sources (sorted, fixed dates and modes, stored: compressors differ
    between zlib builds, the sources are small)."""
    root = Path(__file__).resolve().parent
    files = [root / "__init__.py", *sorted((root / "server").glob("*.py"))]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for path in sorted(files, key=lambda p: p.relative_to(root.parent).as_posix()):
            info = zipfile.ZipInfo(path.relative_to(root.parent).as_posix(), ZIP_DATE)
            info.external_attr = 0o100644 << 16
            info.create_system = 3
            z.writestr(info, path.read_bytes())
    return out.getvalue()


def code_sha256(data: bytes) -> str:
    """How Lambda reports a package (``CodeSha256``): base64 of its SHA-256."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def same_policy(a: Any, b: Any) -> bool:
    """Whether two IAM policy documents say the same (order of lists aside, a single
    value the same as a one-element list, as IAM may give them back)."""
    return _norm(_document(a)) == _norm(_document(b))


def _document(value: Any) -> Any:
    if isinstance(value, str):
        import urllib.parse

        try:
            return json.loads(value)
        except ValueError:
            return json.loads(urllib.parse.unquote(value))
    return value


def _norm(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_norm(v) for v in value]
        if len(items) == 1 and not isinstance(items[0], (dict, list)):
            return items[0]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    return value


# -- what is there ----------------------------------------------------------------------

@dataclass
class Observed:
    """What exists of a deployment, read before any change (None: missing)."""

    bucket: dict | None = None
    queues: dict[str, dict | None] = field(default_factory=dict)  # queue name -> ...
    table: dict | None = None
    topic: dict | None = None
    roles: dict[str, dict | None] = field(default_factory=dict)
    group: dict | None = None
    agent_policy: dict | None = None
    functions: dict[str, dict | None] = field(default_factory=dict)


_MISSING = {"NoSuchBucket", "NoSuchEntity", "ResourceNotFoundException",
            "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "404",
            "NoSuchTagSet", "NoSuchTagSetError", "NotFound",
            "NoSuchPublicAccessBlockConfiguration", "NoSuchLifecycleConfiguration",
            "ServerSideEncryptionConfigurationNotFoundError"}


def _get(call: Callable[..., dict], **kwargs: Any) -> dict | None:
    """The call's answer, or None when AWS says the thing is not there."""
    from botocore.exceptions import ClientError

    try:
        return call(**kwargs)
    except ClientError as exc:
        if client_error_code(exc) in _MISSING:
            return None
        raise


def _tags(pairs: Iterable[dict] | dict | None) -> dict[str, str]:
    if isinstance(pairs, dict):
        return dict(pairs)
    return {p.get("Key", p.get("key")): p.get("Value", p.get("value")) for p in pairs or ()}


def observe(session: AWSSession, t: Target) -> Observed:
    """Read every resource of the deployment; no call changes anything."""
    found = Observed()
    with translate_errors(f"S3 bucket {t.bucket}"):
        found.bucket = _observe_bucket(session, t.bucket)
    sqs = session.client("sqs")
    for name in t.queue_names:
        with translate_errors(f"SQS queue {name}"):
            found.queues[name] = _observe_queue(sqs, name)
    with translate_errors(f"DynamoDB table {t.table}"):
        found.table = _observe_table(session, t)
    with translate_errors(f"SNS topic {model.TOPIC}"):
        found.topic = _observe_topic(session.client("sns"), t.topic_arn)
    iam = session.client("iam")
    for role in (model.UPLOAD_ROLE, model.WEB_ROLE):
        with translate_errors(f"IAM role {role}"):
            found.roles[role] = _observe_role(iam, role)
    with translate_errors(f"IAM group {model.SUBMITTERS_GROUP}"):
        found.group = _observe_group(iam)
    with translate_errors(f"IAM policy {model.AGENT_POLICY}"):
        found.agent_policy = _observe_policy(iam, t.agent_policy_arn)
    lam = session.client("lambda")
    for function in FUNCTIONS:
        with translate_errors(f"Lambda function {function}"):
            found.functions[function] = _observe_function(lam, function)
    return found


def _observe_bucket(session: AWSSession, name: str) -> dict | None:
    from botocore.exceptions import ClientError

    s3 = session.client("s3")
    try:
        s3.get_bucket_location(Bucket=name)  # (HeadBucket would count as a change)
    except ClientError as exc:
        code = client_error_code(exc)
        if code in ("404", "NoSuchBucket"):
            return None
        if code in ("403", "AccessDenied"):
            raise errors.AWSError(
                f"S3 bucket {name} exists but this account cannot read it",
                hint="bucket names are global: is it another account's?") from exc
        raise
    tagging = _get(s3.get_bucket_tagging, Bucket=name) or {}
    encryption = _get(s3.get_bucket_encryption, Bucket=name) or {}
    block = _get(s3.get_public_access_block, Bucket=name) or {}
    lifecycle = _get(s3.get_bucket_lifecycle_configuration, Bucket=name) or {}
    return {"tags": _tags(tagging.get("TagSet")), "lifecycle": lifecycle.get("Rules", []),
            "encryption": encryption.get("ServerSideEncryptionConfiguration", {}).get(
                "Rules", []),
            "public_access_block": block.get("PublicAccessBlockConfiguration")}


def _observe_queue(sqs: Any, name: str) -> dict | None:
    url = _get(sqs.get_queue_url, QueueName=name)
    if url is None:
        return None
    url = url["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    return {"url": url, "attributes": attributes.get("Attributes", {}),
            "tags": sqs.list_queue_tags(QueueUrl=url).get("Tags", {})}


def _observe_table(session: AWSSession, t: Target) -> dict | None:
    db = session.client("dynamodb")
    table = _get(db.describe_table, TableName=t.table)
    if table is None:
        return None
    table = table["Table"]
    ttl = db.describe_time_to_live(TableName=t.table)["TimeToLiveDescription"]
    tags = db.list_tags_of_resource(ResourceArn=table["TableArn"]).get("Tags", [])
    return {"table": table, "ttl": ttl, "tags": _tags(tags)}


def _observe_topic(sns: Any, arn: str) -> dict | None:
    attributes = _get(sns.get_topic_attributes, TopicArn=arn)
    if attributes is None:
        return None
    tags = sns.list_tags_for_resource(ResourceArn=arn).get("Tags", [])
    return {"attributes": attributes.get("Attributes", {}), "tags": _tags(tags)}


def _observe_role(iam: Any, name: str) -> dict | None:
    role = _get(iam.get_role, RoleName=name)
    if role is None:
        return None
    policies = {p: iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"]
                for p in iam.list_role_policies(RoleName=name)["PolicyNames"]}
    attached = [p["PolicyArn"] for p in
                iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]]
    tags = iam.list_role_tags(RoleName=name).get("Tags", [])
    return {"role": role["Role"], "policies": policies, "attached": attached,
            "tags": _tags(tags)}


def _observe_group(iam: Any) -> dict | None:
    name = model.SUBMITTERS_GROUP
    group = _get(iam.get_group, GroupName=name)
    if group is None:
        return None
    users = [u["UserName"] for page in iam.get_paginator("get_group").paginate(
        GroupName=name) for u in page.get("Users", [])]
    policies = {p: iam.get_group_policy(GroupName=name, PolicyName=p)["PolicyDocument"]
                for p in iam.list_group_policies(GroupName=name)["PolicyNames"]}
    attached = [p["PolicyArn"] for p in
                iam.list_attached_group_policies(GroupName=name)["AttachedPolicies"]]
    return {"group": group["Group"], "users": users,
            "policies": policies, "attached": attached}


def _observe_policy(iam: Any, arn: str) -> dict | None:
    policy = _get(iam.get_policy, PolicyArn=arn)
    if policy is None:
        return None
    policy = policy["Policy"]
    version = iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])
    versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    tags = iam.list_policy_tags(PolicyArn=arn).get("Tags", [])
    return {"policy": policy, "document": version["PolicyVersion"]["Document"],
            "versions": versions, "tags": _tags(tags)}


def _observe_function(lam: Any, name: str) -> dict | None:
    function = _get(lam.get_function, FunctionName=name)
    if function is None:
        return None
    url = _get(lam.get_function_url_config, FunctionName=name)
    policy = _get(lam.get_policy, FunctionName=name)
    statements = json.loads(policy["Policy"]).get("Statement", []) if policy else []
    return {"config": function["Configuration"], "tags": function.get("Tags") or {},
            "url": url, "statements": statements}


def conflicts(t: Target, found: Observed) -> list[str]:
    """Resources under our fixed names that are not ours: deploy touches none of them."""
    bad = []

    def check(kind: str, name: str, entry: dict | None) -> None:
        if entry is not None and entry["tags"].get(model.TAG_MANAGED) != "1":
            bad.append(f"{kind} {name}")

    check("S3 bucket", t.bucket, found.bucket)
    for name, entry in found.queues.items():
        check("SQS queue", name, entry)
    check("DynamoDB table", model.TABLE, found.table)
    check("SNS topic", model.TOPIC, found.topic)
    for name, entry in found.roles.items():
        check("IAM role", name, entry)
    if found.group is not None and found.group["group"].get("Path") != PATH:
        bad.append(f"IAM group {model.SUBMITTERS_GROUP}")
    check("IAM policy", model.AGENT_POLICY, found.agent_policy)
    for name, entry in found.functions.items():
        check("Lambda function", name, entry)
    return bad


# -- changes -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Change:
    """One change made (or, in a dry run, to be made) to one resource."""

    resource: str  # "s3-bucket", "sqs-queue", "lambda-function", ...
    name: str
    action: str  # "create", "update", "delete"
    detail: str = ""

    def json(self) -> dict:
        return {"resource": self.resource, "name": self.name, "action": self.action,
                "detail": self.detail}


class _Changes:
    """Records each change, says it, and makes it unless this is a dry run."""

    def __init__(self, dry_run: bool):
        self.dry_run = dry_run
        self.made: list[Change] = []

    def __call__(self, resource: str, name: str, action: str, detail: str,
                 call: Callable[[], Any] | None = None) -> Any:
        self.made.append(Change(resource, name, action, detail))
        verb = {"create": "creating", "update": "updating", "delete": "deleting"}[action]
        if self.dry_run:
            verb = f"would {action}"
        console.get().info(f"{resource} {name}: {verb}{f' ({detail})' if detail else ''}")
        if self.dry_run or call is None:
            return None
        with translate_errors(f"{resource} {name}"):
            return call()


@dataclass
class Outcome:
    """What deploy did or would do, and where the server is."""

    target: Target
    dry_run: bool
    changes: list[Change]
    queues: dict[str, str | None]  # job -> URL (None: not created yet, dry run)
    web_url: str | None

    def json(self) -> dict:
        t = self.target
        return {"dry_run": self.dry_run, "region": t.region, "account": t.account,
                "changes": [c.json() for c in self.changes],
                "upload_function": model.UPLOAD_FUNCTION, "web_function": model.WEB_FUNCTION,
                "web_url": self.web_url, "bucket": t.bucket, "table": t.table,
                "queues": dict(self.queues), "jobs": list(t.jobs),
                "submitters_group": model.SUBMITTERS_GROUP,
                "agent_policy": t.agent_policy_arn, "topic": t.topic_arn}


def deploy(session: AWSSession, jobs: Sequence[str], *, dry_run: bool = False,
           code: bytes | None = None,
           retention_days: int = model.DEFAULT_RETENTION_DAYS,
           max_tries_per_hour: int = model.DEFAULT_MAX_TRIES_PER_HOUR) -> Outcome:
    """Create or repair the Try server in the session's account and region: tries kept
    *retention_days*, at most *max_tries_per_hour* per submitter."""
    t = target(session, jobs, retention_days=retention_days,
               max_tries_per_hour=max_tries_per_hour)
    found = observe(session, t)
    bad = conflicts(t, found)
    if bad:
        raise errors.AWSError(
            f"not ours (no {model.TAG_MANAGED} tag): {', '.join(bad)}; nothing changed",
            hint="delete or rename them, or deploy in another account or region")
    change = _Changes(dry_run)
    _reconcile_bucket(session, t, found.bucket, change)
    urls = {name: _reconcile_queue(session, t, name, found.queues[name], change)
            for name in t.queue_names}
    _reconcile_table(session, t, found.table, change)
    _reconcile_topic(session, t, found.topic, change)
    roles = {model.UPLOAD_ROLE: upload_policy(t), model.WEB_ROLE: web_policy(t)}
    for role, document in roles.items():
        _reconcile_role(session, role, document, found.roles[role], change)
    _reconcile_group(session, t, found.group, change)
    _reconcile_agent_policy(session, t, found.agent_policy, change)
    queue_urls = {job: urls[model.queue_name(job)] for job in t.jobs}
    code = package() if code is None else code
    web = found.functions[model.WEB_FUNCTION]
    web_url = (web or {}).get("url", {}) and web["url"].get("FunctionUrl")
    env = environment(t, queue_urls, web_url or None)
    _reconcile_function(session, t, model.WEB_FUNCTION, code, env, web, change)
    new_url = _reconcile_url(session, t, web, change)
    if new_url != web_url:
        web_url = new_url
        env = environment(t, queue_urls, web_url)
        if not dry_run:  # the URL is new: the web function learns it too
            _reconcile_function(session, t, model.WEB_FUNCTION, code, env,
                                _observe_function(session.client("lambda"),
                                                  model.WEB_FUNCTION), change)
    _reconcile_function(session, t, model.UPLOAD_FUNCTION, code, env,
                        found.functions[model.UPLOAD_FUNCTION], change)
    return Outcome(t, dry_run, change.made, queue_urls,
                   web_url.rstrip("/") if web_url else None)


def _reconcile_bucket(session: AWSSession, t: Target, bucket: dict | None,
                      change: _Changes) -> None:
    s3 = session.client("s3")
    name = t.bucket
    wanted = store.bucket_definition(t.retention_days)
    if bucket is None:
        kwargs: dict[str, Any] = {"Bucket": name}
        if t.region != "us-east-1":  # us-east-1 takes no location constraint
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": t.region}
        change("s3-bucket", name, "create", "", lambda: s3.create_bucket(**kwargs))
        bucket = {"tags": {}, "encryption": [], "public_access_block": None, "lifecycle": []}
    block = wanted["put_public_access_block"]
    if bucket["public_access_block"] != block["PublicAccessBlockConfiguration"]:
        change("s3-bucket", name, "update", "block public access",
               lambda: s3.put_public_access_block(Bucket=name, **block))
    if not _encrypted(bucket["encryption"]):
        change("s3-bucket", name, "update", "default encryption",
               lambda: s3.put_bucket_encryption(Bucket=name,
                                                **wanted["put_bucket_encryption"]))
    rules = lifecycle_rules(bucket["lifecycle"], wanted["put_bucket_lifecycle_configuration"][
        "LifecycleConfiguration"]["Rules"])
    if rules is not None:
        change("s3-bucket", name, "update", "expiry of old tries",
               lambda: s3.put_bucket_lifecycle_configuration(
                   Bucket=name, LifecycleConfiguration={"Rules": rules}))
    if bucket["tags"].get(model.TAG_MANAGED) != "1":
        tags = {**bucket["tags"], **TAGS}
        change("s3-bucket", name, "update", "tags",
               lambda: s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [
                   {"Key": k, "Value": v} for k, v in sorted(tags.items())]}))


def lifecycle_rules(current: list[dict], ours: list[dict]) -> list[dict] | None:
    """The bucket's lifecycle rules with ours as we want them (others kept), or None
    when they already are."""
    by_id = {r.get("ID"): r for r in current}
    if all(_lifecycle_same(by_id.get(r["ID"]), r) for r in ours):
        return None
    mine = {r["ID"] for r in ours}
    return [r for r in current if r.get("ID") not in mine] + list(ours)


def _lifecycle_same(have: dict | None, want: dict) -> bool:
    if have is None:
        return False
    prefix = (have.get("Filter") or {}).get("Prefix", have.get("Prefix"))
    return (have.get("Status") == want["Status"]
            and prefix == want["Filter"]["Prefix"]
            and have.get("Expiration") == want["Expiration"])


def _reconcile_topic(session: AWSSession, t: Target, topic: dict | None,
                     change: _Changes) -> None:
    sns = session.client("sns")
    if topic is None:
        change("sns-topic", model.TOPIC, "create", "a message when a try ends",
               lambda: sns.create_topic(Name=model.TOPIC, Attributes=dict(TOPIC_ATTRIBUTES),
                                        Tags=[{"Key": k, "Value": v}
                                              for k, v in TAGS.items()]))
        return
    for key, value in TOPIC_ATTRIBUTES.items():
        if topic["attributes"].get(key) != value:
            change("sns-topic", model.TOPIC, "update", key,
                   lambda key=key, value=value: sns.set_topic_attributes(
                       TopicArn=t.topic_arn, AttributeName=key, AttributeValue=value))
    if topic["tags"].get(model.TAG_MANAGED) != "1":  # pragma: no cover - conflicts()
        raise errors.AWSError(f"SNS topic {model.TOPIC} is not ours")


def _encrypted(rules: list[dict]) -> bool:
    return any(r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm")
               in ("AES256", "aws:kms", "aws:kms:dsse") for r in rules)


def _reconcile_queue(session: AWSSession, t: Target, name: str, queue: dict | None,
                     change: _Changes) -> str | None:
    """The queue's URL (None in a dry run that would create it)."""
    sqs = session.client("sqs")
    wanted = queue_attributes(t, name)
    if queue is None:
        created = change("sqs-queue", name, "create", "",
                         lambda: sqs.create_queue(QueueName=name, Attributes=wanted,
                                                  tags=TAGS))
        return created["QueueUrl"] if created else None
    url = queue["url"]
    missing = attribute_changes(queue["attributes"], wanted)
    if missing:
        change("sqs-queue", name, "update", ", ".join(sorted(missing)),
               lambda: sqs.set_queue_attributes(QueueUrl=url, Attributes=missing))
    return url


def _reconcile_table(session: AWSSession, t: Target, table: dict | None,
                     change: _Changes) -> None:
    db = session.client("dynamodb")
    definition = store.table_definition()
    ttl_wanted = store.ttl_definition()["TimeToLiveSpecification"]
    name = definition["TableName"]
    if table is None:
        def create() -> None:
            db.create_table(**definition, Tags=[{"Key": k, "Value": v}
                                                for k, v in TAGS.items()])
            db.get_waiter("table_exists").wait(TableName=name,
                                               WaiterConfig={"Delay": 2, "MaxAttempts": 60})
        change("dynamodb-table", name, "create", "on demand, index "
               f"{model.RECENT_INDEX}", create)
        table = {"table": {}, "ttl": {}, "tags": dict(TAGS)}
    else:
        current = table["table"]
        if _keys(current.get("KeySchema")) != _keys(definition["KeySchema"]):
            raise errors.AWSError(
                f"DynamoDB table {name} has keys {_keys(current.get('KeySchema'))}, not "
                f"{_keys(definition['KeySchema'])}",
                hint="destroy-try-server, then deploy again (the table's tries are lost)")
        mode = (current.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")
        if mode != "PAY_PER_REQUEST":
            change("dynamodb-table", name, "update", "on-demand billing",
                   lambda: db.update_table(TableName=name, BillingMode="PAY_PER_REQUEST"))
        have = {i["IndexName"]: i for i in current.get("GlobalSecondaryIndexes") or []}
        for index in definition["GlobalSecondaryIndexes"]:
            existing = have.get(index["IndexName"])
            if existing is not None and _keys(existing["KeySchema"]) == _keys(
                    index["KeySchema"]):
                continue
            if existing is not None:
                raise errors.AWSError(
                    f"DynamoDB table {name}: index {index['IndexName']} has keys "
                    f"{_keys(existing['KeySchema'])}, not {_keys(index['KeySchema'])}",
                    hint="destroy-try-server, then deploy again")
            change("dynamodb-table", name, "update", f"index {index['IndexName']}",
                   lambda index=index: db.update_table(
                       TableName=name, AttributeDefinitions=definition["AttributeDefinitions"],
                       GlobalSecondaryIndexUpdates=[{"Create": index}]))
        if table["tags"].get(model.TAG_MANAGED) != "1":  # pragma: no cover - conflicts()
            raise errors.AWSError(f"DynamoDB table {name} is not ours")
    ttl = table["ttl"]
    if not (ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING")
            and ttl.get("AttributeName") == ttl_wanted["AttributeName"]):
        change("dynamodb-table", name, "update",
               f"time to live ({ttl_wanted['AttributeName']})",
               lambda: db.update_time_to_live(**store.ttl_definition()))


def _keys(schema: list[dict] | None) -> list[str]:
    order = {"HASH": 0, "RANGE": 1}
    return [k["AttributeName"] for k in sorted(schema or [], key=lambda k: order[k["KeyType"]])]


def _reconcile_role(session: AWSSession, name: str, document: dict, role: dict | None,
                    change: _Changes) -> None:
    iam = session.client("iam")
    if role is None:
        change("iam-role", name, "create", "trusted by Lambda", lambda: iam.create_role(
            RoleName=name, Path=PATH, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST),
            Description=f"Mercurial Try server: {name}",
            Tags=[{"Key": k, "Value": v} for k, v in TAGS.items()]))
        role = {"role": {"AssumeRolePolicyDocument": LAMBDA_TRUST}, "policies": {},
                "attached": []}
    elif not same_policy(role["role"]["AssumeRolePolicyDocument"], LAMBDA_TRUST):
        change("iam-role", name, "update", "trust policy", lambda: iam.update_assume_role_policy(
            RoleName=name, PolicyDocument=json.dumps(LAMBDA_TRUST)))
    _reconcile_inline("iam-role", name, document, role["policies"], change,
                      put=lambda: iam.put_role_policy(RoleName=name, PolicyName=name,
                                                      PolicyDocument=json.dumps(document)),
                      delete=lambda p: iam.delete_role_policy(RoleName=name, PolicyName=p))
    for arn in role["attached"]:
        change("iam-role", name, "update", f"detach {arn}",
               lambda arn=arn: iam.detach_role_policy(RoleName=name, PolicyArn=arn))


def _reconcile_inline(kind: str, name: str, document: dict, current: dict[str, Any],
                      change: _Changes, *, put: Callable[[], Any],
                      delete: Callable[[str], Any]) -> None:
    """Exactly one inline policy, named like its holder, saying ``document``."""
    if name not in current or not same_policy(current[name], document):
        change(kind, name, "update", "permissions", put)
    for other in sorted(set(current) - {name}):
        change(kind, name, "update", f"delete inline policy {other}",
               lambda other=other: delete(other))


def _reconcile_group(session: AWSSession, t: Target, group: dict | None,
                     change: _Changes) -> None:
    iam = session.client("iam")
    name = model.SUBMITTERS_GROUP
    if group is None:
        change("iam-group", name, "create", "", lambda: iam.create_group(GroupName=name,
                                                                         Path=PATH))
        group = {"policies": {}, "attached": []}
    document = submitters_policy(t)
    _reconcile_inline("iam-group", name, document, group["policies"], change,
                      put=lambda: iam.put_group_policy(GroupName=name, PolicyName=name,
                                                       PolicyDocument=json.dumps(document)),
                      delete=lambda p: iam.delete_group_policy(GroupName=name, PolicyName=p))
    for arn in group["attached"]:
        change("iam-group", name, "update", f"detach {arn}",
               lambda arn=arn: iam.detach_group_policy(GroupName=name, PolicyArn=arn))


def _reconcile_agent_policy(session: AWSSession, t: Target, policy: dict | None,
                            change: _Changes) -> None:
    iam = session.client("iam")
    document = agent_policy(t)
    name, arn = model.AGENT_POLICY, t.agent_policy_arn
    if policy is None:
        change("iam-policy", name, "create", "for agents", lambda: iam.create_policy(
            PolicyName=name, Path=PATH, PolicyDocument=json.dumps(document),
            Description="Mercurial Try server agents: take jobs, record results",
            Tags=[{"Key": k, "Value": v} for k, v in TAGS.items()]))
        return
    if same_policy(policy["document"], document):
        return

    def new_version() -> None:
        # IAM keeps at most 5 versions: make room by dropping the oldest spare one.
        spare = sorted((v for v in policy["versions"] if not v["IsDefaultVersion"]),
                       key=lambda v: v["CreateDate"])
        if len(policy["versions"]) >= 5 and spare:
            iam.delete_policy_version(PolicyArn=arn, VersionId=spare[0]["VersionId"])
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(document),
                                  SetAsDefault=True)
    change("iam-policy", name, "update", "permissions", new_version)


def _reconcile_function(session: AWSSession, t: Target, name: str, code: bytes,
                        env: dict[str, str], function: dict | None,
                        change: _Changes) -> None:
    lam = session.client("lambda")
    wanted = function_config(t, name, env)
    if function is None:
        change("lambda-function", name, "create", model.LAMBDA_RUNTIME,
               lambda: _create_function(lam, wanted, code))
        return
    config = function["config"]
    if config.get("CodeSha256") != code_sha256(code):
        def update_code() -> None:
            lam.update_function_code(FunctionName=name, ZipFile=code)
            _wait_updated(lam, name)
        change("lambda-function", name, "update", "code", update_code)
    fields = config_changes(config, wanted)
    if fields:
        def update_config() -> None:
            lam.update_function_configuration(**{k: v for k, v in wanted.items()
                                                 if k == "FunctionName" or k in fields})
            _wait_updated(lam, name)
        change("lambda-function", name, "update", ", ".join(f.lower() for f in fields),
               update_config)
    if function["tags"].get(model.TAG_MANAGED) != "1":  # pragma: no cover - conflicts()
        raise errors.AWSError(f"Lambda function {name} is not ours")


def _create_function(lam: Any, config: dict, code: bytes) -> None:
    from botocore.exceptions import ClientError

    from hgautomation import poll

    def attempt() -> bool | None:
        try:
            lam.create_function(**config, Code={"ZipFile": code}, Tags=dict(TAGS),
                                Publish=False)
        except ClientError as exc:
            # A new role takes a few seconds until Lambda may assume it.
            if (client_error_code(exc) == "InvalidParameterValueException"
                    and "assume" in str(exc)):
                return None
            raise
        return True

    poll.until(attempt, timeout=ROLE_CREATE_WAIT, interval=3.0, quiet=True,
               what=f"Lambda function {config['FunctionName']} (its new role)")
    lam.get_waiter("function_active_v2").wait(FunctionName=config["FunctionName"],
                                              WaiterConfig={"Delay": 2, "MaxAttempts": 60})


def _wait_updated(lam: Any, name: str) -> None:
    lam.get_waiter("function_updated_v2").wait(FunctionName=name,
                                               WaiterConfig={"Delay": 2, "MaxAttempts": 60})


def _reconcile_url(session: AWSSession, t: Target, function: dict | None,
                   change: _Changes) -> str | None:
    """The web function's public URL (None in a dry run that would create it)."""
    lam = session.client("lambda")
    name = model.WEB_FUNCTION
    url = (function or {}).get("url")
    if url is None:
        created = change("lambda-url", name, "create", "public, read only",
                         lambda: lam.create_function_url_config(
                             FunctionName=name, AuthType="NONE", InvokeMode="BUFFERED"))
        url = created
    elif url.get("AuthType") != "NONE" or url.get("Cors"):
        url = change("lambda-url", name, "update", "public, no CORS",
                     lambda: lam.update_function_url_config(
                         FunctionName=name, AuthType="NONE", Cors={})) or url
    sids = {s.get("Sid") for s in (function or {}).get("statements", [])}
    for sid, permission in URL_PERMISSIONS:
        if sid not in sids:
            change("lambda-permission", name, "create", f"{sid}: {permission['Action']}",
                   lambda sid=sid, permission=permission: lam.add_permission(
                       FunctionName=name, StatementId=sid, **permission))
    return url["FunctionUrl"].rstrip("/") if url else None


# -- destroy ----------------------------------------------------------------------------

def destroy(session: AWSSession, *, dry_run: bool = False) -> list[Change]:
    """Remove every resource of the Try server that is ours (tagged, or our group by its
    path) in the session's account and region; returns what was (or would be) removed."""
    t = target(session, ())
    change = _Changes(dry_run)
    lam = session.client("lambda")
    for name in FUNCTIONS:
        with translate_errors(f"Lambda function {name}"):
            function = _get(lam.get_function, FunctionName=name)
        if function and (function.get("Tags") or {}).get(model.TAG_MANAGED) == "1":
            change("lambda-function", name, "delete", "",
                   lambda name=name: lam.delete_function(FunctionName=name))
    _destroy_queues(session, change)
    sns = session.client("sns")
    with translate_errors(f"SNS topic {model.TOPIC}"):
        topic = _observe_topic(sns, t.topic_arn)
    if topic and topic["tags"].get(model.TAG_MANAGED) == "1":
        change("sns-topic", model.TOPIC, "delete", "with its subscriptions",
               lambda: sns.delete_topic(TopicArn=t.topic_arn))
    db = session.client("dynamodb")
    with translate_errors(f"DynamoDB table {t.table}"):
        table = _observe_table(session, t)
    if table and table["tags"].get(model.TAG_MANAGED) == "1":
        change("dynamodb-table", t.table, "delete", "every try's record",
               lambda: db.delete_table(TableName=t.table))
    with translate_errors(f"S3 bucket {t.bucket}"):
        bucket = _observe_bucket(session, t.bucket)
    if bucket and bucket["tags"].get(model.TAG_MANAGED) == "1":
        change("s3-bucket", t.bucket, "delete", "with every bundle, log and report",
               lambda: _delete_bucket(session, t.bucket))
    _destroy_iam(session, t, change)
    return change.made


def _destroy_queues(session: AWSSession, change: _Changes) -> None:
    sqs = session.client("sqs")
    with translate_errors("list SQS queues"):
        urls = [u for page in sqs.get_paginator("list_queues").paginate(
            QueueNamePrefix=f"{model.PREFIX}-job-") for u in page.get("QueueUrls", [])]
        tagged = [u for u in urls if sqs.list_queue_tags(QueueUrl=u).get("Tags", {}).get(
            model.TAG_MANAGED) == "1"]
    # Each queue before the dead-letter queue it sends to.
    for url in sorted(tagged, key=lambda u: (u.endswith("-dlq"), u)):
        change("sqs-queue", url.rsplit("/", 1)[-1], "delete", "",
               lambda url=url: sqs.delete_queue(QueueUrl=url))


def _delete_bucket(session: AWSSession, name: str) -> None:
    s3 = session.client("s3")
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
        doomed = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                  for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        if doomed:
            s3.delete_objects(Bucket=name, Delete={"Objects": doomed, "Quiet": True})
    s3.delete_bucket(Bucket=name)


def _destroy_iam(session: AWSSession, t: Target, change: _Changes) -> None:
    from hgautomation.aws import iam as iam_

    iam = session.client("iam")
    with translate_errors(f"IAM policy {model.AGENT_POLICY}"):
        policy = _observe_policy(iam, t.agent_policy_arn)
    if policy and policy["tags"].get(model.TAG_MANAGED) == "1":
        change("iam-policy", model.AGENT_POLICY, "delete", "detached from its holders",
               lambda: _delete_policy(iam, t.agent_policy_arn, policy["versions"]))
    with translate_errors(f"IAM group {model.SUBMITTERS_GROUP}"):
        group = _observe_group(iam)
    if group and group["group"].get("Path") == PATH:
        members = f"{console.plural(len(group['users']), 'member')} removed"
        change("iam-group", model.SUBMITTERS_GROUP, "delete", members,
               lambda: _delete_group(iam, group))
    for name in (model.UPLOAD_ROLE, model.WEB_ROLE):
        with translate_errors(f"IAM role {name}"):
            role = _get(iam.get_role, RoleName=name)
            tags = _tags(iam.list_role_tags(RoleName=name).get("Tags")) if role else {}
        if tags.get(model.TAG_MANAGED) == "1":
            change("iam-role", name, "delete", "",
                   lambda name=name: iam_.delete_role(session, name))


def _delete_policy(iam: Any, arn: str, versions: list[dict]) -> None:
    entities = iam.list_entities_for_policy(PolicyArn=arn)
    for user in entities.get("PolicyUsers", []):
        iam.detach_user_policy(UserName=user["UserName"], PolicyArn=arn)
    for group in entities.get("PolicyGroups", []):
        iam.detach_group_policy(GroupName=group["GroupName"], PolicyArn=arn)
    for role in entities.get("PolicyRoles", []):
        iam.detach_role_policy(RoleName=role["RoleName"], PolicyArn=arn)
    for version in versions:
        if not version["IsDefaultVersion"]:
            iam.delete_policy_version(PolicyArn=arn, VersionId=version["VersionId"])
    iam.delete_policy(PolicyArn=arn)


def _delete_group(iam: Any, group: dict) -> None:
    name = model.SUBMITTERS_GROUP
    for user in group["users"]:
        iam.remove_user_from_group(GroupName=name, UserName=user)
    for policy in group["policies"]:
        iam.delete_group_policy(GroupName=name, PolicyName=policy)
    for arn in group["attached"]:
        iam.detach_group_policy(GroupName=name, PolicyArn=arn)
    iam.delete_group(GroupName=name)
