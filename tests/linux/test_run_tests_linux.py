"""run-tests-linux and check-host end to end: real CLI, real sshd, real hg, real run-tests.py."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from harness import hgsource, jsondoc, sshd
from harness.net import free_port

pytestmark = pytest.mark.slow

QUICK_TESTS = ["test-empty-dir.t", "test-revert-flags.t", "test-issue1089.t"]
# The venv hg runs the tests: run-tests.py's default temporary install needs PyPI,
# which the loopback-only namespace does not have.
WITH_HG = "--with-hg=/hgdev/venv-bootstrap/bin/hg"


@pytest.fixture
def repo(hg_source: Path, tmp_path: Path) -> Path:
    """A private clone of Mercurial's source to commit to."""
    return hgsource.clone(hg_source, tmp_path / "repo")


@pytest.fixture
def state(tmp_path: Path, linux_dev_host) -> Path:
    """A state dir whose known_hosts already pins the dev host (as --accept-new-host-key would)."""
    path = tmp_path / "state"
    path.mkdir(mode=0o700)
    shutil.copy(linux_dev_host.ssh.known_hosts_path, path / "known_hosts")
    return path


def commit(repo: Path, message: str) -> str:
    hgsource.hg("commit", "-q", "-u", hgsource.COMMIT_USER, "-d", "1 0", "-m", message,
                cwd=repo)
    return hgsource.hg("log", "-r", ".", "-T", "{node}", cwd=repo)


def break_test(repo: Path, name: str) -> None:
    """Make test `name` fail: its expected output no longer matches."""
    with open(repo / "tests" / name, "a") as fh:
        fh.write("\n  $ echo expected\n  something else\n")


def run_tests(cli, linux_dev_host, state: Path, repo: Path, *extra: str,
              tests=QUICK_TESTS, results: Path | None = None):
    args = [*linux_dev_host.cli_args(state), "run-tests-linux", "--host", linux_dev_host.alias,
            "--hg", hgsource.hg_executable()]
    if results is not None:
        args += ["--results-dir", str(results)]
    return cli.run(*args, *extra, WITH_HG, *tests, cwd=repo, timeout=300)


def test_passing_revision_exits_0_with_parsed_report(cli, linux_dev_host, state, repo, tmp_path):
    results = tmp_path / "results"
    proc = run_tests(cli, linux_dev_host, state, repo, "-r", ".", results=results)
    assert proc.returncode == 0, proc.stderr
    assert "passed 3, failed 0, skipped 0 (3 tests)" in proc.stdout
    assert re.search(r"^timing: connect/sync \d+\.\ds, build - \(run-tests.py installs\), "
                     r"tests \d+\.\ds, other \d+\.\ds, total \d+\.\ds$", proc.stdout, re.M)
    text = (results / "report.json").read_text()
    report = json.loads(text.split("=", 1)[1])
    assert sorted(report) == sorted(QUICK_TESTS)
    assert {r["result"] for r in report.values()} == {"success"}
    # The harness output was streamed back line by line.
    assert "# Ran 3 tests, 0 skipped, 0 failed." in proc.stderr


def test_failing_test_exits_1_naming_it(cli, linux_dev_host, state, repo):
    break_test(repo, "test-revert-flags.t")
    commit(repo, "break test-revert-flags.t")
    proc = run_tests(cli, linux_dev_host, state, repo)
    assert proc.returncode == 1, proc.stderr
    assert "passed 2, failed 1, skipped 0 (3 tests)" in proc.stdout
    assert "failed: test-revert-flags.t" in proc.stdout
    line, _, log = proc.stderr.strip().splitlines()[-1].partition(" [log: ")
    assert line == "tests failed: 1 of 3 tests failed: test-revert-flags.t"
    assert "tests failed: 1 of 3" in Path(log.rstrip("]")).read_text()

    # -T json: the summary as one document on stdout, the failure still exit 1.
    proc = run_tests(cli, linux_dev_host, state, repo, "-T", "json")
    assert proc.returncode == 1, proc.stderr
    summary = jsondoc.check("run-tests-linux", proc.stdout)
    assert (summary["passed"], summary["failed"], summary["tests"]) == \
        (2, ["test-revert-flags.t"], 3)
    assert [h["host"] for h in summary["hosts"]] == [linux_dev_host.alias]
    assert summary["hosts"][0]["status"] == 1
    assert "passed 2, failed 1" in proc.stderr  # the human summary moved to stderr


def test_only_new_changesets_travel(cli, linux_dev_host, state, repo):
    (repo / "first.txt").write_text("one\n")
    hgsource.hg("add", "first.txt", cwd=repo)
    commit(repo, "first")
    proc = run_tests(cli, linux_dev_host, state, repo, "-v", tests=QUICK_TESTS[:1])
    assert proc.returncode == 0, proc.stderr
    assert "pushed 1 changeset\n" in proc.stderr

    (repo / "second.txt").write_text("two\n")
    hgsource.hg("add", "second.txt", cwd=repo)
    second = commit(repo, "second")
    proc = run_tests(cli, linux_dev_host, state, repo, "-v", tests=QUICK_TESTS[:1])
    assert proc.returncode == 0, proc.stderr
    assert "pushed 1 changeset\n" in proc.stderr
    assert "added 1 changesets with 1 changes to 1 files" in proc.stderr  # hg push -v
    assert f"/hgwork/src (kept) at {second[:12]}" in proc.stderr

    proc = run_tests(cli, linux_dev_host, state, repo, tests=QUICK_TESTS[:1])
    assert proc.returncode == 0, proc.stderr
    assert f"host already has {second[:12]}: nothing to push" in proc.stderr


def test_include_working_copy_carries_uncommitted_changes(cli, linux_dev_host, state, repo):
    break_test(repo, "test-empty-dir.t")  # uncommitted
    # (Also: --python-version X.Y runs /hgdev/pyenv/shims/pythonX.Y, the fixture's shim.)
    version = subprocess.run(["/usr/bin/python3", "-c", "import sys; print('%d.%d' % "
                              "sys.version_info[:2])"], capture_output=True, text=True,
                             check=True).stdout.strip()
    proc = run_tests(cli, linux_dev_host, state, repo, "--python-version", version,
                     tests=QUICK_TESTS[:1])
    assert proc.returncode == 0, proc.stderr  # without the flag: the committed test passes

    proc = run_tests(cli, linux_dev_host, state, repo, "--include-working-copy",
                     tests=QUICK_TESTS[:1])
    assert proc.returncode == 1, proc.stderr
    assert "failed: test-empty-dir.t" in proc.stdout
    assert "working copy: " in proc.stderr and "bytes of uncommitted changes" in proc.stderr


# -- clean one-line errors -----------------------------------------------------------

def one_line(proc) -> str:
    """The one error line, without the name of the run's log (which must exist)."""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    line, _, log = lines[0].partition(" [log: ")
    if log:
        assert Path(log.removesuffix("]")).is_file(), lines[0]
    return line


def test_unknown_revision(cli, linux_dev_host, state, repo):
    proc = cli.run(*linux_dev_host.cli_args(state), "-q", "run-tests-linux", "--host", "devhost",
                   "--hg", hgsource.hg_executable(), "-r", "nosuchrevision", cwd=repo)
    assert proc.returncode == 4
    assert one_line(proc) == ("repository error: cannot resolve revision 'nosuchrevision' "
                              f"in {repo}: unknown revision 'nosuchrevision'")


def test_not_a_repository(cli, linux_dev_host, state, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = cli.run(*linux_dev_host.cli_args(state), "-q", "run-tests-linux", "--host", "devhost",
                   cwd=empty)
    assert proc.returncode == 4
    assert one_line(proc).startswith("repository error: no Mercurial repository at or above")


def test_unsupported_filesystem(cli, linux_dev_host, state, repo):
    proc = cli.run(*linux_dev_host.cli_args(state), "-q", "run-tests-linux", "--host", "devhost",
                   "--hg", hgsource.hg_executable(), "--filesystem", "xfs", cwd=repo)
    assert proc.returncode == 2  # an option combination, like --instances with --host
    assert one_line(proc).startswith("usage error: --filesystem xfs needs a spare "
                                      "block device")
    proc = cli.run("run-tests-linux", "--filesystem", "ntfs", cwd=repo)
    assert proc.returncode == 2
    assert one_line(proc).startswith("usage error: argument --filesystem: invalid choice")


def test_unreachable_host(cli, linux_dev_host, state, repo):
    port = free_port()  # nothing listens there
    proc = cli.run(*linux_dev_host.cli_args(state), "-q", "run-tests-linux",
                   "--host", f"hgtest@127.0.0.1:{port}", "--hg", hgsource.hg_executable(),
                   cwd=repo)
    assert proc.returncode == 8
    assert one_line(proc).startswith(
        f"connection error: cannot connect to hgtest@127.0.0.1:{port}: connection refused")


def test_authentication_failure(cli, linux_dev_host, state, repo, tmp_path):
    other_key = sshd.generate_key(tmp_path / "other_key")
    config = tmp_path / "ssh_config"
    config.write_text(linux_dev_host.ssh_config.read_text().replace(
        str(linux_dev_host.ssh.key_path), str(other_key)))
    proc = cli.run("--state-path", str(state), "--ssh-config", str(config), "-q",
                   "run-tests-linux", "--host", "devhost", "--hg", hgsource.hg_executable(),
                   cwd=repo)
    assert proc.returncode == 8
    assert one_line(proc).startswith(
        # The host as typed (the config's alias), then where it led.
        f"connection error: authentication failed for hgtest@devhost "
        f"(127.0.0.1:{linux_dev_host.ssh.port})")


def test_check_host_pins_new_key_only_when_asked(cli, linux_dev_host, tmp_path):
    state = tmp_path / "fresh-state"
    args = ["--state-path", str(state), "--ssh-config", str(linux_dev_host.ssh_config)]
    proc = cli.run(*args, "check-host", "--host", "devhost")
    assert proc.returncode == 9
    assert proc.stderr.strip().splitlines()[-1].startswith(
        f"host key error: unknown host key for [127.0.0.1]:{linux_dev_host.ssh.port}: "
        "ssh-ed25519 SHA256:")
    assert "--accept-new-host-key" in proc.stderr
    assert not (state / "known_hosts").exists()

    proc = cli.run(*args, "check-host", "--host", "devhost", "--accept-new-host-key")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    pinned = (state / "known_hosts").read_text().split()
    assert pinned == [f"[127.0.0.1]:{linux_dev_host.ssh.port}",
                      *linux_dev_host.ssh.host_public_key.split()]
    for item in ("sftp", "/hgdev", "venv-bootstrap hg", "/hgdev/src", "/hgwork"):
        assert re.search(rf"^{re.escape(item)}\s+ok\s+required", proc.stdout, re.M), proc.stdout
    assert "1 host meets the contract" in proc.stdout


def test_host_key_mismatch_is_refused(cli, linux_dev_host, state, sshd_workdir, repo):
    # A second sshd with its own host key, while the first one's key is pinned for it.
    daemon = sshd.start_sshd(sshd_workdir, linux_dev_host.user,
                             user_key=linux_dev_host.ssh.key_path)
    try:
        port = daemon.host.port
        (state / "known_hosts").write_text(
            f"[127.0.0.1]:{port} {linux_dev_host.ssh.host_public_key}\n")
        for command in (["check-host"], ["run-tests-linux", "--hg", hgsource.hg_executable()]):
            proc = cli.run(*linux_dev_host.cli_args(state), "-q", *command,
                           "--host", f"127.0.0.1:{port}", "--accept-new-host-key", cwd=repo)
            assert proc.returncode == 9, proc.stderr
            assert one_line(proc).startswith(
                f"host key error: host key for [127.0.0.1]:{port} has changed")
        # --accept-new-host-key never overrides a pinned key.
        assert (state / "known_hosts").read_text().split()[1:] == \
            linux_dev_host.ssh.host_public_key.split()
    finally:
        daemon.stop()


def test_check_host_reports_missing_contract(cli, linux_dev_host, state, sshd_workdir, tmp_path):
    """Another user on the same sshd setup does not own /hgdev: check-host says so."""
    daemon = sshd.start_sshd(sshd_workdir, "hgtest2")
    try:
        (state / "known_hosts").write_text(
            f"[127.0.0.1]:{daemon.host.port} {daemon.host.host_public_key}\n")
        config = tmp_path / "cfg"
        config.write_text(f"Host *\n  IdentityFile {daemon.host.key_path}\n")
        proc = cli.run("--state-path", str(state), "--ssh-config", str(config), "check-host",
                       "--host", f"hgtest2@127.0.0.1:{daemon.host.port}")
        assert proc.returncode == 20, proc.stderr
        assert re.search(r"^/hgdev\s+missing\s+required\s+owned by hgtest, not hgtest2",
                         proc.stdout, re.M), proc.stdout
        assert proc.stderr.strip().splitlines()[-1].startswith(
            "host not ready: contract not met: 127.0.0.1: /hgdev")
    finally:
        daemon.stop()


def test_instances_shard_over_hosts_and_merge(cli, linux_dev_host, second_dev_host, state, repo,
                                              tmp_path):
    (state / "known_hosts").write_text(
        linux_dev_host.ssh.known_hosts_path.read_text()
        + second_dev_host.ssh.known_hosts_path.read_text())
    results = tmp_path / "results"
    proc = cli.run("--state-path", str(state), "--ssh-config", str(second_dev_host.ssh_config),
                   "run-tests-linux", "--host", "devhost", "--host", "devhost2", "--instances", "2",
                   "--hg", hgsource.hg_executable(), "--results-dir", str(results), WITH_HG,
                   *QUICK_TESTS, cwd=repo, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "passed 3, failed 0, skipped 0 (3 tests on 2 hosts)" in proc.stdout
    # Round-robin shards: 2 tests on the first host, 1 on the second, each streamed
    # with its host's prefix.
    assert "[devhost] # Ran 2 tests, 0 skipped, 0 failed." in proc.stderr
    assert "[devhost2] # Ran 1 tests, 0 skipped, 0 failed." in proc.stderr
    shard1 = json.loads((results / "report-1-devhost.json").read_text().split("=", 1)[1])
    shard2 = json.loads((results / "report-2-devhost2.json").read_text().split("=", 1)[1])
    assert (len(shard1), len(shard2)) == (2, 1)
    assert sorted([*shard1, *shard2]) == sorted(QUICK_TESTS)
    merged = json.loads((results / "report.json").read_text())
    assert sorted(merged) == sorted(QUICK_TESTS)

    proc = cli.run("--state-path", str(state), "-q", "run-tests-linux", "--host", "devhost",
                   "--instances", "2", cwd=repo)
    assert proc.returncode == 2
    assert one_line(proc) == ("usage error: --instances 2 with --host needs 2 --host values "
                              "(got 1)")


def remote_test_processes(user: str) -> list[str]:
    found = subprocess.run(["pgrep", "-u", user, "-f", "run-tests.py"], capture_output=True,
                           text=True, check=False)  # exit 1: none found
    return found.stdout.split()


def test_sigterm_stops_the_remote_tests_too(cli, linux_dev_host, state, repo):
    (repo / "tests" / "test-hgauto-sleep.t").write_text("  $ sleep 120\n")
    hgsource.hg("add", "tests/test-hgauto-sleep.t", cwd=repo)
    commit(repo, "a slow test")
    with cli.popen(*linux_dev_host.cli_args(state), "run-tests-linux", "--host", "devhost",
                   "--hg", hgsource.hg_executable(), WITH_HG, "test-hgauto-sleep.t",
                   cwd=repo) as proc:
        deadline = time.monotonic() + 120
        while not remote_test_processes(linux_dev_host.user):
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the remote tests never started"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == "interrupted (SIGTERM); cleanup done"
    deadline = time.monotonic() + 20
    while remote_test_processes(linux_dev_host.user) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert remote_test_processes(linux_dev_host.user) == []


# -- the build the tests use: reused only while its inputs are unchanged -----------------

BUILD_TEST = "test-hgauto-build.t"


def build_runs(cli, linux_dev_host, state, repo, *extra):
    proc = cli.run(*linux_dev_host.cli_args(state), "run-tests-linux", "--host", "devhost",
                   "--hg", hgsource.hg_executable(), *extra, BUILD_TEST, cwd=repo, timeout=600)
    found = re.search(r"^timing: .*build (\d+\.\d)s \((\w+)\)", proc.stdout, re.M)
    assert found, proc.stdout + proc.stderr
    return proc, found.group(2)


def test_build_is_reused_until_an_input_changes(cli, linux_dev_host, state, repo):
    """Correctness first: a Python change is live without a build; a C change rebuilds
    (and the cached build of the old C comes back when the C does)."""
    (repo / "tests" / BUILD_TEST).write_text("  $ hg init repo\n  $ hg -R repo root\n"
                                             "  $TESTTMP/repo\n")
    hgsource.hg("add", f"tests/{BUILD_TEST}", cwd=repo)
    good = commit(repo, "a test of the build")

    proc, how = build_runs(cli, linux_dev_host, state, repo)
    assert (proc.returncode, how) == (0, "built"), proc.stderr
    assert "passed 1, failed 0" in proc.stdout
    proc, how = build_runs(cli, linux_dev_host, state, repo)
    assert (proc.returncode, how) == (0, "reused"), proc.stderr

    # A change to Python code only: the same build, and the change is what runs.
    commands = repo / "mercurial" / "commands.py"
    text = commands.read_text()
    marker = "def root(ui, repo, **opts):\n"
    assert marker in text
    body_start = text.index(marker) + len(marker)
    docstring_end = text.index('"""', text.index('"""', body_start) + 3) + 3
    commands.write_text(text[:docstring_end] + "\n    ui.write(b'python-change\\n')"
                        + text[docstring_end:])
    commit(repo, "root says python-change")
    proc, how = build_runs(cli, linux_dev_host, state, repo)
    assert (proc.returncode, how) == (1, "reused"), proc.stderr
    assert "+  python-change" in proc.stderr  # run-tests.py's diff of the output

    # A change to a C file: another key, hence a build, and the test sees it.
    hgsource.hg("update", "-q", "-r", good, cwd=repo)
    parsers = repo / "mercurial" / "cext" / "parsers.c"
    parsers.write_text(parsers.read_text().replace("static const int version = 21;",
                                                   "static const int version = 9021;"))
    commit(repo, "parsers.c reports another version")
    proc, how = build_runs(cli, linux_dev_host, state, repo)
    assert (proc.returncode, how) == (1, "built"), proc.stderr
    assert "9021" in proc.stderr  # mercurial.policy refuses the changed C module

    # Back to the first revision: its build comes from the host's cache.
    proc, how = build_runs(cli, linux_dev_host, state, repo, "-r", good)
    assert (proc.returncode, how) == (0, "restored"), proc.stderr
    proc, how = build_runs(cli, linux_dev_host, state, repo, "-r", good, "--rebuild")
    assert (proc.returncode, how) == (0, "built"), proc.stderr


def test_full_install_lets_run_tests_install(cli, linux_dev_host, state, repo):
    """--full-install: run-tests.py's own pip install of the revision (here --pure, from
    the host's wheelhouse), no build of ours."""
    proc = cli.run(*linux_dev_host.cli_args(state), "run-tests-linux", "--host", "devhost",
                   "--hg", hgsource.hg_executable(), "--full-install", "--", "--pure",
                   "test-empty-dir.t", cwd=repo, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "build - (run-tests.py installs)" in proc.stdout
    assert "passed 1, failed 0" in proc.stdout
    proc = cli.run(*linux_dev_host.cli_args(state), "-q", "run-tests-linux", "--host",
                   "devhost", "--rebuild", WITH_HG, cwd=repo)
    assert proc.returncode == 2
    assert one_line(proc) == ("usage error: --rebuild has nothing to rebuild: "
                              "--with-hg names the hg to test")


def test_python_requirements_are_tried_one_by_one(linux_dev_host):
    """python-requirements.sh reads the clone's linux-requirements-py3.txt and tries each
    pinned requirement on its own for each pyenv Python; here (no index reachable) none
    installs, and each is named, not fatal."""
    from hgautomation import linux, ssh

    target = ssh.resolve("devhost", ssh_config=linux_dev_host.ssh_config)
    with ssh.connect(target, known_hosts=linux_dev_host.ssh.known_hosts_path) as conn:
        lines: list[str] = []
        conn.run(["bash", "-s"], stdin=linux.script("python-requirements.sh"), sink=lines,
                 timeout=600)
    report = [line for line in lines if line.startswith("test requirements for ")]
    assert len(report) == 1, lines  # the fixture's one shim
    assert report[0].startswith("test requirements for python3.")
    assert ": 0 installed, not installable: appdirs astroid attrs black " in report[0], report[0]
    assert report[0].endswith(" yarl")
