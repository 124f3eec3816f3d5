"""deploy-try-server / destroy-try-server against moto, the deployed functions run by
the suite's local Lambda runtime (tests/harness/lambda_runtime.py) from the zip deploy
uploaded, and `try` reaching them."""

from __future__ import annotations

import base64
import calendar
import io
import json
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
from harness import hgsource, jsondoc

from hgautomation.server import jobs, model, notify

ACCOUNT = "123456789012"  # moto's default account


def _deploy(cli, aws, runtime, tmp_path, *args: str):
    return cli.run("deploy-try-server", *args, aws=aws, env=runtime.env,
                   state=tmp_path / "state", cwd=tmp_path, timeout=240)


def _deployed(cli, aws, runtime, tmp_path, *args: str) -> dict:
    proc = _deploy(cli, aws, runtime, tmp_path, "-T", "json", *args)
    assert proc.returncode == 0, proc.stderr
    return jsondoc.check("deploy-try-server", proc.stdout)


def _destroy(cli, aws, runtime, tmp_path, *args: str):
    return cli.run("destroy-try-server", *args, aws=aws, env=runtime.env,
                   state=tmp_path / "state", cwd=tmp_path, timeout=240)


def _lambda(aws, runtime):
    """A Lambda client through the runtime (as the CLI's is)."""
    import boto3

    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                 region_name=aws.region).client("lambda",
                                                                endpoint_url=runtime.url)


def _everything(aws) -> dict:
    """What exists of a Try server (or anything named like one) in moto."""
    s3, sqs, db = aws.client("s3"), aws.client("sqs"), aws.client("dynamodb")
    iam, lam, sns = aws.client("iam"), aws.client("lambda"), aws.client("sns")
    return {
        "buckets": sorted(b["Name"] for b in s3.list_buckets()["Buckets"]),
        "queues": sorted(u.rsplit("/", 1)[1] for u in sqs.list_queues().get("QueueUrls", [])),
        "tables": sorted(db.list_tables()["TableNames"]),
        "functions": sorted(f["FunctionName"] for f in lam.list_functions()["Functions"]),
        "roles": sorted(r["RoleName"] for r in iam.list_roles(PathPrefix="/hg-try/")["Roles"]),
        "groups": sorted(g["GroupName"] for g in iam.list_groups()["Groups"]),
        "policies": sorted(p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"]),
        "topics": sorted(t["TopicArn"].rsplit(":", 1)[1] for t in sns.list_topics()["Topics"]),
    }


NOTHING = {"buckets": [], "queues": [], "tables": [], "functions": [], "roles": [],
           "groups": [], "policies": [], "topics": []}
DEPLOYED = {
    "buckets": [f"hg-try-{ACCOUNT}-us-west-2"],
    "queues": ["hg-try-job-linux", "hg-try-job-linux-dlq"],
    "tables": ["hg-try-state"],
    "functions": ["ci-try-server-upload", "hg-try-web"],
    "roles": ["hg-try-upload", "hg-try-web"],
    "groups": ["hg-try-submitters"],
    "policies": ["hg-try-agent"],
    "topics": ["hg-try-events"],
}


# -- the runtime itself ---------------------------------------------------------------------

PROBE = '''
import importlib.util, json, os, sys
def handler(event, context):
    if event.get("fail"):
        raise KeyError("asked to fail")
    print("to the log, not the answer")
    found = {m: importlib.util.find_spec(m) is not None
             for m in ("boto3", "pytest", "moto", "hgautomation", "probe")}
    return {"event": event, "found": found, "env": os.environ.get("GREETING"),
            "region": os.environ["AWS_REGION"], "function": context.function_name,
            "isolated": sys.flags.isolated, "remaining": context.get_remaining_time_in_millis()}
'''


def test_runtime_runs_the_zip_in_a_clean_interpreter(aws_fresh, lambda_runtime):
    """A function created through the runtime runs from its own zip, with boto3 and
    nothing else of the test process (no pytest, no moto, no hgautomation)."""
    lam = _lambda(aws_fresh, lambda_runtime)
    role = aws_fresh.client("iam").create_role(
        RoleName="probe", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("probe.py", PROBE)
    lam.create_function(FunctionName="probe", Runtime="python3.12", Role=role,
                        Handler="probe.handler", Code={"ZipFile": code.getvalue()},
                        Environment={"Variables": {"GREETING": "hello"}}, Timeout=30)
    answer = lam.invoke(FunctionName="probe", Payload=json.dumps({"n": 1}))
    assert "FunctionError" not in answer, answer
    result = json.loads(answer["Payload"].read())
    assert result["event"] == {"n": 1}
    assert result["found"] == {"boto3": True, "pytest": False, "moto": False,
                               "hgautomation": False, "probe": True}
    assert result["env"] == "hello" and result["region"] == aws_fresh.region
    assert result["function"] == "probe" and result["isolated"] == 1
    assert 0 < result["remaining"] <= 30_000
    assert lambda_runtime.invocations[-1].log.strip() == "to the log, not the answer"

    failed = lam.invoke(FunctionName="probe", Payload=b'{"fail": true}')
    assert failed["FunctionError"] == "Unhandled"
    error = json.loads(failed["Payload"].read())
    assert error["errorType"] == "KeyError" and "asked to fail" in error["errorMessage"]
    assert error["stackTrace"]

    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName="no-such-function", Payload=b"{}")
    # Everything else is moto's.
    assert [f["FunctionName"] for f in lam.list_functions()["Functions"]] == ["probe"]


# -- deploy ---------------------------------------------------------------------------------

def test_deploy_creates_every_resource_as_designed(cli, aws_fresh, lambda_runtime, tmp_path):
    doc = _deployed(cli, aws_fresh, lambda_runtime, tmp_path)
    bucket = f"hg-try-{ACCOUNT}-{aws_fresh.region}"
    assert doc["dry_run"] is False and doc["changes"]
    assert {c["action"] for c in doc["changes"]} <= {"create", "update"}
    assert doc["upload_function"] == "ci-try-server-upload"
    assert doc["web_function"] == "hg-try-web"
    assert doc["bucket"] == bucket and doc["table"] == "hg-try-state"
    assert doc["jobs"] == ["linux"] and set(doc["queues"]) == {"linux"}
    assert doc["queues"]["linux"].endswith("/hg-try-job-linux")
    assert doc["web_url"].startswith("https://") and ".lambda-url." in doc["web_url"]
    assert doc["agent_policy"] == f"arn:aws:iam::{ACCOUNT}:policy/hg-try/hg-try-agent"
    assert doc["topic"] == f"arn:aws:sns:{aws_fresh.region}:{ACCOUNT}:hg-try-events"
    assert _everything(aws_fresh) == DEPLOYED
    tag = {"Key": model.TAG_MANAGED, "Value": "1"}

    s3 = aws_fresh.client("s3")
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"][
        "Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True}
    assert tag in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
    (lifecycle,) = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert lifecycle["Expiration"] == {"Days": 30} and lifecycle["Status"] == "Enabled"
    assert tag in aws_fresh.client("sns").list_tags_for_resource(ResourceArn=doc["topic"])[
        "Tags"]

    sqs = aws_fresh.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=doc["queues"]["linux"],
                                          AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(":hg-try-job-linux-dlq")
    assert int(redrive["maxReceiveCount"]) == model.MAX_RECEIVES
    assert int(attributes["VisibilityTimeout"]) == model.DEFAULT_LEASE_SECONDS
    for name in ("hg-try-job-linux", "hg-try-job-linux-dlq"):
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {model.TAG_MANAGED: "1"}

    db = aws_fresh.client("dynamodb")
    table = db.describe_table(TableName="hg-try-state")["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {
        "pk": "HASH", "sk": "RANGE"}
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "recent"
    assert [k["AttributeName"] for k in index["KeySchema"]] == ["kind", "id"]
    ttl = db.describe_time_to_live(TableName="hg-try-state")["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires" and ttl["TimeToLiveStatus"] == "ENABLED"
    assert tag in db.list_tags_of_resource(ResourceArn=table["TableArn"])["Tags"]

    lam = aws_fresh.client("lambda")
    for name, handler in (("ci-try-server-upload", "hgautomation.server.upload.handler"),
                          ("hg-try-web", "hgautomation.server.web.handler")):
        function = lam.get_function(FunctionName=name)
        config = function["Configuration"]
        assert config["Runtime"] == "python3.12" and config["Handler"] == handler
        env = config["Environment"]["Variables"]
        assert env == {"TRY_TABLE": "hg-try-state", "TRY_BUCKET": bucket, "TRY_JOBS": "linux",
                       "TRY_QUEUE_LINUX": doc["queues"]["linux"], "TRY_WEB_URL": doc["web_url"],
                       "TRY_TOPIC": doc["topic"], "TRY_RETENTION_DAYS": "30",
                       "TRY_MAX_TRIES_PER_HOUR": "20"}
        assert function["Tags"] == {model.TAG_MANAGED: "1"}
    url = lam.get_function_url_config(FunctionName="hg-try-web")
    assert url["AuthType"] == "NONE" and url["FunctionUrl"].rstrip("/") == doc["web_url"]
    statements = json.loads(lam.get_policy(FunctionName="hg-try-web")["Policy"])["Statement"]
    assert {s["Action"] for s in statements} == {"lambda:InvokeFunctionUrl",
                                                 "lambda:InvokeFunction"}
    # The code is the package's server part and nothing else.
    sha = lam.get_function(FunctionName="hg-try-web")["Configuration"]["CodeSha256"]
    names = zipfile.ZipFile(io.BytesIO(lambda_runtime.code_of(sha))).namelist()
    assert "hgautomation/__init__.py" in names and "hgautomation/server/web.py" in names
    assert all(n == "hgautomation/__init__.py" or n.startswith("hgautomation/server/")
               for n in names)

    iam = aws_fresh.client("iam")
    group = iam.get_group_policy(GroupName="hg-try-submitters",
                                 PolicyName="hg-try-submitters")["PolicyDocument"]
    actions = {a for s in group["Statement"] for a in _list(s["Action"])}
    assert "lambda:InvokeFunction" in actions and "dynamodb:Query" in actions
    assert not any(a.startswith(("s3:", "sqs:")) for a in actions)
    upload = iam.get_role_policy(RoleName="hg-try-upload",
                                 PolicyName="hg-try-upload")["PolicyDocument"]
    assert all(r != "*" for s in upload["Statement"] for r in _list(s["Resource"]))


def _list(value):
    return value if isinstance(value, list) else [value]


def test_deploy_twice_changes_nothing(cli, aws_fresh, lambda_runtime, tmp_path):
    """The second run finds everything as it should be: no change, no mutating call."""
    first = _deployed(cli, aws_fresh, lambda_runtime, tmp_path)
    again = _deploy(cli, aws_fresh, lambda_runtime, tmp_path, "-T", "json", "-v")
    assert again.returncode == 0, again.stderr
    doc = jsondoc.check("deploy-try-server", again.stdout)
    assert doc["changes"] == []
    assert " 0 mutating AWS calls" in again.stderr
    assert {k: v for k, v in doc.items() if k != "changes"} == {
        k: v for k, v in first.items() if k != "changes"}
    text = _deploy(cli, aws_fresh, lambda_runtime, tmp_path)
    assert text.returncode == 0 and "the Try server is up to date" in text.stdout


def test_deploy_repairs_drift(cli, aws_fresh, lambda_runtime, tmp_path):
    """What someone changed by hand is put back, and only that."""
    doc = _deployed(cli, aws_fresh, lambda_runtime, tmp_path)
    aws_fresh.client("s3").delete_public_access_block(Bucket=doc["bucket"])
    aws_fresh.client("sqs").set_queue_attributes(QueueUrl=doc["queues"]["linux"],
                                                 Attributes={"VisibilityTimeout": "5"})
    aws_fresh.client("lambda").update_function_configuration(
        FunctionName="hg-try-web", Environment={"Variables": {"TRY_TABLE": "other"}})
    again = _deployed(cli, aws_fresh, lambda_runtime, tmp_path)
    assert sorted((c["resource"], c["detail"]) for c in again["changes"]) == [
        ("lambda-function", "environment"), ("s3-bucket", "block public access"),
        ("sqs-queue", "VisibilityTimeout")]
    assert _deployed(cli, aws_fresh, lambda_runtime, tmp_path)["changes"] == []


def test_dry_run_changes_nothing(cli, aws_fresh, lambda_runtime, tmp_path):
    doc = _deployed(cli, aws_fresh, lambda_runtime, tmp_path, "--dry-run", "--job", "linux",
                    "--job", "windows")
    assert doc["dry_run"] is True
    planned = {(c["resource"], c["name"]) for c in doc["changes"] if c["action"] == "create"}
    assert ("sqs-queue", "hg-try-job-windows-dlq") in planned
    assert ("lambda-function", "ci-try-server-upload") in planned
    assert doc["queues"] == {"linux": None, "windows": None} and doc["web_url"] is None
    assert _everything(aws_fresh) == NOTHING
    text = _deploy(cli, aws_fresh, lambda_runtime, tmp_path, "--dry-run")
    assert text.returncode == 0, text.stderr
    assert "(dry run: nothing changed)" in text.stdout
    assert "would create" in text.stderr
    assert _everything(aws_fresh) == NOTHING


def test_deploy_refuses_a_resource_with_our_name_that_is_not_ours(cli, aws_fresh,
                                                                  lambda_runtime, tmp_path):
    """Someone's own queue under the name deploy would use: refused before any change."""
    aws_fresh.client("sqs").create_queue(QueueName="hg-try-job-linux")
    proc = _deploy(cli, aws_fresh, lambda_runtime, tmp_path)
    assert proc.returncode == 5, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "not ours" in last and "SQS queue hg-try-job-linux" in last, last
    assert "Traceback" not in proc.stderr
    assert _everything(aws_fresh) == dict(NOTHING, queues=["hg-try-job-linux"])


def test_bad_job_name_is_a_usage_error(cli, aws_fresh, lambda_runtime, tmp_path):
    proc = _deploy(cli, aws_fresh, lambda_runtime, tmp_path, "--job", "Linux_1")
    assert proc.returncode == 2
    assert "invalid job name 'Linux_1'" in proc.stderr and "Traceback" not in proc.stderr
    assert _everything(aws_fresh) == NOTHING


# -- the deployed functions --------------------------------------------------------------------

def _queued(aws, url: str) -> list[dict]:
    sqs = aws.client("sqs")
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return [json.loads(m["Body"]) for m in got.get("Messages", [])]


def _stored(aws, bucket: str) -> list[str]:
    return [o["Key"] for o in aws.client("s3").list_objects_v2(Bucket=bucket).get(
        "Contents", [])]


def _items(aws) -> list[dict]:
    return aws.client("dynamodb").scan(TableName="hg-try-state")["Items"]


def test_upload_refuses_what_is_not_a_bundle(cli, aws_fresh, lambda_runtime, tmp_path):
    doc = _deployed(cli, aws_fresh, lambda_runtime, tmp_path)
    payload = {"bundle": base64.b64encode(b"HG10UN not a bundle2").decode(),
               "node": "a" * 40, "branch": "default", "user": "Dev <dev@example.org>",
               "message": "hello"}
    answer = _lambda(aws_fresh, lambda_runtime).invoke(
        FunctionName="ci-try-server-upload", Payload=json.dumps(payload))
    assert answer["FunctionError"] == "Unhandled"
    error = json.loads(answer["Payload"].read())
    assert "bundle" in error["errorMessage"] and "HG20" in error["errorMessage"]
    assert "\n" not in error["errorMessage"]
    assert _stored(aws_fresh, doc["bucket"]) == []
    assert _items(aws_fresh) == []
    assert _queued(aws_fresh, doc["queues"]["linux"]) == []


def _hg(repo: Path, *args: str) -> str:
    return hgsource.hg("-R", str(repo), *args, timeout=120)


@pytest.fixture
def repo(tmp_path) -> Path:
    """A public changeset and a draft on top."""
    root = tmp_path / "repo"
    hgsource.hg("init", str(root), timeout=60)
    (root / "a.txt").write_text("one\n")
    _hg(root, "commit", "-A", "-m", "public base", "-u", "Pub <pub@example.org>")
    _hg(root, "phase", "--public", "-r", ".")
    (root / "b.txt").write_text("draft\n")
    _hg(root, "commit", "-A", "-m", "try: <b>draft</b>\n\nMore.", "-u", "Dev <dev@example.org>")
    return root


def test_try_reaches_the_deployed_server(cli, aws_fresh, lambda_runtime, repo, tmp_path):
    """A plain `try -r .` (the client's default function) stores and queues a real bundle
    and prints the server's lines; the web function lists it."""
    doc = _deployed(cli, aws_fresh, lambda_runtime, tmp_path)
    node = _hg(repo, "log", "-r", ".", "-T", "{node}")
    proc = cli.run("--hg-repo", str(repo), "try", "-r", ".", aws=aws_fresh,
                   env=lambda_runtime.env, state=tmp_path / "state", cwd=repo, timeout=180)
    assert proc.returncode == 0, proc.stderr
    remote = [line[len("remote: "):] for line in proc.stderr.splitlines()
              if line.startswith("remote: ")]
    assert len(remote) == 2, proc.stderr
    assert remote[0].startswith("try ") and remote[0].endswith(": 1 job queued (linux)")
    try_id = remote[0].split()[1].rstrip(":")
    assert model.TRY_ID_RE.match(try_id)
    assert remote[1] == f"{doc['web_url']}/try/{try_id}"

    assert _stored(aws_fresh, doc["bucket"]) == [model.bundle_key(try_id)]
    bundle = aws_fresh.client("s3").get_object(Bucket=doc["bucket"],
                                               Key=model.bundle_key(try_id))["Body"].read()
    assert bundle.startswith(model.BUNDLE2_MAGIC)
    assert _queued(aws_fresh, doc["queues"]["linux"]) == [{"try": try_id, "job": "linux"}]
    items = {i["sk"]["S"]: i for i in _items(aws_fresh)}
    assert set(items) == {"META", "JOB#linux", "RATE"}  # RATE: the user's tries this hour
    assert items["RATE"]["pk"]["S"] == "RATE#Dev <dev@example.org>"
    assert items["META"]["node"]["S"] == node
    assert items["META"]["description"]["S"] == "try: <b>draft</b>\n\nMore."
    assert items["JOB#linux"]["state"]["S"] == "queued"

    # The web function behind its (locally served) public URL.
    site = lambda_runtime.local_url(doc["web_url"])
    with urllib.request.urlopen(f"{site}/", timeout=60) as page:
        html = page.read().decode()
        assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
        assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert try_id in html and "<b>draft</b>" not in html
    with urllib.request.urlopen(f"{site}/api/try/{try_id}", timeout=60) as api:
        document = json.loads(api.read())
    assert document["id"] == try_id and document["node"] == node
    assert [j["name"] for j in document["jobs"]] == ["linux"]
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{site}/no/such/page", timeout=60)
    assert missing.value.code == 404


# -- cancel and rerun ------------------------------------------------------------------------

def _peek(aws, url: str) -> list[dict]:
    """The queue's messages, left visible to the next receive (an agent's)."""
    got = aws.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                            WaitTimeSeconds=0, VisibilityTimeout=0)
    return [json.loads(m["Body"]) for m in got.get("Messages", [])]


def _try(cli, aws, runtime, repo: Path, tmp_path: Path, *args: str, timeout: float = 180):
    return cli.run("--hg-repo", str(repo), "try", *args, aws=aws, env=runtime.env,
                   state=tmp_path / "state", cwd=repo, timeout=timeout)


def _remote(stderr: str) -> list[str]:
    return [line[len("remote: "):] for line in stderr.splitlines()
            if line.startswith("remote: ")]


def _subscribe_queue(aws, topic: str) -> str:
    """An SQS queue subscribed to the topic (as an e-mail address would be)."""
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"]
    aws.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return url


def test_a_try_that_ends_is_announced_and_the_limits_hold(cli, aws_fresh, lambda_runtime,
                                                          repo, tmp_path):
    """deploy --retention-days 7 --max-tries-per-hour 2: the lifecycle rule, the TTL and
    the items' expiry follow; a try whose job ends (claimed and recorded as an agent
    does) is announced once on the topic; the third try within the hour is refused by
    the deployed upload function with nothing stored."""
    limits = ("--retention-days", "7", "--max-tries-per-hour", "2")
    doc = _deployed(cli, aws_fresh, lambda_runtime, tmp_path, *limits)
    assert _deployed(cli, aws_fresh, lambda_runtime, tmp_path, *limits)["changes"] == []
    s3, db = aws_fresh.client("s3"), aws_fresh.client("dynamodb")
    (rule,) = s3.get_bucket_lifecycle_configuration(Bucket=doc["bucket"])["Rules"]
    assert rule["Expiration"] == {"Days": 7} and rule["Filter"] == {"Prefix": "tries/"}
    ttl = db.describe_time_to_live(TableName="hg-try-state")["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires" and ttl["TimeToLiveStatus"] == "ENABLED"
    inbox = _subscribe_queue(aws_fresh, doc["topic"])

    proc = _try(cli, aws_fresh, lambda_runtime, repo, tmp_path, "-r", ".")
    assert proc.returncode == 0, proc.stderr
    try_id = proc.stderr.split("remote: try ", 1)[1].split(":", 1)[0]
    table = _table(aws_fresh)
    meta = jobs.get_try(table, try_id)
    assert meta["page_url"] == f"{doc['web_url']}/try/{try_id}"
    epoch = calendar.timegm(time.strptime(meta["created"], "%Y-%m-%dT%H:%M:%SZ"))
    assert meta["expires"] == epoch + 7 * 86400
    assert jobs.get_job(table, try_id, "linux")["expires"] == epoch + 7 * 86400

    # The job ends as an agent ends it; then what the agent calls.
    sns = aws_fresh.client("sns")
    attempt = jobs.claim(table, try_id, "linux", "agent-e2e", 300, time.time())
    assert jobs.record(table, try_id, "linux", "agent-e2e", attempt, jobs.JobResult(
        state=model.FAILED, passed=4, failed=("test-new.t",),
        failures=jobs.cut_failures([("test-new.t", "+oops\n")])), time.time())
    assert notify.try_ended(table, sns, doc["topic"], try_id) is True
    assert notify.try_ended(table, sns, doc["topic"], try_id) is False
    got = aws_fresh.client("sqs").receive_message(QueueUrl=inbox, MaxNumberOfMessages=10,
                                                  WaitTimeSeconds=1)["Messages"]
    (message,) = [json.loads(m["Body"]) for m in got]
    assert message["Subject"] == f"try {try_id}: failed, 1 new failure"
    body = message["Message"].splitlines()
    assert body[0] == f"{doc['web_url']}/try/{try_id}"
    assert "linux: failed, 1 new failure" in body and "  test-new.t" in body

    assert _try(cli, aws_fresh, lambda_runtime, repo, tmp_path, "-r", ".").returncode == 0
    objects, items = _stored(aws_fresh, doc["bucket"]), _items(aws_fresh)
    refused = _try(cli, aws_fresh, lambda_runtime, repo, tmp_path, "-r", ".")
    assert refused.returncode == 14, refused.stderr
    assert "remote: too many tries: at most 2 an hour per user; the next is allowed at " \
        in refused.stderr
    last = refused.stderr.strip().splitlines()[-1]
    assert "rejected the submission (ValueError): too many tries" in last
    assert "minutes)" in last and "Traceback" not in refused.stderr
    assert _stored(aws_fresh, doc["bucket"]) == objects and _items(aws_fresh) == items
    assert len([i for i in items if i["sk"]["S"] == "META"]) == 2

    # Another retention: a second deploy repairs the rule and both functions' setting.
    again = _deployed(cli, aws_fresh, lambda_runtime, tmp_path, "--retention-days", "14")
    assert sorted((c["resource"], c["detail"]) for c in again["changes"]) == [
        ("lambda-function", "environment"), ("lambda-function", "environment"),
        ("s3-bucket", "expiry of old tries")]
    (rule,) = s3.get_bucket_lifecycle_configuration(Bucket=doc["bucket"])["Rules"]
    assert rule["Expiration"] == {"Days": 14}


def _table(aws):
    import boto3

    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                 region_name=aws.region).resource(
        "dynamodb", endpoint_url=aws.endpoint_url).Table(model.TABLE)


def test_cancel_of_a_queued_try(cli, aws_fresh, lambda_runtime, repo, tmp_path):
    """`try --cancel` through the deployed function: the queued job ends cancelled at
    once, and the agent that receives its message deletes it without running anything."""
    from hgautomation.server import jobs

    doc = _deployed(cli, aws_fresh, lambda_runtime, tmp_path)
    sent = _try(cli, aws_fresh, lambda_runtime, repo, tmp_path, "-r", ".")
    assert sent.returncode == 0, sent.stderr
    try_id = _remote(sent.stderr)[0].split()[1].rstrip(":")

    proc = _try(cli, aws_fresh, lambda_runtime, repo, tmp_path, "--cancel", try_id,
                "-T", "json")
    assert proc.returncode == 0, proc.stderr
    assert _remote(proc.stderr) == [f"try {try_id}: 1 job cancelled (linux)",
                                    f"{doc['web_url']}/try/{try_id}"]
    assert f"try: {try_id}" in proc.stderr and f"page: {doc['web_url']}/try/{try_id}" \
        in proc.stderr
    document = jsondoc.check("try", proc.stdout)
    assert document["id"] == try_id and document["state"] == "cancelled"
    assert [(j["name"], j["state"]) for j in document["jobs"]] == [("linux", "cancelled")]
    table = _table(aws_fresh)
    assert jobs.get_try(table, try_id)["state"] == "cancelled"

    # Again: it has ended; said so, not an error.
    again = _try(cli, aws_fresh, lambda_runtime, repo, tmp_path, "--cancel", try_id)
    assert again.returncode == 0, again.stderr
    assert _remote(again.stderr)[0] == \
        f"try {try_id}: already ended (cancelled): nothing to cancel"
    # An unknown try: the server's one line, exit 14, nothing changed.
    unknown = _try(cli, aws_fresh, lambda_runtime, repo, tmp_path, "--cancel",
                   "20261207T191300Z-00000000")
    assert unknown.returncode == 14, unknown.stderr
    last = unknown.stderr.strip().splitlines()[-1]
    assert "rejected the cancel of try 20261207T191300Z-00000000" in last
    assert "no such try" in last and "Traceback" not in unknown.stderr

    # The message is still queued; an agent takes it, finds the job ended, deletes it.
    assert _peek(aws_fresh, doc["queues"]["linux"]) == [{"try": try_id, "job": "linux"}]
    agent = cli.run("-R", str(repo), "try-agent", "--drain", "--lease", "30",
                    "--hg", hgsource.hg_executable(), aws=aws_fresh, env=lambda_runtime.env,
                    state=tmp_path / "state", cwd=repo, timeout=180)
    assert agent.returncode == 0, agent.stderr
    assert f"job linux of try {try_id}: cancelled; message deleted" in agent.stderr
    assert "no job waiting: 0 jobs run" in agent.stdout
    sqs = aws_fresh.client("sqs")
    attributes = sqs.get_queue_attributes(
        QueueUrl=doc["queues"]["linux"],
        AttributeNames=["ApproximateNumberOfMessages",
                        "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    assert attributes == {"ApproximateNumberOfMessages": "0",
                          "ApproximateNumberOfMessagesNotVisible": "0"}
    assert jobs.get_job(table, try_id, "linux")["state"] == "cancelled"


def test_rerun_of_the_failed_job_of_a_finished_try(cli, aws_fresh, lambda_runtime, repo,
                                                   tmp_path):
    """`try --rerun ID --failed` of a try with one failed and one passed job: a new try
    with only the failed job and the same bundle; with --wait it is followed to its end."""
    import threading
    import time

    from hgautomation.server import jobs

    doc = _deployed(cli, aws_fresh, lambda_runtime, tmp_path, "--job", "linux",
                    "--job", "linux-2")
    sent = _try(cli, aws_fresh, lambda_runtime, repo, tmp_path, "-r", ".")
    assert sent.returncode == 0, sent.stderr
    old = _remote(sent.stderr)[0].split()[1].rstrip(":")
    table = _table(aws_fresh)
    for job, state in (("linux", "failed"), ("linux-2", "passed")):
        assert jobs.claim(table, old, job, "agent", 300, time.time()) == 1
        assert jobs.record(table, old, job, "agent", 1, jobs.JobResult(
            state, passed=2, failed=("test-x.t",) if state == "failed" else ()),
            time.time())
    for url in doc["queues"].values():  # what the agents would have deleted
        sqs = aws_fresh.client("sqs")
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    proc = _try(cli, aws_fresh, lambda_runtime, repo, tmp_path, "--rerun", old, "--failed",
                "-T", "json")
    assert proc.returncode == 0, proc.stderr
    first, page = _remote(proc.stderr)
    new = first.split()[1].rstrip(":")
    assert model.TRY_ID_RE.match(new) and new != old
    assert first == f"try {new}: 1 job queued (linux)"
    assert page == f"{doc['web_url']}/try/{new}"
    assert f"try: {new}" in proc.stderr
    document = jsondoc.check("try", proc.stdout)
    assert document["id"] == new and [j["name"] for j in document["jobs"]] == ["linux"]
    assert document["rerun_of"] == old and jobs.get_try(table, new)["rerun_of"] == old
    with urllib.request.urlopen(f"{lambda_runtime.local_url(doc['web_url'])}/try/{new}",
                                timeout=60) as answer:
        assert f'Rerun of</dt><dd><a class="mono" href="/try/{old}">' in answer.read().decode()
    s3 = aws_fresh.client("s3")
    bundles = [s3.get_object(Bucket=doc["bucket"], Key=model.bundle_key(t))["Body"].read()
               for t in (old, new)]
    assert bundles[0] == bundles[1] and bundles[0].startswith(model.BUNDLE2_MAGIC)
    assert _peek(aws_fresh, doc["queues"]["linux"]) == [{"try": new, "job": "linux"}]
    assert _peek(aws_fresh, doc["queues"]["linux-2"]) == []

    # Every job of the rerun passed: nothing failed to rerun (exit 14, one line).
    for job in ("linux",):
        jobs.claim(table, new, job, "agent", 300, time.time())
        jobs.record(table, new, job, "agent", 1, jobs.JobResult("passed", passed=3),
                    time.time())
    refused = _try(cli, aws_fresh, lambda_runtime, repo, tmp_path, "--rerun", new,
                   "--failed")
    assert refused.returncode == 14, refused.stderr
    assert "every job passed: no failed job to rerun" in refused.stderr.strip().splitlines()[-1]

    # --wait follows the rerun; an "agent" here passes the job once it is queued.
    def agent() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            for item in table.scan()["Items"]:
                if item.get("rerun_of") == old and item["id"] not in (new,):
                    try_id = item["id"]
                    if jobs.claim(table, try_id, "linux", "agent", 300, time.time()):
                        time.sleep(1)
                        jobs.record(table, try_id, "linux", "agent", 1,
                                    jobs.JobResult("passed", passed=3), time.time())
                        return
            time.sleep(0.5)

    worker = threading.Thread(target=agent, daemon=True)
    worker.start()
    followed = _try(cli, aws_fresh, lambda_runtime, repo, tmp_path, "--rerun", old,
                    "--failed", "--wait", "-T", "json", timeout=200)
    worker.join(10)
    assert followed.returncode == 0, followed.stderr
    final = jsondoc.check("try", followed.stdout)
    assert final["state"] == "passed" and final["id"] not in (old, new)
    assert "linux: queued" in followed.stderr and "linux: passed" in followed.stderr


# -- destroy ---------------------------------------------------------------------------------

def _look_alikes(aws) -> dict:
    """Things named like ours, in the places destroy looks, that are not ours."""
    aws.client("s3").create_bucket(Bucket="hg-try-look-alike",
                                   CreateBucketConfiguration={"LocationConstraint": aws.region})
    sqs = aws.client("sqs")
    sqs.create_queue(QueueName="hg-try-job-someone-else")
    sqs.create_queue(QueueName="hg-try-job-disowned", tags={model.TAG_MANAGED: "0"})
    aws.client("dynamodb").create_table(
        TableName="hg-try-state-copy", BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    aws.client("iam").create_role(RoleName="hg-try-helper", Path="/hg-try/",
                                  AssumeRolePolicyDocument="{}")
    return {"buckets": ["hg-try-look-alike"],
            "queues": ["hg-try-job-disowned", "hg-try-job-someone-else"],
            "tables": ["hg-try-state-copy"], "roles": ["hg-try-helper"]}


def test_destroy_removes_ours_and_nothing_else(cli, aws_fresh, lambda_runtime, repo,
                                               tmp_path):
    doc = _deployed(cli, aws_fresh, lambda_runtime, tmp_path)
    # A try, so the bucket and the queue are not empty; a submitter in the group.
    proc = cli.run("--hg-repo", str(repo), "try", "-r", ".", aws=aws_fresh,
                   env=lambda_runtime.env, state=tmp_path / "state", cwd=repo, timeout=180)
    assert proc.returncode == 0, proc.stderr
    iam = aws_fresh.client("iam")
    iam.create_user(UserName="alice")
    iam.add_user_to_group(GroupName="hg-try-submitters", UserName="alice")
    iam.attach_user_policy(UserName="alice", PolicyArn=doc["agent_policy"])
    others = _look_alikes(aws_fresh)
    expected_after = dict(NOTHING, **others)

    # Without a terminal and without -y: refused before anything is looked at.
    refused = _destroy(cli, aws_fresh, lambda_runtime, tmp_path)
    assert refused.returncode == 2, refused.stderr
    assert "nothing removed" in refused.stderr and "--yes" in refused.stderr
    dry = _destroy(cli, aws_fresh, lambda_runtime, tmp_path, "--dry-run", "-T", "json")
    assert dry.returncode == 0, dry.stderr
    planned = jsondoc.check("destroy-try-server", dry.stdout)
    assert len(planned["changes"]) == 11 and planned["dry_run"] is True
    assert _everything(aws_fresh)["functions"] == DEPLOYED["functions"]

    gone = _destroy(cli, aws_fresh, lambda_runtime, tmp_path, "-y", "-T", "json")
    assert gone.returncode == 0, gone.stderr
    removed = jsondoc.check("destroy-try-server", gone.stdout)
    assert removed["changes"] == [dict(c) for c in planned["changes"]]
    assert {c["action"] for c in removed["changes"]} == {"delete"}
    assert _everything(aws_fresh) == expected_after
    assert iam.list_attached_user_policies(UserName="alice")["AttachedPolicies"] == []

    again = _destroy(cli, aws_fresh, lambda_runtime, tmp_path, "-y")
    assert again.returncode == 0 and "removed 0 resources" in again.stdout
    assert _everything(aws_fresh) == expected_after
