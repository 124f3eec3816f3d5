"""try-agent end to end: jobs from moto's SQS and DynamoDB, bundles from its S3, real
`.t` tests of Mercurial's sdist run on the loopback dev host through run-tests-linux's
code; an agent killed outright, and one stopped with SIGTERM; and the whole chain:
deploy-try-server, `try -r`, the agent, the results page in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from harness import browser, hgsource, jsondoc, tryjobs
from harness.process import kill_group

from hgautomation.server import jobs, model

pytestmark = pytest.mark.slow

QUICK_TESTS = ["test-empty-dir.t", "test-revert-flags.t", "test-issue1089.t"]
WITH_HG = "--with-hg=/hgdev/venv-bootstrap/bin/hg"


@pytest.fixture
def repo(hg_source: Path, tmp_path: Path) -> Path:
    """The submitter's clone of Mercurial's source."""
    return hgsource.clone(hg_source, tmp_path / "repo")


@pytest.fixture
def state(tmp_path: Path, linux_dev_host) -> Path:
    path = tmp_path / "state"
    path.mkdir(mode=0o700)
    shutil.copy(linux_dev_host.ssh.known_hosts_path, path / "known_hosts")
    return path


@pytest.fixture
def store(aws_fresh) -> tryjobs.TryStore:
    return tryjobs.create_store(aws_fresh)


def commit(repo: Path, message: str) -> str:
    hgsource.hg("commit", "-q", "-u", hgsource.COMMIT_USER, "-d", "1 0", "-m", message,
                cwd=repo)
    return hgsource.hg("log", "-r", ".", "-T", "{node}", cwd=repo)


def break_test(repo: Path, name: str) -> None:
    with open(repo / "tests" / name, "a") as fh:
        fh.write("\n  $ echo expected\n  something else\n")


def agent_args(linux_dev_host, state: Path, hg_source: Path, *extra: str,
               tests=QUICK_TESTS) -> list[str]:
    return [*linux_dev_host.cli_args(state), "-R", str(hg_source), "try-agent",
            "--host", linux_dev_host.alias, "--hg", hgsource.hg_executable(), *extra,
            WITH_HG, *tests]


class Lines:
    """The agent's stderr, read line by line in a thread; ``wait_for(text)``."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = 60) -> None:
        """Until a line holds ``text``; AssertionError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while text not in self.text:
                left = deadline - time.monotonic()
                assert left > 0, f"{text!r} not printed within {timeout}s:\n{self.text}"
                self._cond.wait(left)

    def join(self) -> str:
        self._thread.join(timeout=30)
        return self.text


def test_failing_and_passing_tries(cli, linux_dev_host, state, hg_source, repo, store):
    break_test(repo, "test-revert-flags.t")
    commit(repo, "break test-revert-flags.t")
    broken, broken_node = store.submit(repo)
    hgsource.hg("update", "-q", "-r", "0", cwd=repo)
    (repo / "harmless.txt").write_text("fine\n")
    hgsource.hg("add", "harmless.txt", cwd=repo)
    commit(repo, "a harmless change")
    good, good_node = store.submit(repo)

    start = time.monotonic()
    proc = cli.run(*agent_args(linux_dev_host, state, hg_source, "--drain"), cwd=repo,
                   aws=store.aws, timeout=500)
    seconds = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    assert "no job waiting: 2 jobs run" in proc.stdout
    assert f"job linux of try {broken}: failed (2 passed, 1 failed, 0 skipped)" in proc.stdout
    assert f"job linux of try {good}: passed (3 passed, 0 failed, 0 skipped)" in proc.stdout

    job = store.job(broken)
    assert (job["state"], job["attempt"], job["passed"], job["failed"], job["skipped"]) == \
        ("failed", 1, 2, ["test-revert-flags.t"], 0)
    (failure,) = job["failures"]
    assert failure["name"] == "test-revert-flags.t"
    assert "+  expected" in failure["output"] and "-  something else" in failure["output"]
    assert job["duration"] > 0 and job["ended"] >= job["started"]
    log = store.object(job["log_key"]).decode()
    assert "/hgwork/src" in log and "# Ran 3 tests, 0 skipped, 1 failed." in log
    assert broken_node[:12] in log
    report = json.loads(store.object(job["report_key"]))
    assert sorted(report) == sorted(QUICK_TESTS)
    assert report["test-revert-flags.t"]["result"] == "failure"
    assert store.table.get_item(Key={"pk": f"TRY#{broken}", "sk": "META"})["Item"][
        "state"] == "failed"

    job = store.job(good)
    assert (job["state"], job["passed"], job["failed"], job["failures"]) == \
        ("passed", 3, [], [])
    assert good_node[:12] in store.object(job["log_key"]).decode()
    assert store.visible_messages() == []  # both messages deleted once recorded
    print(f"two jobs in {seconds:.1f}s")


def remote_test_processes(user: str) -> list[str]:
    found = subprocess.run(["pgrep", "-u", user, "-f", "run-tests.py"], capture_output=True,
                           text=True, check=False)  # exit 1: none found
    return found.stdout.split()


def slow_try(repo: Path, store) -> str:
    """A try whose revision adds a test that sleeps for two minutes."""
    (repo / "tests" / "test-hgauto-sleep.t").write_text("  $ sleep 120\n")
    hgsource.hg("add", "tests/test-hgauto-sleep.t", cwd=repo)
    commit(repo, "a slow test")
    return store.submit(repo)[0]


def wait_remote_tests(proc, user: str) -> None:
    deadline = time.monotonic() + 180
    while not remote_test_processes(user):
        assert proc.poll() is None, "the agent exited before the tests started"
        assert time.monotonic() < deadline, "the remote tests never started"
        time.sleep(0.2)


def test_a_killed_agent_loses_its_job_to_another(cli, linux_dev_host, state, hg_source,
                                                  repo, store):
    try_id = slow_try(repo, store)
    lease = 6
    with cli.popen(*agent_args(linux_dev_host, state, hg_source, "--drain", "--lease",
                               str(lease), tests=["test-hgauto-sleep.t"]),
                   cwd=repo, aws=store.aws) as first:
        wait_remote_tests(first, linux_dev_host.user)
        running = store.job(try_id)
        assert (running["state"], running["attempt"]) == ("running", 1)
        kill_group(first)  # SIGKILL: no cleanup at all
    # The host stops the tests of a connection that is gone (the communicator's watcher).
    deadline = time.monotonic() + 30
    while remote_test_processes(linux_dev_host.user):
        assert time.monotonic() < deadline, "the killed agent's tests still run on the host"
        time.sleep(0.2)
    # The lease is not renewed any more: it runs out (and the message becomes visible).
    store.wait_job(try_id, lambda j: j["lease_until"] < time.time() - 1, lease + 10,
                   "the killed agent's lease to run out")
    # The second agent runs other tests of the same revision (quick ones).
    proc = cli.run(*agent_args(linux_dev_host, state, hg_source, "--drain", "--lease",
                               str(lease)), cwd=repo, aws=store.aws, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"==> job linux of try {try_id}: attempt 2" in proc.stderr
    job = store.job(try_id)
    assert (job["state"], job["attempt"], job["passed"]) == ("passed", 2, 3)
    assert job["log_key"].endswith("/linux/2/log.txt")


def test_sigterm_puts_the_job_back_within_10s(cli, linux_dev_host, state, hg_source, repo,
                                             store):
    try_id = slow_try(repo, store)
    with cli.popen(*agent_args(linux_dev_host, state, hg_source,
                               tests=["test-hgauto-sleep.t"]), cwd=repo,
                   aws=store.aws) as proc:
        lines = Lines(proc.stderr)
        wait_remote_tests(proc, linux_dev_host.user)
        assert store.job(try_id)["state"] == "running"
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        seconds = time.monotonic() - start
        stderr = lines.join()
    assert proc.returncode == 143, stderr
    assert seconds < 10, (seconds, stderr)
    assert f"job linux of try {try_id}: put back in the queue" in stderr
    job = store.job(try_id)
    # The stopped attempt is taken back: it does not count towards the 3 lost ones.
    assert job["state"] == "queued" and "lease_owner" not in job and job["attempt"] == 0
    # Visible to other agents at once (not after the 300 s lease).
    found = store.visible_messages()
    assert [json.loads(m["Body"])["try"] for m in found] == [try_id]
    # Nothing of the stopped run is left on the host.
    assert remote_test_processes(linux_dev_host.user) == []
    print(f"stopped and put back in {seconds:.1f}s")


def test_cancelling_a_running_job_stops_it_and_the_agent_goes_on(cli, linux_dev_host, state,
                                                                 hg_source, repo, store):
    """A cancel of the job the agent runs: the agent stops the remote tests within one
    renewal (lease/3) and a few seconds, the job ends cancelled (not failed, not put
    back), nothing is left running on the host, and the agent takes the next job."""
    from hgautomation.server import control

    lease = 9  # renewed every 3 s
    slow = slow_try(repo, store)
    # The next try: the same test, made quick.
    (repo / "tests" / "test-hgauto-sleep.t").write_text("  $ sleep 1\n")
    commit(repo, "the slow test made quick")
    quick = store.submit(repo)[0]
    with cli.popen(*agent_args(linux_dev_host, state, hg_source, "--lease", str(lease),
                               tests=["test-hgauto-sleep.t"]), cwd=repo,
                   aws=store.aws) as proc:
        out, err = Lines(proc.stdout), Lines(proc.stderr)
        wait_remote_tests(proc, linux_dev_host.user)
        assert store.job(slow)["state"] == "running", err.text
        start = time.monotonic()
        lines = control.cancel(store.table, slow)
        assert lines[0] == f"try {slow}: 1 job stopping (linux)"
        job = store.wait_job(slow, lambda j: j.get("state") == "cancelled",
                             lease / 3 + 15, "the cancelled job to end")
        stopped = time.monotonic() - start
        assert remote_test_processes(linux_dev_host.user) == [], err.text
        assert stopped < lease / 3 + 8, (stopped, err.text)
        assert (job["attempt"], "passed" in job, "failed" in job) == (1, False, False)
        # The agent goes on with the next job, without --drain.
        done = store.wait_job(quick, lambda j: j.get("state") in model.FINAL, 300,
                              "the next job to end")
        assert done["state"] == "passed", (done, err.text)
        out.wait_for(f"job linux of try {quick}: passed")  # printed once recorded
        assert proc.poll() is None  # still serving
        proc.send_signal(signal.SIGTERM)  # idle: it just stops
        proc.wait(timeout=30)
        stdout, stderr = out.join(), err.join()
    assert f"job linux of try {slow}: cancelled" in stdout, stderr
    assert f"job linux of try {slow}: failed" not in stdout
    assert f"job linux of try {quick}: passed (1 passed" in stdout
    assert f"job linux of try {slow}: put back" not in stderr
    assert store.visible_messages() == []  # the cancelled job's message was deleted
    tries = {t: jobs.get_try(store.table, t)["state"] for t in (slow, quick)}
    assert tries == {slow: "cancelled", quick: "passed"}
    print(f"cancel -> job cancelled, remote tests stopped: {stopped:.1f}s (lease {lease}s)")


# -- the whole chain: deploy, try, agent, page ------------------------------------------------

def _api(site: str, try_id: str) -> dict:
    with urllib.request.urlopen(f"{site}/api/try/{try_id}", timeout=60) as answer:
        return json.loads(answer.read())


def _submitted_id(stderr: str) -> str:
    """The try id from the server's first ``remote:`` line."""
    for line in stderr.splitlines():
        if line.startswith("remote: try "):
            return line.split()[2].rstrip(":")
    raise AssertionError(f"no try id in:\n{stderr}")


@pytest.mark.skipif(browser.chromium() is None,
                    reason="chromium is not installed (.ci/run installs it)")
def test_try_to_page_through_the_deployed_server(cli, aws_fresh, lambda_runtime,
                                                 linux_dev_host, state, hg_source, repo,
                                                 tmp_path):
    """deploy-try-server; an agent waiting on its queue; ``try -r`` of a revision that
    breaks a test shows, on the page in Chromium, the failed test and its diff; ``try
    --wait`` of a passing one exits 0 with the final document."""
    deployed = cli.run("deploy-try-server", "-T", "json", aws=aws_fresh,
                       env=lambda_runtime.env, state=state, cwd=tmp_path, timeout=240)
    assert deployed.returncode == 0, deployed.stderr
    doc = jsondoc.check("deploy-try-server", deployed.stdout)
    site = lambda_runtime.local_url(doc["web_url"])

    def try_(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return cli.run("--hg-repo", str(repo), "try", "-r", ".", *args, aws=aws_fresh,
                       env=lambda_runtime.env, state=state, cwd=repo, timeout=timeout)

    with cli.popen(*agent_args(linux_dev_host, state, hg_source), cwd=repo,
                   aws=aws_fresh) as agent:
        out, err = Lines(agent.stdout), Lines(agent.stderr)
        # A revision that breaks a test; the page is watched as a user would.
        break_test(repo, "test-revert-flags.t")
        commit(repo, "revert: <b>break</b> test-revert-flags.t on purpose")
        start = time.monotonic()
        sent = try_()
        assert sent.returncode == 0, sent.stderr
        broken = _submitted_id(sent.stderr)
        deadline = start + 400
        while (document := _api(site, broken))["state"] not in model.FINAL:
            assert agent.poll() is None, err.text
            assert time.monotonic() < deadline, (document, err.text)
            time.sleep(0.5)
        to_page = time.monotonic() - start
        assert document["state"] == "failed", document
        (job,) = document["jobs"]
        assert (job["state"], job["attempt"], job["failed"], job["passed"]) == \
            ("failed", 1, ["test-revert-flags.t"], 2)

        png = browser.screenshot(f"{site}/try/{broken}", tmp_path / "try-e2e-failed.png")
        assert png.stat().st_size > 10_000
        shots = os.environ.get("TRY_PAGES_SCREENSHOTS")
        if shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            shutil.copy(png, Path(shots) / png.name)
        page = browser.dump_dom(f"{site}/try/{broken}")
        assert "test-revert-flags.t" in page
        assert "+  expected" in page and "-  something else" in page  # the .err diff
        assert "&lt;b&gt;break&lt;/b&gt;" in page and "<b>break" not in page
        assert f'href="/try/{broken}/log/linux"' in page

        # A passing revision, followed to the end by the client.
        hgsource.hg("update", "-q", "-r", "0", cwd=repo)
        (repo / "harmless.txt").write_text("fine\n")
        hgsource.hg("add", "harmless.txt", cwd=repo)
        commit(repo, "a harmless change")
        start = time.monotonic()
        followed = try_("--wait", "-T", "json", timeout=500)
        waited = time.monotonic() - start
        assert followed.returncode == 0, followed.stderr
        final = jsondoc.check("try", followed.stdout)
        assert final["state"] == "passed" and final["jobs"][0]["passed"] == 3, final
        assert "linux: running" in followed.stderr and "linux: passed" in followed.stderr
        assert _api(site, final["id"])["state"] == "passed"

        agent.send_signal(signal.SIGTERM)  # idle: it just stops
        agent.wait(timeout=30)
        stdout = out.join()
    assert f"job linux of try {broken}: failed (2 passed, 1 failed, 0 skipped)" in stdout
    assert f"job linux of try {final['id']}: passed (3 passed" in stdout
    print(f"try -> finished page: {to_page:.1f}s (failing try); try --wait of a passing "
          f"one: {waited:.1f}s")


# -- flaky, pre-existing and new failures; a test's history -----------------------------------

FLAKY = "test-hgauto-flaky.t"


def flaky_test(repo: Path, token: str) -> None:
    """A test that fails its first run and passes the next (a marker outside the run)."""
    marker = f"/tmp/hgauto-flaky-{token}"
    (repo / "tests" / FLAKY).write_text(
        f"  $ if [ -e {marker} ]; then echo again; else touch {marker}; echo first; fi\n"
        "  again\n")


@pytest.fixture
def flaky_markers():
    yield
    for marker in Path("/tmp").glob("hgauto-flaky-*"):
        marker.unlink()


@pytest.mark.skipif(browser.chromium() is None,
                    reason="chromium is not installed (.ci/run installs it)")
def test_flaky_and_preexisting_failures_told_apart(cli, linux_dev_host, state, hg_source,
                                                   aws_fresh, tmp_path, flaky_markers,
                                                   monkeypatch):
    """The agent's -R has a public base where test-issue1089.t is broken already; three
    tries on top: (A) a flaky test only: the job passes; (B) also a new break: the job
    fails on it alone, the page shows the three groups apart; (C) the break undone. Then
    the tests' histories."""
    upstream = hgsource.clone(hg_source, tmp_path / "upstream")
    break_test(upstream, "test-issue1089.t")
    commit(upstream, "upstream: test-issue1089.t broken already")
    hgsource.hg("phase", "--public", "-r", ".", cwd=upstream)
    repo = hgsource.clone(upstream, tmp_path / "repo")
    store = tryjobs.create_store(aws_fresh)
    tokens = iter(secrets.token_hex(4) for _ in range(3))

    flaky_test(repo, next(tokens))
    hgsource.hg("add", f"tests/{FLAKY}", cwd=repo)
    commit(repo, "a flaky test")
    only_flaky, _ = store.submit(repo)
    flaky_test(repo, next(tokens))
    break_test(repo, "test-revert-flags.t")
    commit(repo, "break test-revert-flags.t")
    broken, _ = store.submit(repo)
    flaky_test(repo, next(tokens))
    hgsource.hg("revert", "-r", ".^", "tests/test-revert-flags.t", cwd=repo)
    commit(repo, "unbreak test-revert-flags.t")
    fixed, _ = store.submit(repo)

    tests = [*QUICK_TESTS, FLAKY]
    start = time.monotonic()
    proc = cli.run(*agent_args(linux_dev_host, state, upstream, "--drain", tests=tests),
                   cwd=repo, aws=store.aws, timeout=900)
    seconds = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    for try_id, state_, summary in (
            (only_flaky, "passed", "2 passed, 0 failed, 0 skipped, 1 flaky, 1 pre-existing"),
            (broken, "failed", "1 passed, 1 failed, 0 skipped, 1 flaky, 1 pre-existing"),
            (fixed, "passed", "2 passed, 0 failed, 0 skipped, 1 flaky, 1 pre-existing")):
        assert f"job linux of try {try_id}: {state_} ({summary})" in proc.stdout, proc.stdout
    job = store.job(broken)
    assert (job["state"], job["failed"], job["flaky"], job["preexisting"]) == \
        ("failed", ["test-revert-flags.t"], [FLAKY], ["test-issue1089.t"])
    # The new failure's output first: the item's budget goes to it.
    assert [f["name"] for f in job["failures"]] == ["test-revert-flags.t", FLAKY,
                                                     "test-issue1089.t"]
    log = store.object(job["log_key"]).decode()
    assert "re-run the failed tests: 3 tests" in log
    assert "run them on the base" in log and "1 new, 1 flaky, 1 pre-existing" in log
    assert store.job(only_flaky)["failed"] == [] and store.job(fixed)["state"] == "passed"

    # The page (the web function as deployed code, behind a local Function URL).
    for name, value in {**aws_fresh.env, **store.environment()}.items():
        monkeypatch.setenv(name, value)
    from hgautomation.server import web

    with browser.function_url(web.handler) as site:
        png = browser.screenshot(f"{site}/try/{broken}", tmp_path / "try-three-groups.png",
                                 size=(1280, 1400))
        history_png = browser.screenshot(f"{site}/test/{FLAKY}",
                                         tmp_path / "test-history.png")
        shots = os.environ.get("TRY_PAGES_SCREENSHOTS")
        if shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            for image in (png, history_png):
                shutil.copy(image, Path(shots) / image.name)
        page = browser.dump_dom(f"{site}/try/{broken}")
        order = [page.index(h) for h in ("New failures (1)", "Pre-existing failures (1)",
                                         "Flaky (1)")]
        assert order == sorted(order)
        assert 'href="/test/test-issue1089.t"' in page and "+  expected" in page
        history = json.loads(urllib.request.urlopen(
            f"{site}/api/test/test-revert-flags.t", timeout=60).read())
        assert [(r["try"], r["result"]) for r in history["results"]] == \
            [(fixed, "passed"), (broken, "failed"), (only_flaky, "passed")]
        flaky_page = browser.dump_dom(f"{site}/test/{FLAKY}")
        assert "0 passed, 0 failed, 3 flaky, 0 pre-existing" in flaky_page
        assert all(f'href="/try/{t}"' in flaky_page for t in (only_flaky, broken, fixed))
    again = re.search(r"re-run the failed tests: 3 tests: done in ([0-9.]+)s", log)
    on_base = re.search(r"run them on the base \w+: 2 tests: done in ([0-9.]+)s", log)
    assert again and on_base, log
    print(f"three tries with re-runs and base runs in {seconds:.1f}s; try {broken}: "
          f"job {float(job['duration']):.1f}s, of which the re-run {again.group(1)}s and "
          f"the base run {on_base.group(1)}s")
