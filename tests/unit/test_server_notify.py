"""hgautomation.server.notify and the agent's call of it, against moto (DynamoDB, and SNS
delivering to an SQS queue subscribed to the topic): one message when a try ends, never
two, and a failed publish is the agent's warning, not its error."""

from __future__ import annotations

import json
import types
from collections.abc import Iterator
from typing import Any

import pytest

from hgautomation.commands import try_agent
from hgautomation.server import jobs, model, notify, store

from .test_server_store import NOW, MotoDeployment, moto_deployment, submission

ACCOUNT, REGION = "123456789012", "us-west-2"
TOPIC = model.topic_arn(ACCOUNT, REGION)
WEB = "https://abc.lambda-url.us-west-2.on.aws"


class Deployment:
    """A moto deployment (jobs linux and win-x64) with the topic and a queue subscribed."""

    def __init__(self, d: MotoDeployment):
        self.d = d
        self.table = d.clients.table
        self.sns = d.session.client("sns")
        assert self.sns.create_topic(Name=model.TOPIC)["TopicArn"] == TOPIC
        sqs = d.clients.sqs
        self.inbox = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.inbox, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        self.sns.subscribe(TopicArn=TOPIC, Protocol="sqs", Endpoint=arn)

    def new_try(self) -> str:
        config = store.Config(**{**vars(self.d.config), "web_url": WEB})
        return store.create_try(self.d.clients, config, submission(), now=NOW).id

    def end(self, try_id: str, job: str, state: str, failed: tuple[str, ...] = (),
            error: str = "") -> None:
        """Claim and record the job as an agent does."""
        attempt = jobs.claim(self.table, try_id, job, "agent", 300, NOW + 10)
        assert attempt == 1
        result = jobs.JobResult(state=state, passed=3, failed=failed, error=error,
                                failures=jobs.cut_failures([(n, "diff") for n in failed]))
        assert jobs.record(self.table, try_id, job, "agent", attempt, result, NOW + 20)

    def received(self) -> list[dict]:
        got = self.d.clients.sqs.receive_message(QueueUrl=self.inbox, MaxNumberOfMessages=10,
                                                 WaitTimeSeconds=0).get("Messages", [])
        return [json.loads(m["Body"]) for m in got]


@pytest.fixture
def deployment() -> Iterator[Deployment]:
    with moto_deployment() as d:
        yield Deployment(d)


def test_the_subject_is_what_sns_takes():
    assert notify.subject("20261207T191300Z-1a2b3c4d", "failed", 2) == \
        "try 20261207T191300Z-1a2b3c4d: failed, 2 new failures"
    assert notify.subject("x", "passed", 1) == "try x: passed, 1 new failure"
    odd = notify.subject("é\n" + "x" * 200, "passed", 0)
    assert len(odd) == 100 and odd.isascii() and "\n" not in odd and odd.startswith("try ??x")


def test_one_message_when_the_last_job_ends(deployment):
    """Breaking: a message per job, none at all, or one before the try has ended."""
    try_id = deployment.new_try()
    deployment.end(try_id, "linux", model.FAILED, failed=("test-a.t", "test-b.t"))
    assert notify.try_ended(deployment.table, deployment.sns, TOPIC, try_id) is False
    assert deployment.received() == []
    deployment.end(try_id, "win-x64", model.ERROR, error="run-tests.py exited 2\nmore")
    assert notify.try_ended(deployment.table, deployment.sns, TOPIC, try_id) is True
    assert notify.try_ended(deployment.table, deployment.sns, TOPIC, try_id) is False
    (message,) = deployment.received()
    assert message["TopicArn"] == TOPIC
    assert message["Subject"] == f"try {try_id}: error, 2 new failures"
    assert message["Message"] == (
        f"{WEB}/try/{try_id}\n\n"
        f"try {try_id}: fix the frobnicator\n"
        "Alice <alice@example.org>, branch default, node 0123456789ab\n\n"
        "linux: failed, 2 new failures\n  test-a.t\n  test-b.t\n"
        "win-x64: error (run-tests.py exited 2)\n")
    assert jobs.get_try(deployment.table, try_id)["notified"] is True


def test_a_passed_try(deployment):
    try_id = deployment.new_try()
    deployment.end(try_id, "linux", model.PASSED)
    deployment.end(try_id, "win-x64", model.PASSED)
    assert notify.try_ended(deployment.table, deployment.sns, TOPIC, try_id)
    (message,) = deployment.received()
    assert message["Subject"] == f"try {try_id}: passed, 0 new failures"
    assert "linux: passed\nwin-x64: passed\n" in message["Message"]


def test_an_unknown_try_or_one_still_queued_is_not_announced(deployment):
    assert not notify.try_ended(deployment.table, deployment.sns, TOPIC,
                                "20261207T191300Z-00000000")
    try_id = deployment.new_try()
    assert not notify.try_ended(deployment.table, deployment.sns, TOPIC, try_id)
    assert "notified" not in jobs.get_try(deployment.table, try_id)
    assert deployment.received() == []


class _Racing:
    """A table on which another caller announces the try between this one's reads and
    its conditional write (two agents ending the last two jobs at once)."""

    def __init__(self, table: Any, other: Any):
        self._table, self._other = table, other
        self.name, self.meta = table.name, table.meta

    def get_item(self, **kwargs: Any) -> dict:
        return self._table.get_item(**kwargs)

    def query(self, **kwargs: Any) -> dict:
        return self._table.query(**kwargs)

    def update_item(self, **kwargs: Any) -> dict:
        self._other()
        return self._table.update_item(**kwargs)


def test_two_callers_at_once_send_one_message(deployment):
    """Breaking: publish without the conditional write of `notified`: two messages."""
    try_id = deployment.new_try()
    deployment.end(try_id, "linux", model.PASSED)
    deployment.end(try_id, "win-x64", model.FAILED, failed=("test-c.t",))
    won = []
    racing = _Racing(deployment.table, lambda: won.append(
        notify.try_ended(deployment.table, deployment.sns, TOPIC, try_id)))
    assert notify.try_ended(racing, deployment.sns, TOPIC, try_id) is False
    assert won == [True]
    assert [m["Subject"] for m in deployment.received()] == [
        f"try {try_id}: failed, 1 new failure"]


def test_many_failures_are_named_up_to_a_limit(deployment):
    try_id = deployment.new_try()
    names = tuple(f"test-{i:03}.t" for i in range(notify.MAX_NAMES + 7))
    deployment.end(try_id, "linux", model.FAILED, failed=names)
    deployment.end(try_id, "win-x64", model.PASSED)
    notify.try_ended(deployment.table, deployment.sns, TOPIC, try_id)
    (message,) = deployment.received()
    assert f"{len(names)} new failures" in message["Subject"]
    text = message["Message"]
    assert "  test-049.t\n" in text and "test-050.t" not in text
    assert "  ... and 7 more (see the page)\n" in text


# -- the agent ----------------------------------------------------------------------------------

def _agent(deployment: Deployment, arn: str = f"arn:aws:iam::{ACCOUNT}:user/agent"):
    """An Agent on the moto deployment, without its command line."""
    agent = try_agent.Agent.__new__(try_agent.Agent)
    agent.session = types.SimpleNamespace(caller_identity=lambda: {"Arn": arn},
                                          region=REGION)
    agent.table = agent.lease_table = deployment.table
    agent.sqs, agent.s3, agent.sns = deployment.d.clients.sqs, None, deployment.sns
    agent.opts = types.SimpleNamespace(lease=300)
    agent.owner, agent.ran, agent._topic = "agent-1", 0, None
    return agent


def test_the_agent_announces_the_try_it_ends(deployment, captured, monkeypatch):
    """Breaking: the agent records the last job and no message is sent."""
    try_id = deployment.new_try()
    deployment.end(try_id, "win-x64", model.PASSED)
    agent = _agent(deployment)
    queue = try_agent.Queue("linux", deployment.d.config.queues["linux"], None)
    monkeypatch.setattr(agent, "run", lambda message, attempt: (jobs.JobResult(
        state=model.FAILED, passed=1, failed=("test-x.t",)), {"test-x.t": "failed"}))
    raw = deployment.d.clients.sqs.receive_message(
        QueueUrl=queue.url, AttributeNames=["ApproximateReceiveCount"])["Messages"][0]
    agent.handle(queue, raw)
    assert jobs.get_job(deployment.table, try_id, "linux")["state"] == model.FAILED
    (message,) = deployment.received()
    assert message["Subject"] == f"try {try_id}: failed, 1 new failure"
    assert f"try {try_id} ended: message sent to {TOPIC}" in captured.err_text


def test_the_agent_announces_a_try_its_dead_letter_ends(deployment, captured):
    try_id = deployment.new_try()
    deployment.end(try_id, "linux", model.PASSED)
    sqs = deployment.d.clients.sqs
    dlq = sqs.get_queue_url(QueueName=model.dlq_name("win-x64"))["QueueUrl"]
    sqs.send_message(QueueUrl=dlq, MessageBody=model.message(try_id, "win-x64"))
    agent = _agent(deployment)
    agent.queues = [try_agent.Queue("win-x64", deployment.d.config.queues["win-x64"], dlq)]
    agent.dead_letters()
    (message,) = deployment.received()
    assert message["Subject"] == f"try {try_id}: error, 0 new failures"


def test_a_failed_publish_is_a_warning(deployment, captured):
    """No topic in this account (a deployment from before it, or no sns:Publish): the
    job's result stands, the agent says why no message went out."""
    try_id = deployment.new_try()
    deployment.end(try_id, "linux", model.PASSED)
    deployment.end(try_id, "win-x64", model.PASSED)
    agent = _agent(deployment, arn="arn:aws:iam::999999999999:user/agent")
    agent.notify(try_id)
    assert agent._topic == "arn:aws:sns:us-west-2:999999999999:hg-try-events"
    assert f"warning: try {try_id}: its end was not announced on the hg-try-events topic" \
        in captured.err_text
    assert deployment.received() == []
