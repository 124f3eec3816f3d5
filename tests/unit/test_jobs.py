"""hgautomation.server.jobs against moto's in-process DynamoDB: the lease rules that keep
two agents off one attempt and no job running forever."""

from __future__ import annotations

import json

import pytest

from hgautomation.server import jobs, model, store

from .helpers import try_table

REGION = "us-east-1"
TRY = "20261207T191300Z-1a2b3c4d"
NOW = 1_800_000_000.0


@pytest.fixture
def table(monkeypatch):
    with try_table(monkeypatch, TRY, ("linux", "other"), REGION) as t:
        yield t


def test_two_agents_never_run_the_same_attempt(table):
    assert jobs.claim(table, TRY, "linux", "agent-a", 300, NOW) == 1
    # The second agent (the message redelivered early) finds a live lease.
    assert jobs.claim(table, TRY, "linux", "agent-b", 300, NOW + 10) is None
    item = jobs.get_job(table, TRY, "linux")
    assert (item["state"], item["attempt"], item["lease_owner"]) == ("running", 1, "agent-a")
    assert item["lease_until"] == NOW + 300
    assert item["started"] == jobs.iso(NOW)


def test_renew_keeps_the_lease_and_only_for_its_owner(table):
    jobs.claim(table, TRY, "linux", "agent-a", 300, NOW)
    assert jobs.renew(table, TRY, "linux", "agent-a", 1, 300, NOW + 250)
    # Renewed: at NOW + 400 the lease still holds (it would have ended at NOW + 300).
    assert jobs.claim(table, TRY, "linux", "agent-b", 300, NOW + 400) is None
    assert not jobs.renew(table, TRY, "linux", "agent-b", 1, 300, NOW + 260)
    assert not jobs.renew(table, TRY, "linux", "agent-a", 2, 300, NOW + 260)  # not its attempt


def test_a_renewal_says_whether_a_cancel_was_asked_for(table):
    """The cancel's flag reaches the agent through its renewal (no extra read).

    Breaking looks like: the renewal reports no cancel, and the run goes on to its end."""
    jobs.claim(table, TRY, "linux", "agent-a", 300, NOW)
    assert jobs.renew(table, TRY, "linux", "agent-a", 1, 300, NOW + 10) == jobs.Renewal(False)
    table.update_item(Key=model.job_key(TRY, "linux"),
                      UpdateExpression="SET cancel_requested = :yes",
                      ExpressionAttributeValues={":yes": True})
    assert jobs.renew(table, TRY, "linux", "agent-a", 1, 300, NOW + 20) == jobs.Renewal(True)
    assert jobs.renew(table, TRY, "linux", "agent-b", 1, 300, NOW + 20) is None


def test_only_the_owner_ends_a_cancelled_job(table):
    jobs.claim(table, TRY, "linux", "agent-a", 300, NOW)
    assert not jobs.end_cancelled(table, TRY, "linux", "agent-b", 1, NOW + 5)
    assert not jobs.end_cancelled(table, TRY, "linux", "agent-a", 2, NOW + 5)
    assert jobs.get_job(table, TRY, "linux")["state"] == "running"
    assert jobs.end_cancelled(table, TRY, "linux", "agent-a", 1, NOW + 5)
    item = jobs.get_job(table, TRY, "linux")
    assert (item["state"], item["ended"]) == ("cancelled", jobs.iso(NOW + 5))
    assert "lease_until" not in item
    # Ended once: neither a result nor a put-back lands on it afterwards.
    assert not jobs.record(table, TRY, "linux", "agent-a", 1,
                           jobs.JobResult(model.FAILED, failed=("t.t",)), NOW + 6)
    assert not jobs.requeue(table, TRY, "linux", "agent-a", 1)
    assert jobs.get_try(table, TRY)["state"] == "queued"  # refreshed: "other" is queued
    jobs.claim(table, TRY, "other", "agent-a", 300, NOW)
    jobs.end_cancelled(table, TRY, "other", "agent-a", 1, NOW + 7)
    assert jobs.get_try(table, TRY)["state"] == "cancelled"


def test_an_expired_lease_is_taken_over_as_attempt_2(table):
    assert jobs.claim(table, TRY, "linux", "agent-a", 5, NOW) == 1
    assert jobs.claim(table, TRY, "linux", "agent-b", 300, NOW + 6) == 2
    # The lost agent comes back: it can neither renew nor record nor put the job back.
    assert not jobs.renew(table, TRY, "linux", "agent-a", 1, 300, NOW + 7)
    assert not jobs.record(table, TRY, "linux", "agent-a", 1,
                           jobs.JobResult(model.PASSED, passed=3), NOW + 8)
    assert not jobs.requeue(table, TRY, "linux", "agent-a", 1)
    assert jobs.get_job(table, TRY, "linux")["lease_owner"] == "agent-b"
    assert jobs.record(table, TRY, "linux", "agent-b", 2,
                       jobs.JobResult(model.PASSED, passed=3), NOW + 9)
    item = jobs.get_job(table, TRY, "linux")
    assert (item["state"], item["attempt"], item["passed"]) == ("passed", 2, 3)


def test_three_lost_attempts_end_in_error(table):
    for attempt in (1, 2, 3):
        assert jobs.claim(table, TRY, "linux", f"agent-{attempt}", 5,
                          NOW + 10 * attempt) == attempt
    # The fourth claim (after attempt 3's lease ran out) runs nothing: the job ends.
    assert jobs.claim(table, TRY, "linux", "agent-4", 5, NOW + 40) is None
    item = jobs.get_job(table, TRY, "linux")
    assert item["state"] == "error"
    assert item["attempt"] == model.MAX_ATTEMPTS
    assert "3 attempts" in item["error"]
    assert "lease_until" not in item
    assert jobs.claim(table, TRY, "linux", "agent-5", 5, NOW + 50) is None


def test_only_the_owner_records(table):
    jobs.claim(table, TRY, "linux", "agent-a", 300, NOW)
    result = jobs.JobResult(model.FAILED, passed=2, failed=("test-x.t",), skipped=1,
                            failures=jobs.cut_failures([("test-x.t", "-a\n+b\n")]),
                            duration=12.34, log_key="l", report_key="r")
    assert not jobs.record(table, TRY, "linux", "agent-b", 1, result, NOW + 5)
    assert jobs.get_job(table, TRY, "linux")["state"] == "running"
    assert jobs.record(table, TRY, "linux", "agent-a", 1, result, NOW + 5)
    item = jobs.get_job(table, TRY, "linux")
    assert item["state"] == "failed" and item["failed"] == ["test-x.t"]
    assert item["failures"] == [{"name": "test-x.t", "output": "-a\n+b\n"}]
    assert (item["passed"], item["skipped"], item["duration"]) == (2, 1, 12.34)
    assert item["ended"] == jobs.iso(NOW + 5)
    # Recorded once: a second record (or a requeue) of the ended attempt is refused.
    assert not jobs.record(table, TRY, "linux", "agent-a", 1, result, NOW + 6)
    assert not jobs.requeue(table, TRY, "linux", "agent-a", 1)


def test_requeue_puts_the_job_back_for_anyone(table):
    jobs.claim(table, TRY, "linux", "agent-a", 300, NOW)
    assert jobs.requeue(table, TRY, "linux", "agent-a", 1)
    item = jobs.get_job(table, TRY, "linux")
    assert item["state"] == "queued" and "lease_owner" not in item
    assert item["attempt"] == 0  # the stopped attempt is taken back
    assert jobs.claim(table, TRY, "linux", "agent-b", 300, NOW + 1) == 1


def test_put_backs_do_not_use_up_the_attempts(table):
    """Agents stopped (SIGTERM) over and over never end the job; lost ones do, after 3."""
    for n in range(model.MAX_ATTEMPTS + 2):
        assert jobs.claim(table, TRY, "linux", f"stopped-{n}", 300, NOW + n) == 1
        assert jobs.requeue(table, TRY, "linux", f"stopped-{n}", 1)
    now = NOW + 100
    for attempt in range(1, model.MAX_ATTEMPTS + 1):  # each agent lost: its lease runs out
        assert jobs.claim(table, TRY, "linux", f"lost-{attempt}", 10, now) == attempt
        now += 11
    assert jobs.claim(table, TRY, "linux", "last", 10, now) is None
    assert jobs.get_job(table, TRY, "linux")["state"] == "error"


def test_try_state_follows_its_jobs(table):
    jobs.claim(table, TRY, "linux", "a", 300, NOW)
    jobs.record(table, TRY, "linux", "a", 1, jobs.JobResult(model.PASSED, passed=1), NOW)
    assert jobs.get_try(table, TRY)["state"] == "running"  # "other" is still queued
    jobs.claim(table, TRY, "other", "a", 300, NOW)
    jobs.record(table, TRY, "other", "a", 1,
                jobs.JobResult(model.ERROR, error="host gone"), NOW)
    assert jobs.get_try(table, TRY)["state"] == "error"
    doc = store.try_document(table, TRY)
    assert doc["state"] == "error" and [j["name"] for j in doc["jobs"]] == ["linux", "other"]
    json.dumps(doc)  # plain JSON: no Decimals


def test_give_up_spares_a_live_lease(table):
    jobs.claim(table, TRY, "linux", "a", 300, NOW)
    assert not jobs.give_up(table, TRY, "linux", NOW + 10, "dead letter")
    assert jobs.give_up(table, TRY, "linux", NOW + 301, "dead letter")
    assert jobs.get_job(table, TRY, "linux")["error"] == "dead letter"
    assert jobs.give_up(table, TRY, "other", NOW, "dead letter")  # queued
    assert not jobs.give_up(table, TRY, "nosuch", NOW, "dead letter")


def test_try_document_shape(table):
    jobs.claim(table, TRY, "linux", "a", 300, NOW)
    jobs.record(table, TRY, "linux", "a", 1, jobs.JobResult(
        model.FAILED, passed=1, failed=("test-a.t",), failures=jobs.cut_failures(
            [("test-a.t", "diff")]), duration=3.0, log_key="tries/x/log.txt"), NOW)
    doc = store.try_document(table, TRY)
    assert set(doc) == {"id", "node", "user", "branch", "description", "created", "state",
                        "url", "rerun_of", "jobs"}
    linux = doc["jobs"][0]
    assert set(linux) == {"name", "state", "attempt", "passed", "failed", "flaky",
                          "preexisting", "skipped", "duration", "log_url", "failures"}
    assert linux["log_url"] == f"/try/{TRY}/log/linux"
    assert doc["jobs"][1]["log_url"] is None
    assert doc["url"] == f"/try/{TRY}"
    assert store.try_document(table, "20261207T191300Z-00000000") is None


def test_outputs_are_cut():
    long = "x" * (jobs.OUTPUT_LIMIT + 10)
    cut = jobs.cut_output(long)
    assert cut.startswith("x" * jobs.OUTPUT_LIMIT) and "10 more bytes cut" in cut
    assert jobs.cut_output("short") == "short"
    # Multi-byte characters are never split.
    assert jobs.cut_output("é" * 10, limit=5).startswith("éé\n")
    many = jobs.cut_failures([(f"t{i}.t", long) for i in range(10)])
    total = sum(len(f["output"].encode()) for f in many)
    assert total <= jobs.OUTPUTS_BUDGET
    assert many[-1]["output"].startswith("[output not stored")


def test_record_keeps_flaky_and_preexisting_apart(table):
    jobs.claim(table, TRY, "linux", "agent-a", 300, NOW)
    result = jobs.JobResult(model.PASSED, passed=3, flaky=("test-f.t",),
                            preexisting=("test-p.t",))
    assert jobs.record(table, TRY, "linux", "agent-a", 1, result, NOW + 5)
    item = jobs.get_job(table, TRY, "linux")
    assert (item["state"], item["failed"], item["flaky"], item["preexisting"]) == \
        ("passed", [], ["test-f.t"], ["test-p.t"])


def test_history_newest_first(table):
    from hgautomation.server import store

    older, newer = "20261207T191300Z-00000001", "20261208T080000Z-00000002"
    assert jobs.record_history(table, older, "linux", {"test-a.t": "failed",
                                                       "test-b.t": "passed"},
                               int(NOW) + 86400, "2026-12-07T19:13:00Z") == 2
    # Names that are no test name, results that are none: left out.
    assert jobs.record_history(table, newer, "linux", {"test-a.t": "flaky",
                                                       "../x": "passed",
                                                       "test-c.t": "skipped"},
                               int(NOW) + 86400, "2026-12-08T08:00:00Z") == 1
    found = store.test_history(table, "test-a.t")
    assert [(r.try_id, r.result) for r in found] == [(newer, "flaky"), (older, "failed")]
    assert store.test_history(table, "test-a.t", limit=1)[0].try_id == newer
    assert store.test_history(table, "../x") == []
    doc = store.history_document("test-a.t", found)
    assert doc["url"] == "/test/test-a.t"
    assert doc["results"][0] == {"try": newer, "job": "linux", "result": "flaky",
                                 "created": "2026-12-08T08:00:00Z", "url": f"/try/{newer}"}
    assert model.test_path("test-x.t#case") == "/test/test-x.t%23case"
