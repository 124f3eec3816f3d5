"""The pure parts of try-agent and of `try --wait`: messages, outcomes, the lease thread,
the reply lines, following a try and its exit code, a job's own log."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from hgautomation import console, errors, linux, tryserver
from hgautomation.commands import try_agent
from hgautomation.commands.run_tests_linux import ShardResult
from hgautomation.server import jobs, model

TRY = "20261207T191300Z-1a2b3c4d"


def raw(body, receives="1") -> dict:
    return {"Body": body if isinstance(body, str) else json.dumps(body),
            "ReceiptHandle": "rh", "Attributes": {"ApproximateReceiveCount": receives}}


def test_parse_message():
    message = try_agent.parse_message(raw({"try": TRY, "job": "linux"}, "2"), "linux")
    assert message == try_agent.Message(TRY, "linux", "rh", 2)
    assert try_agent.parse_message(raw(model.message(TRY, "linux")), "linux").try_id == TRY


@pytest.mark.parametrize("body", [
    "not json", "[]", {"try": TRY}, {"try": TRY, "job": "other"},
    {"try": "../../etc", "job": "linux"}, {"try": 3, "job": "linux"}, ""])
def test_parse_message_refuses_what_names_no_job(body):
    assert try_agent.parse_message(raw(body), "linux") is None


def report(**results) -> linux.Report:
    return linux.Report({name: ({"result": r} if isinstance(r, str) else r)
                         for name, r in results.items()})


def shard(status=0, report_path=Path("r.json"), label="devhost") -> ShardResult:
    return ShardResult(label=label, status=status, report=report_path)


def test_outcome_as_run_tests_linux_judges_it():
    passing = report(**{"test-a.t": "success", "test-b.t": "skip"})
    assert try_agent.outcome([shard()], passing) == (model.PASSED, "")
    failing = report(**{"test-a.t": "success", "test-b.t": "failure"})
    assert try_agent.outcome([shard(status=1)], failing) == (model.FAILED, "")
    state, error = try_agent.outcome([shard(status=2, report_path=None)], None)
    assert state == model.ERROR and "exited 2 without a report" in error
    state, error = try_agent.outcome([shard(status=1)], passing)
    assert state == model.ERROR and "no failing test reported" in error


def test_failures_carry_the_err_diff_cut():
    rep = report(**{"test-a.t": {"result": "failure", "diff": "-a\n+b\n"},
                    "test-b.t": {"result": "failure", "diff": "x" * 70000},
                    "test-c.t": "success"})
    found = try_agent.failures(rep)
    assert [f["name"] for f in found] == ["test-a.t", "test-b.t"]
    assert found[0]["output"] == "-a\n+b\n"
    assert "more bytes cut" in found[1]["output"]


def test_wait_seconds():
    assert try_agent.wait_seconds(1, False) == 20
    assert try_agent.wait_seconds(3, False) == 6
    assert try_agent.wait_seconds(50, False) == 1
    assert try_agent.wait_seconds(1, True) == try_agent.DRAIN_POLL


def test_agent_ids_differ():
    assert try_agent.agent_id() != try_agent.agent_id()


def test_lease_renews_until_the_block_ends():
    calls = []
    with try_agent.Lease(lambda: calls.append(time.monotonic()) or jobs.Renewal(),
                         0.05) as lease:
        time.sleep(0.3)
    count = len(calls)
    time.sleep(0.15)
    assert count >= 3 and len(calls) == count  # renewed while running, never after
    assert not lease.lost


def test_a_lost_lease_stops_renewing(captured):
    calls = []
    with try_agent.Lease(lambda: calls.append(1), 0.02) as lease:  # None: not ours
        time.sleep(0.2)
    assert lease.lost and len(calls) == 1
    assert "taken over by another agent" in captured.err_text


def test_a_failing_renewal_is_retried(captured):
    calls = []

    def renew():
        calls.append(1)
        if len(calls) == 1:
            raise OSError("network down")
        return jobs.Renewal()

    with try_agent.Lease(renew, 0.02) as lease:
        time.sleep(0.2)
    assert not lease.lost and len(calls) >= 2
    assert "renewing the job's lease failed: network down" in captured.err_text


def agent_options(**changes) -> try_agent.TryAgentOptions:
    """A try-agent record with its defaults (``changes`` replace some)."""
    values = dict(
        job=(), lease=300, drain=False, table=model.TABLE, bucket=None, distro="debian12",
        filesystem="default", instance_type="t3.micro", python_version="system3",
        hosts=try_agent.StaticHosts(specs=()), instances=None, hg="hg", full_install=False,
        windows_python_version="3.12", windows_arch="x64", windows_instance_type="m6i.large",
        aws=try_agent.AWSOptions(), test_flags=())
    return try_agent.TryAgentOptions(**{**values, **changes})


def test_options_default_to_the_linux_job():
    from hgautomation import catalog

    command = catalog.command("try-agent")
    assert command.option("lease").default == model.DEFAULT_LEASE_SECONDS
    record = agent_options()
    assert record.jobs == ("linux",)
    assert try_agent._job_name("linux-2") == "linux-2"
    for bad in ("Linux", "", "a" * 40, "-x", "a b"):
        with pytest.raises(errors.UsageError):
            try_agent._job_name(bad)


# -- console.copy_to: a job's own log -------------------------------------------------

def test_copy_to_gets_every_message_while_the_block_runs(tmp_path):
    out = console.Console(console.QUIET, err=_Sink(), out=_Sink())
    path = tmp_path / "job.log"
    out.info("before")
    with out.copy_to(path):
        out.info("shown only with -v or in logs")  # quiet: not shown, but copied
        out.remote_line("", "remote output")
        out.result("a result")
    out.info("after")
    text = path.read_text()
    assert "shown only with -v or in logs" in text and "remote output" in text
    assert "a result" in text
    assert "before" not in text and "after" not in text
    assert path.stat().st_mode & 0o777 == 0o600


class _Sink:
    def __init__(self):
        self.parts = []

    def write(self, text):
        self.parts.append(text)

    def flush(self):
        pass

    def isatty(self):
        return False


# -- the client: reply lines, following, the exit code -----------------------------------

def test_submitted_reads_the_try_id_and_page():
    sent = tryserver.submitted([f"try {TRY}: 1 job queued (linux)",
                                f"https://example.lambda-url.aws/try/{TRY}"])
    assert sent == tryserver.Submitted(TRY, f"https://example.lambda-url.aws/try/{TRY}")
    assert tryserver.submitted([f"try {TRY}: 1 job", f"/try/{TRY}"]).url == f"/try/{TRY}"
    # An old server's lines (or an echo) name no try.
    assert tryserver.submitted(["queued try job 17", "results: https://x/17"]) == \
        tryserver.Submitted(None, None)
    assert tryserver.submitted([]) == tryserver.Submitted(None, None)
    assert tryserver.submitted(["try ../x: queued", "https://x"]).try_id is None


def doc(*states, failed=()):
    return {"id": TRY, "jobs": [{"name": f"job{i}", "state": s, "attempt": 1,
                                 "failed": list(failed) if s == "failed" else [],
                                 "passed": 1, "skipped": 0} for i, s in enumerate(states)]}


def test_follow_reports_each_change_once_and_ends_when_all_ended(monkeypatch):
    docs = iter([doc("queued", "queued"), doc("running", "queued"), doc("running", "queued"),
                 doc("passed", "running"), doc("passed", "failed", failed=["test-x.t"])])
    monkeypatch.setattr(tryserver, "read_try", lambda table, try_id: next(docs))
    changes, sleeps = [], []
    final = tryserver.follow(None, TRY, lambda job: changes.append((job["name"], job["state"])),
                             sleep=sleeps.append, interval=0.5)
    assert final["jobs"][1]["state"] == "failed"
    assert changes == [("job0", "queued"), ("job1", "queued"), ("job0", "running"),
                       ("job0", "passed"), ("job1", "running"), ("job1", "failed")]
    assert sleeps == [0.5] * 4


def test_check_outcome_exit_codes():
    tryserver.check_outcome(doc("passed", "passed"))
    with pytest.raises(errors.TestsFailed, match=r"1 test failed: test-x\.t") as failed:
        tryserver.check_outcome(doc("passed", "failed", failed=["test-x.t"]))
    assert failed.value.exit_code == 1
    for state in ("error", "cancelled", "timed-out"):
        with pytest.raises(errors.TryJobError, match=f"job1 {state}") as broken:
            tryserver.check_outcome(doc("failed", state, failed=["t.t"]))
        assert broken.value.exit_code == 16


def test_threads_left_behind():
    # The lease threads above all ended (they are daemons, but must not pile up).
    assert not [t for t in threading.enumerate() if t.name == "try-lease"]


def test_ec2_instances_of_a_job_get_no_instance_profile(monkeypatch):
    """Tested code is untrusted: the agent's EC2 instances carry no AWS credentials,
    while run-tests-linux's keep the shared SSM profile.

    Breaking looks like: the launch spec names the instance profile for the agent too."""
    import contextlib

    from hgautomation.aws.account import AWS, AccountState
    from hgautomation.commands import run_tests_linux
    from hgautomation.linux import ec2

    account = AccountState(owner="o", key_name="k", key_path=Path("k"), public_key="p",
                           security_group_ids={"linux": "sg-1"},
                           instance_profile_arn="arn:aws:iam::1:instance-profile/p")
    specs = []

    @contextlib.contextmanager
    def fake_open_aws(ctx, options, **kwargs):
        yield AWS(session=None, owner="o", options=options, account=account)

    @contextlib.contextmanager
    def fake_temporary_hosts(ctx, aws, **kwargs):
        specs.append(aws.launch_spec("linux", image_id="ami-1", instance_type="t3.micro"))
        yield []

    monkeypatch.setattr(run_tests_linux, "open_aws", fake_open_aws)
    monkeypatch.setattr(ec2, "temporary_hosts", fake_temporary_hosts)
    wanted = run_tests_linux.Machines(
        hosts=try_agent.StaticHosts(specs=()), instances=None, filesystem="default",
        distro="debian12", instance_type="t3.micro", python_version="system3",
        aws=try_agent.AWSOptions())
    record = agent_options()
    for machines in (wanted, record.machines):
        with run_tests_linux.machines(None, machines):
            pass
    assert specs[0].instance_profile_arn == account.instance_profile_arn
    assert specs[1].instance_profile_arn is None


def test_windows_jobs_and_their_flags():
    assert [model.is_windows_job(j) for j in ("windows", "windows-x86", "linux", "win")] == \
        [True, True, False, False]
    assert not agent_options().windows_jobs
    record = agent_options(job=("linux", "windows"), test_flags=("-j4", "test-a b.t"))
    assert record.windows_jobs
    script = record.windows_script()
    # POSIX-quoted for sh -c, in a PowerShell literal (its quotes doubled).
    assert "$TestFlags = '-j4 ''test-a b.t'' --json'" in script.text
    assert "python312-x64" in script.text
    with pytest.raises(errors.UsageError, match="double quotes"):
        agent_options(job=("windows",), test_flags=('-k "x"',)).windows_script()


def test_a_windows_job_instance_gets_no_instance_profile(monkeypatch, tmp_path):
    """As on Linux: the Windows instance of a try job carries no AWS credentials.

    Breaking looks like: the spec of ``instance_profile=False`` still names the profile."""
    import contextlib
    from types import SimpleNamespace

    from hgautomation.aws import instances
    from hgautomation.aws.account import AWS, AccountState
    from hgautomation.windows import ec2 as windows

    account = AccountState(owner="o", key_name="k", key_path=Path("k"), public_key="p",
                           windows_key_name="kw", security_group_ids={"windows": "sg-1"},
                           instance_profile_arn="arn:aws:iam::1:instance-profile/p")
    aws = AWS(session=None, owner="o", options=try_agent.AWSOptions(), account=account)
    specs = []

    @contextlib.contextmanager
    def fake_temporary_instances(session, spec):
        specs.append(spec)
        yield [None]

    @contextlib.contextmanager
    def run_dir(prefix):
        yield tmp_path

    monkeypatch.setattr(instances, "temporary_instances", fake_temporary_instances)
    monkeypatch.setattr(windows, "first_boot_user_data", lambda aws, key: "")
    monkeypatch.setattr(windows, "host_for", lambda *args: None)
    ctx = SimpleNamespace(state=SimpleNamespace(run_dir=run_dir), ssh_config=None)
    for profile in (True, False):
        with windows.windows_host(ctx, aws, image_id="ami-1", instance_type="m6i.large",
                                  purpose="t", instance_profile=profile):
            pass
    assert specs[0].instance_profile_arn == account.instance_profile_arn
    assert specs[1].instance_profile_arn is None


def test_failures_put_the_new_ones_first():
    rep = linux.Report({"test-a.t": {"result": "failure", "diff": "a"},
                        "test-b.t": {"result": "failure", "diff": "b"},
                        "test-c.t": {"result": "success"}})
    assert [f["name"] for f in try_agent.failures(rep, ("test-b.t",))] == \
        ["test-b.t", "test-a.t"]


# -- a cancelled job: the lease stops the run, the job ends cancelled ------------------------

def _cancelling(after: int = 1):
    """A renewal that reads a cancel from its ``after``-th call on."""
    calls = []

    def renew():
        calls.append(time.monotonic())
        return jobs.Renewal(cancel_requested=len(calls) >= after)

    return renew, calls


def test_a_cancel_interrupts_the_main_thread_at_the_renewal(captured):
    """The blocked main thread (a sleep, as a wait on the remote run is) gets JobCancelled
    within one renewal; a KeyboardInterrupt, so every cleanup of SIGTERM's path runs.

    Breaking looks like: the block sleeps its 10 s through and the lease only notes it."""
    renew, calls = _cancelling(after=2)
    start = time.monotonic()
    with pytest.raises(try_agent.JobCancelled), try_agent.Lease(renew, 0.1) as lease:
        time.sleep(10)
    assert time.monotonic() - start < 2
    assert lease.cancelled and not lease.lost and len(calls) == 2
    assert issubclass(try_agent.JobCancelled, KeyboardInterrupt)
    assert "cancelled on the Try server" in captured.err_text


def test_a_cancel_waits_for_cleanup_that_holds_signals_off(captured):
    """Instances being terminated (signals_deferred) are not left half done: the cancel
    comes once that cleanup is over, as a held SIGTERM would."""
    from hgautomation.aws import instances

    renew, _ = _cancelling()
    steps = []
    with pytest.raises(try_agent.JobCancelled), try_agent.Lease(renew, 0.05):
        with instances.signals_deferred():
            time.sleep(0.5)  # the cancel arrives meanwhile
            steps.append("cleanup done")
        steps.append("after cleanup")
        time.sleep(10)
    assert steps == ["cleanup done", "after cleanup"]


def test_no_cancel_reaches_past_the_block():
    """Once the block has ended, a late signal is ignored (never the default action of
    SIGUSR1, which would end the agent)."""
    import os
    import signal

    renew, _ = _cancelling()
    with pytest.raises(try_agent.JobCancelled), try_agent.Lease(renew, 0.05):
        time.sleep(10)
    os.kill(os.getpid(), signal.SIGUSR1)
    time.sleep(0.1)  # the handler ran: nothing raised, the process lives
    with try_agent.Lease(lambda: jobs.Renewal(), 0.05):
        os.kill(os.getpid(), signal.SIGUSR1)  # not cancelled: ignored too
        time.sleep(0.2)


@pytest.fixture
def job_table(monkeypatch):
    """A try with one queued job ``linux`` in moto's DynamoDB."""
    from .helpers import try_table

    with try_table(monkeypatch, TRY, ("linux",), "us-east-1") as table:
        yield table


class _FakeSQS:
    def __init__(self):
        self.calls = []

    def change_message_visibility(self, **kwargs):
        self.calls.append(("visibility", kwargs["VisibilityTimeout"]))

    def delete_message(self, **kwargs):
        self.calls.append(("delete", kwargs["ReceiptHandle"]))


def _agent(table, lease: int = 3) -> try_agent.Agent:
    """An agent on ``table`` and a fake SQS, without AWS session or repository."""
    agent = try_agent.Agent.__new__(try_agent.Agent)
    agent.opts = agent_options(lease=lease)
    agent.table = agent.lease_table = table
    agent.sqs = _FakeSQS()
    agent.owner = "agent-a"
    agent.ran = 0
    return agent


def _cancel_then(seconds: float, table, result=None):
    """An Agent.run that has the job cancelled (as ``try --cancel`` does), then runs for
    ``seconds`` and returns ``result`` (a failed run by default) and no history."""
    from hgautomation.server import control

    def run(self, message, attempt):
        control.cancel(table, message.try_id)
        time.sleep(seconds)
        return (result or try_agent.jobs.JobResult(model.FAILED, passed=1,
                                                   failed=("test-x.t",), duration=seconds),
                {})
    return run


def test_a_cancelled_job_is_stopped_and_ends_cancelled(job_table, monkeypatch, captured):
    """The running attempt stops within one renewal (lease/3 = 1 s here), the job ends
    cancelled (never failed), its message is deleted, it is not put back.

    Breaking looks like: the run goes on for its 30 s; or the job is recorded failed, or
    put back in the queue for another agent."""
    monkeypatch.setattr(try_agent.Agent, "run", _cancel_then(30, job_table))
    agent = _agent(job_table)
    queue = try_agent.Queue("linux", "url", None)
    start = time.monotonic()
    agent.handle(queue, raw(model.message(TRY, "linux")))
    assert time.monotonic() - start < 5
    item = jobs.get_job(job_table, TRY, "linux")
    assert (item["state"], item["attempt"]) == ("cancelled", 1)
    assert "passed" not in item and "failed" not in item  # no result recorded
    assert ("delete", "rh") in agent.sqs.calls
    assert ("visibility", 0) not in agent.sqs.calls  # not put back
    assert f"job linux of try {TRY}: cancelled" in captured.out_text
    assert jobs.get_try(job_table, TRY)["state"] == "cancelled"


def test_a_run_that_ends_after_the_cancel_is_not_recorded(job_table, monkeypatch, captured):
    """Where no signal can reach the run (not the main thread), it ends on its own; the
    cancel read meanwhile still wins: the job ends cancelled, not failed."""
    monkeypatch.setattr(try_agent.Agent, "run", _cancel_then(1.5, job_table))
    agent = _agent(job_table)
    worker = threading.Thread(target=agent.handle,
                              args=(try_agent.Queue("linux", "url", None),
                                    raw(model.message(TRY, "linux"))))
    worker.start()
    worker.join(10)
    item = jobs.get_job(job_table, TRY, "linux")
    assert item["state"] == "cancelled" and "passed" not in item and "failed" not in item
    assert ("delete", "rh") in agent.sqs.calls
    assert f"job linux of try {TRY}: cancelled" in captured.out_text
