"""try-agent and `try --wait` against moto (no test host needed): what happens before a
host is reached (queues, the table, applying a bundle with no hgrc and no hook) and how
the client follows a try. The runs on a real host are in tests/linux/test_try_agent_host.py."""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from pathlib import Path

import pytest
from harness import hgsource, jsondoc, tryjobs
from harness.net import free_port

from hgautomation.server import model

FUNCTION = "ci-try-server-upload"


def _hg(repo: Path, *args: str) -> str:
    return hgsource.hg("-R", str(repo), *args, timeout=120)


@pytest.fixture
def repos(tmp_path) -> tuple[Path, Path]:
    """(the agent's clone: one public changeset; the submitter's: a draft on top)."""
    base = tmp_path / "base"
    hgsource.hg("init", str(base), timeout=60)
    (base / "a.txt").write_text("one\n")
    _hg(base, "commit", "-A", "-q", "-m", "public base", "-u", "Pub <pub@example.org>")
    _hg(base, "phase", "--public", "-r", ".")
    user = hgsource.clone(base, tmp_path / "user")
    (user / "b.txt").write_text("draft\n")
    _hg(user, "commit", "-A", "-q", "-m", "try me", "-u", "Dev <dev@example.org>")
    return base, user


@pytest.fixture
def store(aws_fresh) -> tryjobs.TryStore:
    return tryjobs.create_store(aws_fresh)


@pytest.fixture
def unreachable(tmp_path) -> Path:
    """An ssh config naming a host whose port refuses connections."""
    config = tmp_path / "ssh-config"
    config.write_text(f"Host nowhere\n  HostName 127.0.0.1\n  Port {free_port()}\n"
                      "  User hg\n")
    return config


def agent(cli, aws, base: Path, ssh_config: Path, tmp_path: Path, *extra: str,
          env: dict | None = None, timeout: float = 120):
    return cli.run("-R", str(base), "--ssh-config", str(ssh_config), "try-agent",
                   "--host", "nowhere", "--hg", hgsource.hg_executable(), "--drain", *extra,
                   state=tmp_path / "state", aws=aws, cwd=tmp_path, env=env, timeout=timeout)


def test_drain_exits_when_no_job_waits(cli, store, repos, unreachable, tmp_path):
    start = time.monotonic()
    proc = agent(cli, store.aws, repos[0], unreachable, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "no job waiting: 0 jobs run" in proc.stdout
    assert time.monotonic() - start < 30


def test_no_queue_is_one_line(cli, aws_fresh, repos, unreachable, tmp_path):
    proc = agent(cli, aws_fresh, repos[0], unreachable, tmp_path, "--job", "nosuch")
    assert proc.returncode == 14, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(
        f"try server: no queue {model.queue_name('nosuch')} in region {aws_fresh.region}")
    assert "Traceback" not in proc.stderr


def test_a_bundle_without_its_node_is_refused(cli, store, repos, unreachable, tmp_path):
    """The try names a node its bundle does not hold: the job ends in error, nothing runs."""
    base, user = repos
    bundle = tmp_path / "b.hg"
    _hg(user, "bundle", "-q", "--type", "gzip-v2", "--base", "public()", "-r", "tip",
        str(bundle))
    try_id = store.submit_bundle(bundle.read_bytes(), "1" * 40)
    proc = agent(cli, store.aws, base, unreachable, tmp_path)
    assert proc.returncode == 0, proc.stderr
    job = store.job(try_id)
    assert job["state"] == "error" and job["attempt"] == 1
    assert "does not contain its node 111111111111: refused" in job["error"]
    log = store.object(job["log_key"]).decode()
    assert "does not contain its node" in log and "connect to" not in log
    assert store.visible_messages() == []  # the message is gone: the job has ended
    assert store.table.get_item(Key=model.try_key(try_id))["Item"]["state"] == "error"


def test_a_payload_that_is_no_bundle_is_an_error(cli, store, repos, unreachable, tmp_path):
    try_id = store.submit_bundle(b"HG20 but not really a bundle", "2" * 40)
    proc = agent(cli, store.aws, repos[0], unreachable, tmp_path)
    assert proc.returncode == 0, proc.stderr
    job = store.job(try_id)
    assert job["state"] == "error"
    assert job["error"].startswith("try server: the try's bundle cannot be applied: ")


def test_no_hgrc_and_no_hook_while_the_bundle_is_applied(cli, store, repos, unreachable,
                                                         tmp_path):
    """The agent's own hgrc has hooks on every transaction: none may fire on the bundle.

    Breaking looks like: the marker file exists (hg read HGRCPATH or the clone's hgrc
    while applying the try's bundle)."""
    base, user = repos
    marker = tmp_path / "hook-ran"
    hook = f"touch {marker}"
    hgrc = tmp_path / "agent-hgrc"
    hgrc.write_text("[hooks]\n" + "".join(f"{name} = {hook}\n" for name in (
        "pretxnopen", "pretxnchangegroup", "changegroup", "incoming", "pretxnclose",
        "txnclose", "preoutgoing", "outgoing", "pre-unbundle", "pre-clone")))
    # The agent's own repository may configure hg for itself too.
    with open(base / ".hg" / "hgrc", "a") as fh:
        fh.write(f"[hooks]\nchangegroup.repo = {hook}\n")
    try_id, node = store.submit(user)
    proc = agent(cli, store.aws, base, unreachable, tmp_path, env={"HGRCPATH": str(hgrc)})
    assert proc.returncode == 0, proc.stderr
    job = store.job(try_id)
    # The bundle applied and held the node: the run went on to the host (which refused).
    assert job["state"] == "error" and job["error"].startswith("connection error"), job
    log = store.object(job["log_key"]).decode()
    assert "apply it to a clean clone" in log and f"node {node}" in log
    assert not marker.exists()
    # The hook works when hg reads that hgrc: the test would see it fire.
    hgsource.hg("-R", str(user), "--config", f"hooks.pre-log={hook}", "log", "-l1")
    assert marker.exists()


def test_a_job_received_too_often_ends_in_error(cli, store, repos, unreachable, tmp_path):
    """The job's message was received ``model.MAX_RECEIVES`` times without a result (its
    agents lost or stopped each time): the next receive moves it to the dead-letter
    queue, and the job ends in error.

    Breaking looks like: the job stays ``running`` forever (nobody reads the DLQ)."""
    try_id, _ = store.submit(repos[1])
    sqs = store.aws.client("sqs")
    for _ in range(model.MAX_RECEIVES):
        assert len(sqs.receive_message(QueueUrl=store.queues["linux"],
                                       VisibilityTimeout=0)["Messages"]) == 1
    _end_job(store, try_id, "running", attempt=3, lease_owner="lost-agent",
             lease_until=int(time.time()) - 60)
    proc = agent(cli, store.aws, repos[0], unreachable, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"job linux of try {try_id}: error (dead letter)" in proc.stdout
    job = store.job(try_id)
    assert (job["state"], job["attempt"]) == ("error", 3)
    assert f"received {model.MAX_RECEIVES} times without a result" in job["error"]
    assert "lease_owner" not in job
    assert store.table.get_item(Key=model.try_key(try_id))["Item"]["state"] == "error"
    assert sqs.receive_message(QueueUrl=store.dlqs["linux"]).get("Messages", []) == []


def test_a_dead_letter_with_a_live_lease_is_left_alone(cli, store, repos, unreachable,
                                                       tmp_path):
    try_id, _ = store.submit(repos[1], state="running")
    _end_job(store, try_id, "running", attempt=3, lease_owner="live-agent",
             lease_until=int(time.time()) + 600)
    store.aws.client("sqs").send_message(QueueUrl=store.dlqs["linux"],
                                         MessageBody=model.message(try_id, "linux"))
    proc = agent(cli, store.aws, repos[0], unreachable, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert store.job(try_id)["state"] == "running"


# -- the client: try --wait and -T json ------------------------------------------------

def _moto_api(aws, path: str, body: dict | None = None) -> dict:
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(aws.endpoint_url + path, data=data,
                                 method="GET" if body is None else "POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        text = resp.read().decode()
    return json.loads(text) if text.strip() else {}


@pytest.fixture
def upload(store):
    """moto's no-Docker Lambda with the upload function: ``upload(reply)`` queues the
    function's next reply (a list of lines, as the upload function answers)."""
    aws = store.aws
    before = _moto_api(aws, "/moto-api/config")
    _moto_api(aws, "/moto-api/config", {"lambda": {"use_docker": False}})
    role = aws.client("iam").create_role(RoleName="try-server",
                                         AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("handler.py", "def handler(event, context):\n    return {}\n")
    aws.client("lambda").create_function(
        FunctionName=FUNCTION, Runtime="python3.12", Role=role, Handler="handler.handler",
        Code={"ZipFile": code.getvalue()})

    def queue(lines: list[str]) -> None:
        _moto_api(aws, "/moto-api/static/lambda-simple/response",
                  {"results": [json.dumps(lines)], "region": aws.region})
    try:
        yield queue
    finally:
        _moto_api(aws, "/moto-api/config", {"lambda": before.get("lambda", {"use_docker": True})})


def _reply(try_id: str) -> list[str]:
    return [f"try {try_id}: 1 job queued (linux)", f"https://try.example/try/{try_id}"]


def _try(cli, store, user: Path, tmp_path: Path, *args: str):
    return cli.run("--hg-repo", str(user), "try", "-r", "tip", *args, cwd=user,
                   state=tmp_path / "state", aws=store.aws, timeout=120)


def _end_job(store, try_id: str, state: str, **values) -> None:
    sets = ", ".join(f"#{k} = :{k}" for k in ("state", *values))
    store.table.update_item(
        Key=model.job_key(try_id, "linux"), UpdateExpression=f"SET {sets}",
        ExpressionAttributeNames={f"#{k}": k for k in ("state", *values)},
        ExpressionAttributeValues={f":{k}": v for k, v in {"state": state, **values}.items()})


def test_try_prints_the_id_and_page_and_json_at_submission(cli, store, upload, repos,
                                                           tmp_path):
    try_id, node = store.submit(repos[1])  # what the server stored for this submission
    upload(_reply(try_id))
    proc = _try(cli, store, repos[1], tmp_path, "-T", "json")
    assert proc.returncode == 0, proc.stderr
    document = jsondoc.check("try", proc.stdout)
    assert (document["id"], document["node"], document["state"]) == (try_id, node, "queued")
    assert document["url"] == f"/try/{try_id}"
    assert [j["name"] for j in document["jobs"]] == ["linux"]
    assert f"try: {try_id}" in proc.stderr and f"page: https://try.example/try/{try_id}" \
        in proc.stderr  # -T json: the result lines go to stderr

    upload(_reply(try_id))
    proc = _try(cli, store, repos[1], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"try: {try_id}\npage: https://try.example/try/{try_id}\n" in proc.stdout


def test_wait_follows_the_try_until_it_passes(cli, store, upload, repos, tmp_path):
    try_id, _ = store.submit(repos[1])
    upload(_reply(try_id))
    _end_job(store, try_id, "running", attempt=1)

    def finish():
        time.sleep(2)
        _end_job(store, try_id, "passed", passed=3, skipped=0, failed=[])
    finisher = threading.Thread(target=finish)
    finisher.start()
    try:
        proc = _try(cli, store, repos[1], tmp_path, "--wait", "-T", "json")
    finally:
        finisher.join()
    assert proc.returncode == 0, proc.stderr
    assert "linux: running (attempt 1)\n" in proc.stderr
    assert "linux: passed (attempt 1)\n" in proc.stderr
    document = jsondoc.check("try", proc.stdout)
    assert document["state"] == "passed" and document["jobs"][0]["passed"] == 3


@pytest.mark.parametrize("state, code, line", [
    ("failed", 1, "tests failed: try {id}: 1 test failed: test-x.t"),
    ("error", 16, "try job: try {id}: linux error (the try's page shows why)"),
    ("timed-out", 16, "try job: try {id}: linux timed-out (the try's page shows why)"),
])
def test_wait_exit_codes(cli, store, upload, repos, tmp_path, state, code, line):
    try_id, _ = store.submit(repos[1])
    upload(_reply(try_id))
    _end_job(store, try_id, state, attempt=1, passed=2, skipped=0,
             failed=["test-x.t"] if state == "failed" else [])
    proc = _try(cli, store, repos[1], tmp_path, "--wait")
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].split(" [log: ")[0] == line.format(id=try_id)
    if state == "failed":
        assert "  failed: test-x.t" in proc.stdout


def test_wait_needs_a_try_id_in_the_reply(cli, store, upload, repos, tmp_path):
    upload(["queued try job 17", "results: https://try.example/17"])
    proc = _try(cli, store, repos[1], tmp_path, "--wait")
    assert proc.returncode == 14, proc.stderr
    assert "the Try server's reply names no try id: cannot follow it (--wait)" in proc.stderr
