"""Cancel and rerun (hgautomation.server.control) against moto: every refusal changes
nothing; a cancel ends queued jobs at once and asks running ones to stop; a rerun is a
new try of the same bundle, of all the jobs or only those that did not pass."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hgautomation import trydeploy
from hgautomation.server import control, jobs, model, store, upload

from .test_server_store import (
    BUNDLE,
    JOBS,
    NOW,
    MotoDeployment,
    moto_deployment,
    request,
    submission,
)

OTHER = "20261207T191300Z-00000000"  # well formed, never submitted
TARGET = trydeploy.Target(partition="aws", account="123456789012", region="us-west-2",
                          jobs=JOBS)


@pytest.fixture
def deployment() -> Iterator[MotoDeployment]:
    with moto_deployment() as d:
        yield d


def _submit(deployment: MotoDeployment) -> str:
    return store.create_try(deployment.clients, deployment.config, submission(), now=NOW).id


def _handle(deployment: MotoDeployment, event: dict, now: float = NOW + 60) -> list[str]:
    return control.handle(event, deployment.environ, upload.reply, deployment.clients, now)


def _everything(deployment: MotoDeployment) -> tuple:
    """What the deployment holds: items, objects and queued messages."""
    items = sorted((i["pk"], i["sk"], repr(sorted(i.items()))) for i in deployment.items())
    return (items, deployment.objects(), [deployment.messages(j) for j in JOBS])


def _state(deployment: MotoDeployment, try_id: str) -> str:
    return str(store.read_try(deployment.clients.table, try_id).stored_state)


REFUSED = [
    ("unknown action", {"action": "delete", "try": OTHER},
     "action: expected 'cancel' or 'rerun', got 'delete'"),
    ("action not a string", {"action": ["cancel"], "try": OTHER},
     "action: expected 'cancel' or 'rerun'"),
    ("null action", {"action": None, "try": OTHER}, "action: expected 'cancel' or 'rerun'"),
    ("missing try", {"action": "cancel"}, "request: missing try"),
    ("failed with cancel", {"action": "cancel", "try": OTHER, "failed": True},
     "request: unknown key 'failed' for cancel (expected action, try)"),
    ("a submission's key", {"action": "rerun", "try": OTHER, "bundle": "SEcyMA=="},
     "request: unknown key 'bundle' for rerun (expected action, try, failed)"),
    ("try not a string", {"action": "cancel", "try": 20261207}, "try: expected a try id"),
    ("try a path", {"action": "cancel", "try": "../../x"}, "try: expected a try id"),
    ("try with newline", {"action": "rerun", "try": OTHER + "\n"}, "try: expected a try id"),
    ("failed not a boolean", {"action": "rerun", "try": OTHER, "failed": "yes"},
     "failed: expected true or false"),
    ("unknown try (cancel)", {"action": "cancel", "try": OTHER},
     f"try {OTHER}: no such try"),
    ("unknown try (rerun)", {"action": "rerun", "try": OTHER, "failed": True},
     f"try {OTHER}: no such try"),
]


@pytest.mark.parametrize("event, complaint", [r[1:] for r in REFUSED],
                         ids=[r[0] for r in REFUSED])
def test_a_bad_control_request_is_refused_with_nothing_changed(deployment, event, complaint):
    _submit(deployment)
    before = _everything(deployment)
    with pytest.raises(ValueError) as caught:
        _handle(deployment, event)
    message = str(caught.value)
    assert message.startswith(complaint) and "\n" not in message, message
    assert _everything(deployment) == before


def test_the_handler_tells_control_requests_from_submissions(deployment, monkeypatch):
    """A request with an ``action`` key goes to control; one without is a submission,
    checked as ever (an ``action`` key is no submission's: upload.submit refuses it)."""
    for name, value in deployment.environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(store, "_warm", {deployment.config.table: deployment.clients})
    try_id = upload.handler(request(), None)[0].split()[1].rstrip(":")
    lines = upload.handler({"action": "cancel", "try": try_id}, None)
    assert lines == [f"try {try_id}: 2 jobs cancelled (linux, win-x64)", f"/try/{try_id}"]
    with pytest.raises(ValueError, match="unknown key 'action'"):
        upload.submit(dict(request(), action="cancel"), deployment.environ, deployment.clients)
    with pytest.raises(ValueError, match="request: unknown key 'branch', 'bundle', "):
        upload.handler(dict(request(), action="rerun", **{"try": try_id}), None)


# -- cancel -----------------------------------------------------------------------------

def test_cancel_ends_queued_jobs_at_once(deployment):
    try_id = _submit(deployment)
    lines = _handle(deployment, {"action": "cancel", "try": try_id})
    assert lines == [f"try {try_id}: 2 jobs cancelled (linux, win-x64)", f"/try/{try_id}"]
    for job in JOBS:
        item = jobs.get_job(deployment.clients.table, try_id, job)
        assert item["state"] == "cancelled" and item["ended"] == store.iso_time(NOW + 60)
    assert _state(deployment, try_id) == "cancelled"  # the try's stored state refreshed
    # A claim of a cancelled job fails: the agent that receives its message deletes it.
    assert jobs.claim(deployment.clients.table, try_id, "linux", "agent", 300, NOW + 70) is None


def test_cancel_asks_a_running_job_to_stop(deployment):
    """Breaking looks like: the running job is left alone (its agent never learns of the
    cancel), or is ended under its agent (which then records a result over it)."""
    table = deployment.clients.table
    try_id = _submit(deployment)
    assert jobs.claim(table, try_id, "linux", "agent-a", 300, NOW + 10) == 1
    lines = _handle(deployment, {"action": "cancel", "try": try_id}, now=NOW + 60)
    assert lines[0] == f"try {try_id}: 1 job cancelled (win-x64), 1 stopping (linux)"
    item = jobs.get_job(table, try_id, "linux")
    assert (item["state"], item["cancel_requested"], item["lease_owner"]) == \
        ("running", True, "agent-a")
    assert _state(deployment, try_id) == "running"
    # The agent's next renewal reads it; another agent's does not renew at all.
    assert jobs.renew(table, try_id, "linux", "agent-a", 1, 300, NOW + 100) == \
        jobs.Renewal(cancel_requested=True)
    assert jobs.renew(table, try_id, "linux", "agent-b", 1, 300, NOW + 100) is None
    assert jobs.end_cancelled(table, try_id, "linux", "agent-a", 1, NOW + 110)
    assert _state(deployment, try_id) == "cancelled"
    # Cancelling again: the try has ended.
    assert _handle(deployment, {"action": "cancel", "try": try_id})[0] == \
        f"try {try_id}: already ended (cancelled): nothing to cancel"


def test_cancel_ends_a_running_job_whose_agent_is_lost(deployment):
    """A lease that ran out: nothing runs the job, and the next claim would run it again."""
    table = deployment.clients.table
    try_id = _submit(deployment)
    jobs.claim(table, try_id, "linux", "agent-a", 30, NOW)
    lines = _handle(deployment, {"action": "cancel", "try": try_id}, now=NOW + 60)
    assert lines[0] == f"try {try_id}: 2 jobs cancelled (linux, win-x64)"
    assert jobs.get_job(table, try_id, "linux")["state"] == "cancelled"
    assert jobs.claim(table, try_id, "linux", "agent-b", 300, NOW + 70) is None


def test_cancel_of_an_ended_try_says_so_and_changes_nothing(deployment):
    try_id = _submit(deployment)
    deployment.put_job(try_id, "linux", state="passed")
    deployment.put_job(try_id, "win-x64", state="failed")
    store.refresh_try_state(deployment.clients.table, try_id)
    before = _everything(deployment)
    assert _handle(deployment, {"action": "cancel", "try": try_id}) == [
        f"try {try_id}: already ended (failed): nothing to cancel", f"/try/{try_id}"]
    assert _everything(deployment) == before


def test_cancel_leaves_ended_jobs_as_they_are(deployment):
    try_id = _submit(deployment)
    deployment.put_job(try_id, "linux", state="passed", passed=3)
    lines = _handle(deployment, {"action": "cancel", "try": try_id})
    assert lines[0] == f"try {try_id}: 1 job cancelled (win-x64), 1 already ended (linux)"
    item = jobs.get_job(deployment.clients.table, try_id, "linux")
    assert (item["state"], item["passed"]) == ("passed", 3)
    assert _state(deployment, try_id) == "cancelled"


def test_cancel_follows_a_job_claimed_under_it(deployment):
    """The job was read queued, then an agent claimed it: the conditional write fails,
    and the cancel reads it again and asks the agent to stop instead."""
    table = deployment.clients.table
    try_id = _submit(deployment)
    jobs.claim(table, try_id, "linux", "agent-a", 300, NOW + 10)
    assert control._cancel_job(table, try_id, "linux", "queued", NOW + 20) == "stopping"
    item = jobs.get_job(table, try_id, "linux")
    assert (item["state"], item["cancel_requested"]) == ("running", True)
    # Read running, then put back (its agent stopped): cancelled as a queued job.
    assert jobs.requeue(table, try_id, "linux", "agent-a", 1)
    assert control._cancel_job(table, try_id, "win-x64", "running", NOW + 20) == "cancelled"


def test_a_page_address_with_the_web_url(deployment):
    try_id = _submit(deployment)
    env = dict(deployment.environ, TRY_WEB_URL="https://abc.lambda-url.us-west-2.on.aws/")
    lines = control.handle({"action": "cancel", "try": try_id}, env, upload.reply,
                           deployment.clients, NOW)
    assert lines[1] == f"https://abc.lambda-url.us-west-2.on.aws/try/{try_id}"


# -- rerun ------------------------------------------------------------------------------

def _ended(deployment: MotoDeployment, **states: str) -> str:
    try_id = _submit(deployment)
    for job, state in states.items():
        deployment.put_job(try_id, job, state=state)
    store.refresh_try_state(deployment.clients.table, try_id)
    return try_id


def _bundle(deployment: MotoDeployment, try_id: str) -> bytes:
    return deployment.clients.s3.get_object(Bucket=deployment.config.bucket,
                                            Key=model.bundle_key(try_id))["Body"].read()


def _drain(deployment: MotoDeployment) -> None:
    """Take the first try's messages off the queues (as agents would have)."""
    sqs = deployment.clients.sqs
    for url in deployment.config.queues.values():
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_rerun_of_the_failed_jobs_is_a_new_try_of_the_same_bundle(deployment):
    old = _ended(deployment, linux="failed", **{"win-x64": "passed"})
    _drain(deployment)
    first, page = _handle(deployment, {"action": "rerun", "try": old, "failed": True},
                          now=NOW + 3600)
    new = first.split()[1].rstrip(":")
    assert model.TRY_ID_RE.match(new) and new != old
    assert first == f"try {new}: 1 job queued (linux)" and page == f"/try/{new}"
    assert _bundle(deployment, new) == _bundle(deployment, old) == BUNDLE
    record = store.read_try(deployment.clients.table, new)
    assert [(j.name, j.state) for j in record.jobs] == [("linux", "queued")]
    assert (record.node, record.user, record.branch, record.description) == \
        (submission().node, submission().user, submission().branch, submission().message)
    meta = deployment.clients.table.get_item(Key=model.try_key(new))["Item"]
    assert meta["rerun_of"] == old and meta["jobs"] == ["linux"]
    assert deployment.messages("linux") == [{"try": new, "job": "linux"}]
    assert deployment.messages("win-x64") == []
    # The old try is as it was.
    assert [j.state for j in store.read_try(deployment.clients.table, old).jobs] == \
        ["failed", "passed"]


def test_rerun_of_every_job(deployment):
    old = _ended(deployment, linux="cancelled", **{"win-x64": "passed"})
    _drain(deployment)
    first, _ = _handle(deployment, {"action": "rerun", "try": old})
    new = first.split()[1].rstrip(":")
    assert first == f"try {new}: 2 jobs queued (linux, win-x64)"
    for job in JOBS:
        assert deployment.messages(job) == [{"try": new, "job": job}]
    # Without --failed a try still running may be rerun too (a second run of it).
    running = _submit(deployment)
    assert _handle(deployment, {"action": "rerun", "try": running,
                                "failed": False})[0].endswith("2 jobs queued (linux, win-x64)")


def test_a_refused_rerun_stores_nothing(deployment):
    passed = _ended(deployment, linux="passed", **{"win-x64": "passed"})
    running = _submit(deployment)
    deployment.put_job(running, "linux", state="failed")
    gone = _ended(deployment, linux="error", **{"win-x64": "passed"})
    deployment.clients.s3.delete_object(Bucket=deployment.config.bucket,
                                        Key=model.bundle_key(gone))
    before = _everything(deployment)
    cases = [
        (passed, True, deployment.environ, f"try {passed}: every job passed: no failed job"),
        (running, True, deployment.environ,
         f"try {running} has not ended (win-x64 queued): its failed jobs can be rerun"),
        (gone, True, deployment.environ, f"try {gone}: its bundle is gone (expired)"),
        (passed, False, dict(deployment.environ, TRY_JOBS="linux"),
         f"try {passed}: job win-x64 is not deployed here any more (jobs: linux)"),
    ]
    for try_id, failed, environ, complaint in cases:
        with pytest.raises(ValueError) as caught:
            control.handle({"action": "rerun", "try": try_id, "failed": failed}, environ,
                           upload.reply, deployment.clients, NOW)
        assert str(caught.value).startswith(complaint), caught.value
        assert "\n" not in str(caught.value)
        assert _everything(deployment) == before


# -- who may, and what the upload role needs --------------------------------------------

def test_the_upload_role_may_make_every_call_of_cancel_and_rerun(deployment):
    """Cancel and rerun run as the upload function: each AWS call they make is one its
    role's policy allows (CopyObject reads its source: s3:GetObject on the bundle).

    Breaking looks like: a real deployment refusing the rerun with AccessDenied while
    moto (which checks no permission) lets it through."""
    old = _ended(deployment, linux="failed", **{"win-x64": "passed"})
    running = _submit(deployment)
    jobs.claim(deployment.clients.table, running, "linux", "agent", 300, NOW + 10)
    calls: set[str] = set()

    def seen(model, **kwargs):
        calls.add(f"{model.service_model.endpoint_prefix}:{model.name}")

    for client in (deployment.clients.table.meta.client, deployment.clients.s3,
                   deployment.clients.sqs):
        client.meta.events.register("before-call", seen)
    _handle(deployment, {"action": "rerun", "try": old, "failed": True})
    _handle(deployment, {"action": "cancel", "try": running})
    assert {"s3:CopyObject", "dynamodb:UpdateItem", "sqs:SendMessage"} <= calls, calls
    # IAM has no CopyObject action: it is a read of the source and a write; nor a
    # HeadObject one: s3:GetObject allows it.
    needed = (calls - {"s3:CopyObject", "s3:HeadObject"}) | {"s3:GetObject", "s3:PutObject"}
    policy = trydeploy.upload_policy(TARGET)
    allowed = {a for s in policy["Statement"] for a in s["Action"]}
    assert needed <= allowed, sorted(needed - allowed)
    reads = [r for s in policy["Statement"] if "s3:GetObject" in s["Action"]
             for r in s["Resource"]]
    assert reads == [f"{TARGET.bucket_arn}/tries/*/bundle.hg"]


def test_only_the_submitters_group_may_send_them():
    """No new permission: cancel and rerun go through the upload function, which only
    the submitters' group (and the account's administrators) may invoke."""
    submitters = trydeploy.submitters_policy(TARGET)
    invoked = [r for s in submitters["Statement"] if "lambda:InvokeFunction" in s["Action"]
               for r in s["Resource"]]
    assert invoked == [TARGET.function_arn(model.UPLOAD_FUNCTION)]
    writes = {a for s in submitters["Statement"] for a in s["Action"]} - {
        "lambda:InvokeFunction", *trydeploy.READ_TRIES}
    assert writes == set()
    for make in (trydeploy.agent_policy, trydeploy.web_policy):
        assert not any("lambda:" in a for s in make(TARGET)["Statement"] for a in s["Action"])
