"""``try-agent``: take the Try server's jobs from their SQS queues and run them as
``run-tests-linux`` runs a revision, until stopped (or, with ``--drain``, until none waits).

One job: receive its message (invisible to other agents for the lease) -> claim it in
the table (a conditional write: one agent per attempt) -> renew both every lease/3 ->
download the try's bundle -> apply it to a fresh clone of ``-R`` with no hgrc and no
hook -> run the tests on ``--host`` or temporary EC2 instances -> upload the log and the
JSON report -> record the result -> delete the message. Failed tests are run once more
(passing now: flaky), then on the try's base (failing there too: pre-existing); only the
others fail the job (hgautomation/triage.py). SIGINT/SIGTERM stop the run and
put the job back at once; an agent lost outright loses the job when its lease runs out.
A cancel (``try --cancel``), read at a renewal, stops the run the same way and ends the
job ``cancelled``.
A ``windows`` job runs as ``run-tests-windows`` does, on a temporary Windows instance.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import shlex
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hgautomation import console, errors, hgrepo, linux, options, platforms
from hgautomation.commands import aws_options, host_options, open_aws, static_hosts
from hgautomation.commands.run_tests_linux import (
    Machines,
    ShardResult,
    TestRun,
    check_machines,
    linux_machine_options,
    machines,
    merged_report,
    run_all,
)
from hgautomation.commands.try_ import table_name
from hgautomation.context import Context
from hgautomation.declare import Command, Option
from hgautomation.options import AWSOptions, StaticHosts
from hgautomation.server import jobs, model, notify
from hgautomation.triage import Triage, history, rerun_flags, triage

MAX_LEASE = 12 * 3600  # SQS's longest visibility timeout
LONG_POLL = 20  # SQS's longest receive wait
DRAIN_POLL = 2  # --drain: how long an empty queue is asked before the agent stops
# hg applying a bundle from a stranger: no configuration file at all (HGRCPATH empty: no
# system or user hgrc; HGRCSKIPREPO: not even the repository's), so no hook and no
# extension can run.
UNTRUSTED_HG_ENV = {"HGRCPATH": "", "HGRCSKIPREPO": "1"}  # HGPLAIN: LocalRepo.run


@dataclass(frozen=True)
class TryAgentOptions:
    job: tuple[str, ...]
    lease: int
    drain: bool
    table: str
    bucket: str | None
    distro: str
    filesystem: str
    instance_type: str
    python_version: str
    hosts: StaticHosts
    instances: int | None
    hg: str
    full_install: bool
    windows_python_version: str
    windows_arch: str
    windows_instance_type: str
    aws: AWSOptions
    test_flags: tuple[str, ...]

    @property
    def jobs(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.job or model.DEFAULT_JOBS))

    @property
    def windows_jobs(self) -> bool:
        return any(model.is_windows_job(job) for job in self.jobs)

    def windows_script(self, flags: Sequence[str] | None = None):
        """run-tests.py's script for a Windows job (a UsageError for flags Windows cannot
        take), asking for the JSON report the result is read from; ``flags``: instead of
        the agent's own."""
        from hgautomation.windows import recipes

        flags = shlex.join([*(self.test_flags if flags is None else flags), "--json"])
        return recipes.run_tests_script(self.windows_python_version, self.windows_arch, flags)

    @property
    def machines(self) -> Machines:
        return Machines(hosts=self.hosts, instances=self.instances, filesystem=self.filesystem,
                        distro=self.distro, instance_type=self.instance_type,
                        python_version=self.python_version, aws=self.aws,
                        instance_profile=False)  # tested code is untrusted


# -- pure parts --------------------------------------------------------------------

@dataclass(frozen=True)
class Message:
    """One received job message: which try and job, and SQS's handle on it."""

    try_id: str
    job: str
    receipt: str
    receives: int


def parse_message(raw: dict, job: str) -> Message | None:
    """The job message ``raw`` (as ReceiveMessage returns it) of ``job``'s queue, or None
    when it is not one (it is deleted: nothing can run it)."""
    try:
        body = json.loads(raw.get("Body", ""))
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("job") != job \
            or not isinstance(body.get("try"), str) or not model.TRY_ID_RE.match(body["try"]):
        return None
    try:
        receives = int(raw.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
    except ValueError:
        receives = 1
    return Message(body["try"], job, raw["ReceiptHandle"], receives)


def outcome(shards: Sequence[ShardResult], report: linux.Report | None) -> tuple[str, str]:
    """(state, error text) of a finished run, as run-tests-linux judges it: failed
    tests -> failed; a shard that ended without a report or with a bad status -> error."""
    if report is not None and report.failed:
        return model.FAILED, ""
    broken = [s for s in shards if s.status not in (0, None) or s.report is None]
    if broken or report is None:
        s = broken[0] if broken else shards[0]
        return model.ERROR, (f"run-tests.py on {s.label} exited {s.status} "
                             + ("without a report" if s.report is None
                                else "with no failing test reported"))
    return model.PASSED, ""


def failures(report: linux.Report, order: Sequence[str] = ()) -> tuple[dict, ...]:
    """The failed tests and their output (run-tests.py's ``diff``: the .err diff), those
    named in ``order`` first (the new failures: the table's budget goes to them first)."""
    names = [n for n in order if n in report.results]
    names += [n for n in report.failed if n not in names]
    return jobs.cut_failures([(name, str(report.results[name].get("diff") or ""))
                              for name in names])


def summary(result: jobs.JobResult) -> str:
    """``2 passed, 1 failed, 0 skipped, 1 flaky`` (the error text for an error)."""
    if result.state == model.ERROR:
        return result.error
    text = f"{result.passed} passed, {len(result.failed)} failed, {result.skipped} skipped"
    if result.flaky:
        text += f", {len(result.flaky)} flaky"
    if result.preexisting:
        text += f", {len(result.preexisting)} pre-existing"
    return text


def wait_seconds(queues: int, drain: bool) -> int:
    """How long one receive waits: a long poll shared by the queues, short with --drain."""
    return DRAIN_POLL if drain else max(1, LONG_POLL // max(queues, 1))


def agent_id() -> str:
    """This agent in the table's ``lease_owner``: host, process and a random part."""
    return f"{socket.gethostname()[:64]}-{os.getpid()}-{secrets.token_hex(3)}"


# -- the lease ---------------------------------------------------------------------

class JobCancelled(KeyboardInterrupt):
    """Raised in the main thread when the running job was cancelled (``try --cancel``):
    the run stops as on SIGTERM (the remote run stopped, instances terminated)."""


# A real signal carries a cancel from the lease thread to the main thread: it wakes a
# blocking wait (a lock, a child process) as SIGTERM does. None: no such signal here
# (Windows), the run goes on to its end and the job then ends cancelled.
CANCEL_SIGNAL = getattr(signal, "SIGUSR1", None)
CANCEL_RESEND = 1.0  # seconds between two signals while cleanup holds off interrupts


class Lease:
    """Renews the job's lease (the table and the message's visibility) every lease/3 in
    a thread while the block runs; ``lost`` when another agent has taken the job over;
    ``cancelled`` when the renewal read a cancel request, and then, when the block runs
    in the main thread, JobCancelled is raised there."""

    _armed: Lease | None = None  # the main thread's lease that a cancel may interrupt

    def __init__(self, renew: Callable[[], jobs.Renewal | None], interval: float):
        self._renew = renew
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="try-lease", daemon=True)
        self._main: int | None = None
        self._sigint: Any = None
        self._delivered = False  # JobCancelled was raised in the main thread
        self.lost = False
        self.cancelled = False

    def _run(self) -> None:
        due = time.monotonic() + self._interval
        while not self._stop.wait(CANCEL_RESEND if self._pending
                                  else max(due - time.monotonic(), 0)):
            if self._pending:
                self._interrupt()  # again: cleanup held it off (signals_deferred)
            if time.monotonic() < due:
                continue
            due += self._interval
            try:
                renewed = self._renew()
            except Exception as exc:  # noqa: BLE001 - a network hiccup: try again next time
                console.get().warn(f"renewing the job's lease failed: {exc}")
                continue
            if renewed is None:
                self.lost = True
                console.get().warn("the job's lease was taken over by another agent: "
                                   "its result will not be recorded")
                return
            if renewed.cancel_requested and not self.cancelled:
                self.cancelled = True
                console.get().info("the job was cancelled on the Try server: stopping it")
                self._interrupt()

    @property
    def _pending(self) -> bool:
        return self.cancelled and self._main is not None and not self._delivered

    def _interrupt(self) -> None:
        if self._main is not None:
            signal.pthread_kill(self._main, CANCEL_SIGNAL)

    @staticmethod
    def _on_signal(signum: int, frame: Any) -> None:
        lease = Lease._armed
        # While cleanup holds SIGINT/SIGTERM off (their handlers are replaced), so is
        # the cancel: the lease thread sends it again.
        if lease is not None and lease.cancelled \
                and signal.getsignal(signal.SIGINT) is lease._sigint:
            Lease._armed = None
            lease._delivered = True
            raise JobCancelled()

    def __enter__(self) -> Lease:
        if CANCEL_SIGNAL is not None and hasattr(signal, "pthread_kill") \
                and threading.current_thread() is threading.main_thread():
            # Installed once and kept: a late signal then finds no lease, never the
            # default action (which ends the process).
            if signal.getsignal(CANCEL_SIGNAL) is not Lease._on_signal:
                signal.signal(CANCEL_SIGNAL, Lease._on_signal)
            self._main = threading.get_ident()
            self._sigint = signal.getsignal(signal.SIGINT)
            Lease._armed = self
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if Lease._armed is self:
            Lease._armed = None
        self._stop.set()
        self._thread.join(timeout=5)


# -- applying a bundle ---------------------------------------------------------------

def apply_bundle(source: hgrepo.LocalRepo, bundle: Path, node: str,
                 into: Path) -> hgrepo.LocalRepo:
    """A clone of ``source`` (no working copy) with ``bundle`` applied, which must hold
    ``node``; hg reads no configuration file at all while doing it."""
    try:
        source.run("clone", "-U", "-q", str(source.root), str(into), env=UNTRUSTED_HG_ENV,
                   timeout=1800)
    except errors.LocalRepoError as exc:
        raise errors.LocalRepoError(f"cannot clone {source.root}: {exc.message}") from exc
    clone = hgrepo.LocalRepo(into, hg=source.hg)
    try:
        clone.run("unbundle", str(bundle), env=UNTRUSTED_HG_ENV, timeout=1800)
    except errors.LocalRepoError as exc:
        raise errors.TryServerError(
            f"the try's bundle cannot be applied: {exc.message}") from exc
    found = clone.run("log", "-r", node, "-T", "{node}", env=UNTRUSTED_HG_ENV, check=False)
    if found.returncode != 0 or found.stdout.decode().strip() != node:
        raise errors.TryServerError(
            f"the try's bundle does not contain its node {node[:12]}: refused")
    return clone


def base_of(source: hgrepo.LocalRepo, clone: hgrepo.LocalRepo, node: str) -> str | None:
    """The try's base: the newest ancestor of ``node`` that ``source`` had before the
    bundle came (a local clone keeps its revision numbers); None when there is none or
    the bundle brought nothing new."""
    tip = source.run("log", "-r", "tip", "-T", "{rev}", env=UNTRUSTED_HG_ENV).stdout
    tip = tip.decode().strip()
    if not tip.isdigit():
        return None
    found = clone.run("log", "-r", f"max(::{node} and 0:{tip})", "-T", "{node}",
                      env=UNTRUSTED_HG_ENV, check=False)
    base = found.stdout.decode().strip() if found.returncode == 0 else ""
    return base if model.NODE_RE.match(base) and base != node else None


# -- the agent -----------------------------------------------------------------------

@dataclass
class Queue:
    job: str
    url: str
    dlq_url: str | None


class Agent:
    """The loop: take a job, run it, record it; one job at a time."""

    def __init__(self, ctx: Context, opts: TryAgentOptions, session: Any, bucket: str,
                 queues: list[Queue]):
        self.ctx = ctx
        self.opts = opts
        self.session = session
        self.bucket = bucket
        self.queues = queues
        self.owner = agent_id()
        self.sqs = session.client("sqs")
        self.s3 = session.client("s3")
        self.sns = session.client("sns")
        self._topic: str | None = None  # the deployment's, on the first try that ends
        self.table = session.boto.resource("dynamodb", config=session.config).Table(opts.table)
        # The lease thread's own: boto3 resources are not thread-safe.
        self.lease_table = session.boto.resource("dynamodb",
                                                 config=session.config).Table(opts.table)
        self.source = hgrepo.LocalRepo(ctx.hg_repo, hg=opts.hg)
        self.ran = 0

    # -- receiving
    def receive(self) -> tuple[Queue, dict] | None:
        wait = wait_seconds(len(self.queues), self.opts.drain)
        for queue in self.queues:
            found = self.sqs.receive_message(
                QueueUrl=queue.url, MaxNumberOfMessages=1, WaitTimeSeconds=wait,
                VisibilityTimeout=self.opts.lease,
                AttributeNames=["ApproximateReceiveCount"]).get("Messages", [])
            if found:
                return queue, found[0]
        return None

    def dead_letters(self) -> None:
        """Jobs whose message went to the dead-letter queue end in ``error`` (unless an
        agent still holds a live lease on them)."""
        for queue in self.queues:
            if queue.dlq_url is None:
                continue
            found = self.sqs.receive_message(
                QueueUrl=queue.dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                VisibilityTimeout=min(self.opts.lease, MAX_LEASE)).get("Messages", [])
            for raw in found:
                message = parse_message(raw, queue.job)
                if message is not None:
                    item = jobs.get_job(self.table, message.try_id, queue.job)
                    if item is not None and item.get("state") == model.RUNNING \
                            and float(item.get("lease_until", 0)) >= time.time():
                        continue  # its agent is alive: look again when the message returns
                    if jobs.give_up(self.table, message.try_id, queue.job, time.time(),
                                    f"gave up: the job's message was received "
                                    f"{model.MAX_RECEIVES} times without a result"):
                        console.get().result(f"job {queue.job} of try {message.try_id}: "
                                             "error (dead letter)")
                        self.notify(message.try_id)
                self.sqs.delete_message(QueueUrl=queue.dlq_url,
                                        ReceiptHandle=raw["ReceiptHandle"])

    # -- one job
    def handle(self, queue: Queue, raw: dict) -> None:
        out = console.get()
        message = parse_message(raw, queue.job)
        if message is None:
            out.warn(f"deleted a message of queue {model.queue_name(queue.job)} that names "
                     f"no job: {raw.get('Body', '')[:200]!r}")
            self._delete(queue, raw["ReceiptHandle"])
            return
        what = f"job {message.job} of try {message.try_id}"
        if message.receives > model.MAX_RECEIVES:
            jobs.give_up(self.table, message.try_id, message.job, time.time(),
                         f"gave up: the job's message was received {message.receives} times")
            self._delete(queue, message.receipt)
            out.result(f"{what}: error (received {message.receives} times)")
            self.notify(message.try_id)
            return
        attempt = jobs.claim(self.table, message.try_id, message.job, self.owner,
                             self.opts.lease, time.time())
        if attempt is None:
            self._not_mine(queue, message, what)
            return
        out.info(f"==> {what}: attempt {attempt}")
        lease = Lease(lambda: self._renew(queue, message, attempt),
                      max(self.opts.lease / 3, 1))
        try:
            with lease:
                result, results = self.run(message, attempt)
        except JobCancelled:
            self._cancelled(queue, message, attempt, what)
            return
        except BaseException:
            # Ctrl-C, SIGTERM, a bug: the job goes back for another agent, at once.
            self._put_back(queue, message, attempt)
            raise
        if lease.cancelled and not lease.lost:
            # Seen as the run ended (or where no signal can stop it): not recorded.
            self._cancelled(queue, message, attempt, what)
            return
        if lease.lost or not jobs.record(self.table, message.try_id, message.job,
                                         self.owner, attempt, result, time.time()):
            out.warn(f"{what}: another agent took the job over; this result is dropped")
            return
        self._delete(queue, message.receipt)
        self.ran += 1
        out.result(f"{what}: {result.state} ({summary(result)}) in {result.duration:.1f}s")
        for label, names in (("failed", result.failed), ("flaky", result.flaky),
                             ("pre-existing", result.preexisting)):
            for name in names:
                out.result(f"{label}: {name}")
        self._history(message, results)
        self.notify(message.try_id)

    def notify(self, try_id: str) -> None:
        """Publish the try's message if it has just ended (server/notify.py); a failure
        is a warning: the job's result is recorded already."""
        try:
            if self._topic is None:
                arn = self.session.caller_identity()["Arn"]
                self._topic = model.topic_arn(arn.split(":")[4], self.session.region,
                                              arn.split(":")[1])
            if notify.try_ended(self.table, self.sns, self._topic, try_id):
                console.get().info(f"try {try_id} ended: message sent to {self._topic}")
        except Exception as exc:  # noqa: BLE001 - nothing of the job depends on it
            console.get().warn(f"try {try_id}: its end was not announced on the "
                               f"{model.TOPIC} topic: {exc}")

    def _history(self, message: Message, results: dict[str, str]) -> None:
        """Each test's result in its history (expiring with the try)."""
        if not results:
            return
        try:
            item = jobs.get_try(self.table, message.try_id) or {}
            expires = int(item.get("expires") or time.time() + 30 * 86400)
            jobs.record_history(self.table, message.try_id, message.job, results, expires,
                                jobs.iso(time.time()))
        except Exception as exc:  # noqa: BLE001 - the job's result is recorded already
            console.get().warn(f"could not record the tests' history: {exc}")

    def _cancelled(self, queue: Queue, message: Message, attempt: int, what: str) -> None:
        """The run was stopped for a cancel: the job ends ``cancelled``, never failed."""
        if not jobs.end_cancelled(self.table, message.try_id, message.job, self.owner,
                                  attempt, time.time()):
            console.get().warn(f"{what}: another agent took the job over; not cancelled "
                               "here")
            return
        self._delete(queue, message.receipt)
        console.get().result(f"{what}: cancelled")
        self.notify(message.try_id)

    def _not_mine(self, queue: Queue, message: Message, what: str) -> None:
        item = jobs.get_job(self.table, message.try_id, message.job)
        if item is None or item.get("state") in model.FINAL:
            # Ended (or expired, or gave up just now): the message has nothing left to do.
            self._delete(queue, message.receipt)
            console.get().info(f"{what}: {item.get('state') if item else 'unknown'}; "
                               "message deleted")
            if item is not None:  # a claim beyond MAX_ATTEMPTS may have just ended it
                self.notify(message.try_id)
            return
        # Another agent holds a live lease: look again when it should have ended.
        remaining = float(item.get("lease_until", 0)) - time.time()
        self.sqs.change_message_visibility(
            QueueUrl=queue.url, ReceiptHandle=message.receipt,
            VisibilityTimeout=int(min(max(remaining, 0) + 1, MAX_LEASE)))
        console.get().info(f"{what}: held by {item.get('lease_owner')}")

    def _renew(self, queue: Queue, message: Message, attempt: int) -> jobs.Renewal | None:
        self.sqs.change_message_visibility(QueueUrl=queue.url, ReceiptHandle=message.receipt,
                                           VisibilityTimeout=self.opts.lease)
        return jobs.renew(self.lease_table, message.try_id, message.job, self.owner, attempt,
                          self.opts.lease, time.time())

    def _put_back(self, queue: Queue, message: Message, attempt: int) -> None:
        out = console.get()
        try:
            requeued = jobs.requeue(self.table, message.try_id, message.job, self.owner,
                                    attempt)
            # Visible at once: another agent takes it (or, if it has ended meanwhile,
            # finds it ended and deletes the message).
            self.sqs.change_message_visibility(QueueUrl=queue.url,
                                               ReceiptHandle=message.receipt,
                                               VisibilityTimeout=0)
            out.info(f"job {message.job} of try {message.try_id}: "
                     + ("put back in the queue" if requeued else "no longer ours"))
        except Exception as exc:  # noqa: BLE001 - the lease runs out instead
            out.warn(f"could not put the job back ({exc}); another agent takes it when "
                     "the lease runs out")

    def _delete(self, queue: Queue, receipt: str) -> None:
        self.sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=receipt)

    # -- running it
    def run(self, message: Message, attempt: int) -> tuple[jobs.JobResult, dict[str, str]]:
        """Run one attempt; its log and report go to S3. A failure of the try's own
        (a bad bundle, a host that gives up) is an ``error`` result, not an exception.
        Also returns each test's result for the history (empty for an error)."""
        out = console.get()
        start = time.monotonic()
        log_key = model.log_key(message.try_id, message.job, attempt)
        report_key = model.report_key(message.try_id, message.job, attempt)
        with tempfile.TemporaryDirectory(prefix="hgautomation-try-job-") as tmp:
            work = Path(tmp)
            log = work / "log.txt"
            report, found = None, Triage()
            with out.copy_to(log):
                out.info(f"try {message.try_id}, job {message.job}, attempt {attempt}, "
                         f"agent {self.owner}")
                try:
                    shards, report, found = self._test(message, work)
                    state, error = outcome(shards, report)
                    if state == model.FAILED and not found.new:
                        state = model.PASSED  # every failure was flaky or pre-existing
                except errors.HgAutomationError as exc:
                    state, error = model.ERROR, exc.one_line()
                    out.info(error)
                out.info(f"result: {state}" + (f" ({error})" if error else ""))
            self.s3.upload_file(str(log), self.bucket, log_key,
                                ExtraArgs={"ContentType": "text/plain; charset=utf-8"})
            if report is not None:
                report.write(work / "report-merged.json")
                self.s3.upload_file(str(work / "report-merged.json"), self.bucket,
                                    report_key, ExtraArgs={"ContentType": "application/json"})
        result = jobs.JobResult(
            state=state, error=error, duration=time.monotonic() - start, log_key=log_key,
            report_key=report_key if report is not None else None,
            passed=len(report.passed) if report else 0,
            failed=found.new, flaky=found.flaky, preexisting=found.preexisting,
            skipped=len(report.skipped) if report else 0,
            failures=failures(report, found.new) if report else ())
        ended = report is not None and state in (model.PASSED, model.FAILED)
        return result, history(report.passed, found) if ended else {}

    def _test(self, message: Message, work: Path
              ) -> tuple[list[ShardResult], linux.Report | None, Triage]:
        out = console.get()
        item = jobs.get_try(self.table, message.try_id)
        if item is None:
            raise errors.TryServerError(f"try {message.try_id} is not in the table "
                                        "(expired or deleted)")
        node = str(item.get("node", ""))
        if not model.NODE_RE.match(node):
            raise errors.TryServerError(f"try {message.try_id} names no valid node")
        bundle = work / "bundle.hg"
        key = str(item.get("bundle_key") or model.bundle_key(message.try_id))
        with out.step(f"download the bundle ({key})"):
            from botocore.exceptions import ClientError

            try:
                self.s3.download_file(self.bucket, key, str(bundle))
            except ClientError as exc:
                raise errors.TryServerError(
                    f"cannot download the try's bundle s3://{self.bucket}/{key}: {exc}"
                ) from exc
        with out.step(f"apply it to a clean clone of {self.source.root}"):
            clone = apply_bundle(self.source, bundle, node, work / "repo")
        base = base_of(self.source, clone, node)
        out.info(f"node {node}, base {base or 'none'}, branch {item.get('branch', '')}, "
                 f"user {item.get('user', '')}")
        if model.is_windows_job(message.job):
            return self._test_windows(clone, node, base, work)
        results = work / "results"
        results.mkdir()
        plan = linux.build_plan(self.opts.test_flags, full_install=self.opts.full_install)
        run = TestRun(repo=clone, node=node, diff=None,
                      python=linux.python_path(self.opts.python_version),
                      test_flags=tuple(self.opts.test_flags), filesystem=self.opts.filesystem,
                      results_dir=results, plan=plan)
        with machines(self.ctx, self.opts.machines) as targets:
            shards = run_all(targets, run)
            report = merged_report(shards, results)

            def again(tests: Sequence[str], at: str) -> linux.Report | None:
                # On the first host (the only one, but with --instances).
                where = work / f"results-{at[:12]}-{len(list(work.glob('results-*')))}"
                where.mkdir()
                rerun = dataclasses.replace(
                    run, node=at, results_dir=where,
                    test_flags=tuple(rerun_flags(self.opts.test_flags, tests)))
                return merged_report(run_all(targets[:1], rerun), where)

            found = self._triage(shards, report, node, base, again)
        return shards, report, found

    def _triage(self, shards: list[ShardResult], report: linux.Report | None, node: str,
                base: str | None, again: Callable[[Sequence[str], str], linux.Report | None]
                ) -> Triage:
        """Tell the failures of a failed run apart (hgautomation/triage.py): run them
        again, then on ``base``. A run that breaks counts as giving no report."""
        out = console.get()
        if report is None or outcome(shards, report)[0] != model.FAILED:
            return Triage()

        def guarded(tests: Sequence[str], at: str, what: str) -> linux.Report | None:
            with out.step(f"{what}: {len(tests)} test{'s' if len(tests) != 1 else ''}"):
                try:
                    return again(tests, at)
                except errors.HgAutomationError as exc:
                    out.info(f"{what} gave no result: {exc.one_line()}")
                    return None

        found = triage(report.failed,
                       lambda tests: guarded(tests, node, "re-run the failed tests"),
                       (lambda tests: guarded(tests, base, f"run them on the base "
                                                           f"{base[:12]}"))
                       if base else None)
        if found.note:
            out.info(found.note)
        out.info(f"failures: {len(found.new)} new, {len(found.flaky)} flaky, "
                 f"{len(found.preexisting)} pre-existing")
        return found

    def _test_windows(self, clone: hgrepo.LocalRepo, node: str, base: str | None, work: Path
                      ) -> tuple[list[ShardResult], linux.Report | None, Triage]:
        """The job on a temporary Windows instance, as run-tests-windows runs a revision;
        run-tests.py's JSON report comes back over SFTP."""
        from hgautomation.windows import ec2 as windows
        from hgautomation.windows import recipes
        from hgautomation.windows.artifacts import sftp_path

        opts = self.opts
        shard = ShardResult(
            label=f"Windows Python {opts.windows_python_version} {opts.windows_arch}")
        deps = windows.read_deps_files(clone, node)
        machine = windows.MachineOptions(instance_type=opts.windows_instance_type)
        remote_report = sftp_path(recipes.SOURCE + "\\tests\\report.json")
        runs = iter(range(1, 100))

        def run_once(conn: Any, flags: Sequence[str]) -> tuple[int, Path | None]:
            with contextlib.suppress(OSError):
                conn.sftp.remove(remote_report)  # never read an earlier run's
            with console.get().step(f"run-tests.py with {shard.label}"):
                status = windows.run(conn, opts.windows_script(flags), check=False)
            local = work / f"report-{next(runs)}.json"
            try:
                conn.sftp.get(remote_report, str(local))
            except OSError as exc:
                console.get().info(f"no report.json from run-tests.py ({exc})")
                return status, None
            return status, local

        with open_aws(self.ctx, opts.aws, kinds=("windows",)) as aws, \
                windows.pushed_host(self.ctx, aws, machine, clone, deps, purpose="try-windows",
                                    instance_profile=False) as (_host, conn):
            windows.run(conn, recipes.update_source_script(node), prefix="  ")
            shard.status, shard.report = run_once(conn, opts.test_flags)
            report = linux.Report.load(shard.report) if shard.report else None

            def again(tests: Sequence[str], at: str) -> linux.Report | None:
                if at != node:  # the base: pushed with the node, its ancestor
                    windows.run(conn, recipes.update_source_script(at), prefix="  ")
                _status, path = run_once(conn, rerun_flags(opts.test_flags, tests))
                return linux.Report.load(path) if path else None

            found = self._triage([shard], report, node, base, again)
        return [shard], report, found


def _lookup_queues(sqs: Any, names: Sequence[str], region: str) -> list[Queue]:
    from botocore.exceptions import ClientError

    found = []
    for job in names:
        try:
            url = sqs.get_queue_url(QueueName=model.queue_name(job))["QueueUrl"]
        except ClientError as exc:
            if "NonExistentQueue" in str(exc.response.get("Error", {}).get("Code", "")):
                raise errors.TryServerError(
                    f"no queue {model.queue_name(job)} in region {region}: the Try server "
                    f"has no job {job!r} here",
                    hint="deploy-try-server --job NAME creates it; check --aws-region") from exc
            raise
        try:
            dlq = sqs.get_queue_url(QueueName=model.dlq_name(job))["QueueUrl"]
        except ClientError:
            dlq = None
        found.append(Queue(job, url, dlq))
    return found


def _check_table(table: Any, region: str) -> None:
    """DescribeTable: a missing table is one line now, not an error per job later."""
    from botocore.exceptions import ClientError

    try:
        table.load()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise errors.TryServerError(
                f"no table {table.name} in region {region}: is the Try server deployed "
                "here?", hint="deploy-try-server creates it; check --table and "
                              "--aws-region") from exc
        raise


def main(ctx: Context, opts: TryAgentOptions) -> int:
    out = console.get()
    # Everything local first: the repository, the hg to drive it, the hosts, the flags.
    source = hgrepo.LocalRepo(ctx.hg_repo, hg=opts.hg)
    source.run("root")
    check_machines(opts.machines)
    if opts.hosts.specs:
        static_hosts(ctx, opts.hosts)
    linux.build_plan(opts.test_flags, full_install=opts.full_install)
    if opts.windows_jobs:
        opts.windows_script()
    with open_aws(ctx, opts.aws, with_owner=False) as aws:
        from hgautomation.aws.session import translate_errors

        session = aws.session
        with translate_errors("try-agent"):
            queues = _lookup_queues(session.client("sqs"), opts.jobs, session.region)
            bucket = opts.bucket or model.bucket_name(
                session.caller_identity()["Account"], session.region)
            agent = Agent(ctx, opts, session, bucket, queues)
            _check_table(agent.table, session.region)
            out.info(f"agent {agent.owner}: jobs {', '.join(opts.jobs)}, lease "
                     f"{opts.lease}s, table {opts.table}, bucket {bucket}")
            while True:
                got = agent.receive()
                if got is None:
                    # Idle: end the jobs whose message went to the dead-letter queue
                    # (a receive may just have moved one there).
                    agent.dead_letters()
                    if opts.drain:
                        out.result(f"no job waiting: {agent.ran} job"
                                   f"{'' if agent.ran == 1 else 's'} run")
                        return 0
                    continue
                agent.handle(*got)


def _bucket_name(text: str) -> str:
    if not (3 <= len(text) <= 63) or not all(c.isascii() and (c.islower() or c.isdigit()
                                                              or c in ".-") for c in text):
        raise errors.UsageError(f"invalid S3 bucket name {text!r}")
    return text


def _job_name(text: str) -> str:
    if not model.JOB_NAME_RE.match(text):
        raise errors.UsageError(f"invalid job name {text!r} (lowercase letters, digits and "
                                "dashes, at most 32)")
    return text


COMMAND = Command(
    "try-agent",
    options=(
        Option("--job", kind="append", metavar="NAME", validator=_job_name,
               help="take jobs of this name (repeatable; default: "
                    f"{', '.join(model.DEFAULT_JOBS)})"),
        Option("--lease", validator=options.bounded_int(2, MAX_LEASE),
               default=model.DEFAULT_LEASE_SECONDS, metavar="SECONDS",
               help="how long a job stays ours without renewal; renewed every third of it "
                    "(default: %(default)s)"),
        Option("--drain", kind="flag", help="stop once no job is waiting"),
        Option("--table", default=model.TABLE, validator=table_name,
               help="the Try server's DynamoDB table (default: %(default)s)"),
        Option("--bucket", validator=_bucket_name,
               help="the Try server's S3 bucket (default: the deployment's, "
                    f"{model.PREFIX}-ACCOUNT-REGION)"),
        *linux_machine_options(),
        *host_options(),
        Option("--instances", validator=options.bounded_int(1, options.MAX_INSTANCES),
               metavar="N",
               help="shard each job's tests over N hosts in parallel (with --host: one "
                    f"--host per shard; at most {options.MAX_INSTANCES})"),
        Option("--hg", default="hg", metavar="PATH",
               help="local hg that applies the bundles and pushes them (default: "
                    "%(default)s)"),
        Option("--full-install", kind="flag",
               help="let run-tests.py pip-install the revision (see run-tests-linux)"),
        Option("--windows-python-version", choices=platforms.WINDOWS_PYTHONS,
               default=platforms.DEFAULT_WINDOWS_PYTHON,
               help="Python of a windows job (a job named windows or windows-*; default: "
                    "%(default)s)"),
        Option("--windows-arch", choices=platforms.WINDOWS_ARCHES, default="x64",
               help="architecture of a windows job's Python (default: %(default)s)"),
        Option("--windows-instance-type", default=platforms.WINDOWS_INSTANCE_TYPES["tests"],
               settings=("windows.tests-instance-type",),
               help="EC2 instance type of a windows job (default: %(default)s)"),
        *aws_options(),
        Option("test_flags", kind="passthrough", metavar="TEST_FLAGS",
               help="arguments for run-tests.py of every job (tests and flags; put flags "
                    "after --)"),
    ),
    record=TryAgentOptions,
    flow=main,
    examples=(
        "{prog} try-agent -R ~/hg --host hg@buildbox -- -j8",
        "{prog} try-agent -R ~/hg --job linux --drain",
        "{prog} try-agent -R ~/hg --job windows --windows-python-version 3.12 -- -j4",
    ),
)
