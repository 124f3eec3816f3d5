"""automation.py end to end: venv creation, hashed install, stamp fast path, re-exec.

Every test runs the real automation.py in a subprocess. pip runs offline:
PIP_NO_INDEX=1 and PIP_FIND_LINKS=build/cache/wheels (filled by tests/run),
which is ordinary pip configuration a user could set too. PIP_LOG=<file> makes
pip write a log whenever it runs: the sentinel that proves the fast path ran
no pip. Small copies of the repository ("mini" repos) carry a one-package
requirements.txt taken from the real one, so their venvs build in seconds; the
real requirements.txt is installed once per session (``full``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.process import kill_group, reaped

ROOT = Path(__file__).resolve().parents[1]
WHEELS = ROOT / "build" / "cache" / "wheels"
STAMP = "hgautomation-stamp.txt"
QUICK = 120  # seconds for a run that builds at most a small venv
FULL = 900  # seconds for installing the real requirements.txt


# -- helpers ------------------------------------------------------------------

def requirement_block(name: str) -> str:
    """The pinned, hashed entry for ``name`` in the real requirements.txt."""
    text = (ROOT / "requirements.txt").read_text()
    match = re.search(rf"^{re.escape(name)}==\S+ \\\n(?:    --hash=\S+(?: \\)?\n)+", text, re.M)
    assert match, f"{name} is not pinned in requirements.txt"
    return match.group(0)


def pip_env(tmp: Path, wheels: Path = WHEELS) -> dict[str, str]:
    """Environment for automation.py: offline pip, bootstrap trace on, pip log sentinel."""
    if not any(wheels.glob("*.whl")) and wheels == WHEELS:
        pytest.fail(f"{WHEELS} holds no wheels: run the tests with tests/run, which fills it")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HGAUTOMATION_", "PIP_")) and k != "PYTHONPATH"}
    env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheels), PIP_DISABLE_PIP_VERSION_CHECK="1",
               PIP_LOG=str(tmp / "pip.log"), HGAUTOMATION_BOOTSTRAP_TRACE="1")
    return env


def run(argv: list[str], env: dict[str, str], cwd: Path, timeout: float = QUICK
        ) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)


def automation(repo: Path, *args: str, env: dict[str, str], python: str = sys.executable,
               timeout: float = QUICK) -> subprocess.CompletedProcess:
    return run([python, str(repo / "automation.py"), *args], env, repo, timeout)


def make_mini_repo(dest: Path, packages: tuple[str, ...] = ("six",)) -> Path:
    """automation.py and the package, with a requirements.txt of ``packages`` only."""
    dest.mkdir(parents=True)
    shutil.copy2(ROOT / "automation.py", dest / "automation.py")
    shutil.copytree(ROOT / "hgautomation", dest / "hgautomation",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "requirements.txt").write_text("".join(requirement_block(p) for p in packages))
    return dest


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def no_traceback(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stderr, result.stderr


def errors_only(stderr: str) -> list[str]:
    """stderr without the bootstrap trace lines."""
    return [line for line in stderr.splitlines() if "[bootstrap]" not in line]


class Mini:
    """A mini repo whose first automation.py run has happened."""

    def __init__(self, root: Path, tmp: Path):
        self.root = root
        self.tmp = tmp
        self.venv = root / "build" / "venv-automation"
        self.env = pip_env(tmp)
        self.first = automation(root, "--help", env=self.env)

    @property
    def stamp(self) -> Path:
        return self.venv / STAMP


def _mini(tmp: Path) -> Mini:
    mini = Mini(make_mini_repo(tmp / "repo"), tmp)
    assert mini.first.returncode == 0, mini.first.stderr
    return mini


@pytest.fixture(scope="module")
def mini(tmp_path_factory) -> Iterator[Mini]:
    """A ready mini repo shared by the tests that do not change it."""
    mini = _mini(tmp_path_factory.mktemp("mini"))
    yield mini
    shutil.rmtree(mini.venv, ignore_errors=True)  # venvs are big; pytest keeps tmp dirs


@pytest.fixture
def own_mini(tmp_path) -> Iterator[Mini]:
    """A ready mini repo for one test to change."""
    mini = _mini(tmp_path)
    yield mini
    shutil.rmtree(mini.venv, ignore_errors=True)


class Full:
    """The real requirements.txt installed into a venv named by HGAUTOMATION_VENV."""

    def __init__(self, tmp: Path):
        self.venv = tmp / "venv-full"
        self.env = pip_env(tmp)
        self.env["HGAUTOMATION_VENV"] = str(self.venv)
        self.first = automation(ROOT, "--help", env=self.env, timeout=FULL)


@pytest.fixture(scope="session")
def full(tmp_path_factory) -> Iterator[Full]:
    full = Full(tmp_path_factory.mktemp("full"))
    assert full.first.returncode == 0, full.first.stderr[-3000:]
    yield full
    shutil.rmtree(full.venv, ignore_errors=True)


class StallingServer:
    """Accepts TCP connections on 127.0.0.1 and never answers."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)  # so the accept loop notices close() quickly
        self.port = self.sock.getsockname()[1]
        self.connected = threading.Event()
        self.closing = threading.Event()
        self.clients: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.clients.append(conn)
            self.connected.set()

    def close(self) -> None:
        self.closing.set()
        self.thread.join(5)
        self.sock.close()
        for conn in self.clients:
            conn.close()


@pytest.fixture
def stalling_server():
    server = StallingServer()
    yield server
    server.close()


def interrupt_when(proc: subprocess.Popen, event: threading.Event, timeout: float
                   ) -> tuple[str, str]:
    """Wait for ``event``, then Ctrl-C ``proc``'s process group as a terminal would."""
    with reaped(proc):  # its group is killed if still running at the end
        if not event.wait(timeout):
            _out, err = kill_group(proc)
            pytest.fail(f"the process never reached the point to interrupt; stderr:\n{err}")
        os.killpg(proc.pid, signal.SIGINT)
        return proc.communicate(timeout=60)


def _load_automation():
    spec = importlib.util.spec_from_file_location("automation_under_test",
                                                  ROOT / "automation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- first run, fast path, reinstall ------------------------------------------

def test_first_run_creates_venv_installs_and_reexecs(mini):
    result = mini.first
    assert result.stdout.startswith("usage: automation.py"), result.stdout
    assert f"creating virtualenv {mini.venv}" in result.stderr
    assert f"installing requirements.txt into {mini.venv}" in result.stderr
    assert (mini.tmp / "pip.log").exists(), "pip did not run on the first run"
    # The CLI ran in a second process, started by exec with the venv's interpreter.
    assert f"re-executing with {venv_python(mini.venv)}" in result.stderr
    assert f"re-executed: sys.prefix={mini.venv} sys.executable={venv_python(mini.venv)}" \
        in result.stderr
    check = run([str(venv_python(mini.venv)), "-c", "import six; print(six.__version__)"],
                mini.env, mini.root)
    assert check.stdout.strip() == "1.17.0", check.stderr
    stamp = mini.stamp.read_text()
    digest = hashlib.sha256((mini.root / "requirements.txt").read_bytes()).hexdigest()
    assert f"requirements-sha256 {digest}\n" in stamp
    assert f"python-version {sys.version_info.major}.{sys.version_info.minor}." in stamp


def test_first_run_is_one_line_per_phase_with_pip_output_in_a_log(mini):
    """Once: pip's whole output (about 150 lines for requirements.txt) on the terminal."""
    log = mini.venv / "hgautomation-pip.log"
    assert errors_only(mini.first.stderr) == [
        f"automation.py: creating virtualenv {mini.venv}",
        f"automation.py: installing requirements.txt into {mini.venv} (pip's output: {log})"]
    assert "Successfully installed six" in log.read_text()
    assert "Collecting" not in mini.first.stderr


def test_second_run_takes_the_fast_path_without_pip(mini, tmp_path):
    env = pip_env(tmp_path, wheels=tmp_path / "no-wheels-here")  # any pip run would fail
    before = mini.stamp.stat().st_mtime_ns
    result = automation(mini.root, "--help", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: automation.py")
    assert "stamp matches: no venv or pip work" in result.stderr
    assert "installing" not in result.stderr and "creating" not in result.stderr
    assert not (tmp_path / "pip.log").exists(), "pip ran on the fast path"
    assert mini.stamp.stat().st_mtime_ns == before
    assert f"re-executed: sys.prefix={mini.venv}" in result.stderr


def test_requirements_change_reinstalls_into_the_same_venv(own_mini):
    cfg_before = (own_mini.venv / "pyvenv.cfg").stat().st_mtime_ns
    old_stamp = own_mini.stamp.read_text()
    (own_mini.tmp / "pip.log").unlink()
    with open(own_mini.root / "requirements.txt", "a") as f:
        f.write(requirement_block("mdurl"))
    result = automation(own_mini.root, "--help", env=own_mini.env)
    assert result.returncode == 0, result.stderr
    assert "stamp missing or different" in result.stderr
    assert "installing requirements.txt" in result.stderr
    assert "creating virtualenv" not in result.stderr
    assert (own_mini.tmp / "pip.log").exists()
    assert (own_mini.venv / "pyvenv.cfg").stat().st_mtime_ns == cfg_before
    assert own_mini.stamp.read_text() != old_stamp
    check = run([str(venv_python(own_mini.venv)), "-c", "import mdurl"], own_mini.env,
                own_mini.root)
    assert check.returncode == 0, check.stderr
    again = automation(own_mini.root, "--help", env=own_mini.env)
    assert "stamp matches" in again.stderr


def test_pip_failure_shows_pip_output_writes_no_stamp_and_next_run_retries(tmp_path):
    repo = make_mini_repo(tmp_path / "repo")
    good = (repo / "requirements.txt").read_text()
    bad = re.sub(r"sha256:[0-9a-f]{64}", "sha256:" + "0" * 64, good)
    (repo / "requirements.txt").write_text(bad)
    env = pip_env(tmp_path)
    result = automation(repo, "--help", env=env)
    assert result.returncode == 75, result.stderr
    no_traceback(result)
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in result.stderr  # pip's own output
    last = errors_only(result.stderr)[-1]
    assert last.startswith("automation.py: error: pip install --require-hashes -r ")
    assert "failed with exit code 1" in last
    # Only the end of pip's output is shown; all of it is in the log the line names.
    log = repo / "build" / "venv-automation" / "hgautomation-pip.log"
    assert f"all of it in {log})" in last
    shown = [line for line in errors_only(result.stderr) if line.startswith("  pip: ")]
    assert 0 < len(shown) <= 25
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in log.read_text()
    assert result.stdout == ""
    venv = repo / "build" / "venv-automation"
    assert venv.is_dir() and not (venv / STAMP).exists()
    assert not list(venv.glob(STAMP + ".tmp*"))

    (repo / "requirements.txt").write_text(good)
    retry = automation(repo, "--help", env=env)
    assert retry.returncode == 0, retry.stderr
    assert "creating virtualenv" not in retry.stderr  # the venv is reused
    assert "installing requirements.txt" in retry.stderr
    assert (venv / STAMP).exists()


def test_concurrent_first_runs_build_the_venv_once(tmp_path):
    repo = make_mini_repo(tmp_path / "repo")
    env = pip_env(tmp_path)
    procs = [subprocess.Popen([sys.executable, str(repo / "automation.py"), "--help"],
                              env=env, cwd=repo, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [proc.communicate(timeout=QUICK) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], results
    stderr = "".join(err for _out, err in results)
    assert stderr.count("creating virtualenv") == 1, stderr
    # Whichever waited on the lock found the other's stamp, or came after it.
    assert "stamp written meanwhile by another run" in stderr or \
        "stamp matches" in stderr, stderr
    shutil.rmtree(repo / "build", ignore_errors=True)


# -- the venv's own interpreter, HGAUTOMATION_VENV, rebuilds ------------------

def test_venv_own_interpreter_runs_the_cli_without_rebuilding(mini, tmp_path):
    env = pip_env(tmp_path)
    cfg_before = (mini.venv / "pyvenv.cfg").stat().st_mtime_ns
    result = automation(mini.root, "--help", env=env, python=str(venv_python(mini.venv)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: automation.py")
    assert "already in the venv" in result.stderr
    assert "re-executing" not in result.stderr
    assert not (tmp_path / "pip.log").exists()
    assert (mini.venv / "pyvenv.cfg").stat().st_mtime_ns == cfg_before


def test_venv_own_interpreter_installs_changed_requirements_into_itself(own_mini):
    python = str(venv_python(own_mini.venv))
    cfg_before = (own_mini.venv / "pyvenv.cfg").stat().st_mtime_ns
    with open(own_mini.root / "requirements.txt", "a") as f:
        f.write(requirement_block("mdurl"))
    result = automation(own_mini.root, "--help", env=own_mini.env, python=python)
    assert result.returncode == 0, result.stderr
    assert "installing into it, never rebuilding it" in result.stderr
    assert "creating virtualenv" not in result.stderr
    assert "rebuilding virtualenv" not in result.stderr
    assert (own_mini.venv / "pyvenv.cfg").stat().st_mtime_ns == cfg_before
    assert "stamp matches" in automation(own_mini.root, "--help", env=own_mini.env).stderr


def test_venv_whose_interpreter_is_gone_is_rebuilt(own_mini):
    for link in (own_mini.venv / "bin").glob("python*"):
        link.unlink()
    result = automation(own_mini.root, "--help", env=own_mini.env)
    assert result.returncode == 0, result.stderr
    assert f"rebuilding virtualenv {own_mini.venv}: its interpreter does not run" \
        in result.stderr
    assert f"creating virtualenv {own_mini.venv}" in result.stderr
    assert venv_python(own_mini.venv).exists() and own_mini.stamp.exists()


def test_hgautomation_venv_is_honoured(full):
    assert (full.venv / STAMP).is_file()
    assert f"creating virtualenv {full.venv}" in full.first.stderr
    result = automation(ROOT, "--help", env=full.env)
    assert result.returncode == 0, result.stderr
    assert f"re-executed: sys.prefix={full.venv}" in result.stderr


def test_a_directory_that_is_not_a_venv_is_left_alone(tmp_path):
    repo = make_mini_repo(tmp_path / "repo")
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "data.txt").write_text("keep me")
    env = pip_env(tmp_path)
    env["HGAUTOMATION_VENV"] = str(precious)
    result = automation(repo, "--help", env=env)
    assert result.returncode == 3
    no_traceback(result)
    assert errors_only(result.stderr) == [
        f"automation.py: error: {precious} exists but is not a virtualenv; remove it or "
        "point HGAUTOMATION_VENV elsewhere"]
    assert (precious / "data.txt").read_text() == "keep me"


# -- the real requirements ----------------------------------------------------

def test_real_requirements_install_with_hashes_offline(full):
    assert "installing requirements.txt" in full.first.stderr
    digest = hashlib.sha256((ROOT / "requirements.txt").read_bytes()).hexdigest()
    assert f"requirements-sha256 {digest}\n" in (full.venv / STAMP).read_text()
    check = run([str(venv_python(full.venv)), "-c",
                 "import boto3, paramiko, twine, requests, sys; print(sys.prefix)"],
                full.env, ROOT)
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == str(full.venv)


def test_help_lists_every_subcommand(full):
    from hgautomation import cli

    result = automation(ROOT, "--help", env=full.env)
    assert result.returncode == 0, result.stderr
    for name, (_help_text, _target) in cli.COMMANDS.items():
        assert re.search(rf"^\s+{re.escape(name)}\s", result.stdout, re.M), name


def test_no_arguments_prints_help_and_exits_0(full):
    result = automation(ROOT, env=full.env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: automation.py")
    assert "run-tests-linux" in result.stdout


def test_unknown_subcommand_is_one_line_exit_2(full):
    result = automation(ROOT, "no-such-command", env=full.env)
    assert result.returncode == 2
    no_traceback(result)
    lines = errors_only(result.stderr)
    assert len(lines) == 1 and "no-such-command" in lines[0], result.stderr
    assert result.stdout == ""


def test_sigint_to_a_running_cli_exits_130_quietly(full, stalling_server, tmp_path):
    # The CLI asks "AWS" (a loopback server that never answers) and waits;
    # Ctrl-C then reaches the venv's interpreter directly (exec kept the pid).
    env = dict(full.env)
    env.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{stalling_server.port}",
               AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_DEFAULT_REGION="us-west-2", AWS_EC2_METADATA_DISABLED="true",
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "automation.py"), "--state-path", str(tmp_path / "state"),
         "list-ec2-resources"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True)
    _out, err = interrupt_when(proc, stalling_server.connected, 60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "re-executed" in err  # it was the venv's CLI that got the signal
    assert errors_only(err)[-1] == "interrupted; cleanup done"


def _stalled_pip(tmp_path: Path, stalling_server) -> tuple[Path, subprocess.Popen]:
    """automation.py of a mini repo whose pip hangs on a package index that never answers."""
    repo = make_mini_repo(tmp_path / "repo")
    env = pip_env(tmp_path, wheels=tmp_path / "empty")
    del env["PIP_NO_INDEX"]
    env["PIP_INDEX_URL"] = f"http://127.0.0.1:{stalling_server.port}/simple"
    proc = subprocess.Popen([sys.executable, str(repo / "automation.py"), "--help"], env=env,
                            cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    return repo, proc


def test_sigint_during_pip_exits_130_without_stamp(tmp_path, stalling_server):
    repo, proc = _stalled_pip(tmp_path, stalling_server)
    _out, err = interrupt_when(proc, stalling_server.connected, QUICK)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert errors_only(err)[-1] == "automation.py: interrupted"
    assert not (repo / "build" / "venv-automation" / STAMP).exists()


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that mention ``text`` (e.g. a test's repo path)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


@pytest.mark.parametrize("signum, code, last_line", [
    (signal.SIGTERM, 143, "automation.py: terminated"),
    (signal.SIGINT, 130, "automation.py: interrupted"),
])
def test_a_signal_to_the_launcher_alone_stops_pip(tmp_path, stalling_server, signum, code,
                                                  last_line):
    # Only the launcher gets the signal (a service manager's SIGTERM, or kill PID):
    # pip, which runs in its own process group, must not be left behind.
    repo, proc = _stalled_pip(tmp_path, stalling_server)
    with reaped(proc):
        assert stalling_server.connected.wait(QUICK), "pip never asked the index"
        assert any("pip" in line for line in processes_mentioning(str(repo)))
        os.kill(proc.pid, signum)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert errors_only(err)[-1] == last_line
    assert processes_mentioning(str(repo)) == []
    assert not (repo / "build" / "venv-automation" / STAMP).exists()


def test_a_venv_the_tool_did_not_create_is_never_deleted(tmp_path):
    repo = make_mini_repo(tmp_path / "repo")
    theirs = tmp_path / "their-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(theirs)], check=True)
    (theirs / "notes.txt").write_text("keep me")
    # Unusable for us (no pip): a venv of ours would be rebuilt, theirs must not be.
    env = pip_env(tmp_path)
    env["HGAUTOMATION_VENV"] = str(theirs)
    result = automation(repo, "--help", env=env)
    assert result.returncode == 3, result.stderr
    no_traceback(result)
    (line,) = errors_only(result.stderr)
    assert line.startswith(f"automation.py: error: {theirs} is a virtualenv this tool did "
                           "not create, and its interpreter")
    assert (theirs / "notes.txt").read_text() == "keep me"
    assert (theirs / "pyvenv.cfg").is_file()


def test_a_venv_of_ours_is_marked_and_rebuilt_when_broken(own_mini):
    venv = own_mini.venv
    assert (venv / "hgautomation-created.txt").is_file()
    (venv / "pyvenv.cfg").write_text((venv / "pyvenv.cfg").read_text().replace(
        "version", "version = 2.7\nold-version"))
    (venv / STAMP).unlink()
    result = automation(own_mini.root, "--help", env=own_mini.env)
    assert result.returncode == 0, result.stderr
    assert f"rebuilding virtualenv {venv}" in result.stderr


# -- failures before any venv work -------------------------------------------

def test_python_too_old_check():
    check = _load_automation().python_too_old
    assert check((3, 9, 0)) is None
    assert check((3, 14, 1)) is None
    assert check((4, 0)) is None
    message = check((3, 8, 18))
    assert message.startswith("Python 3.8 is too old: hgautomation needs Python 3.9 or newer")


def test_python_too_old_exits_3_with_one_line(tmp_path):
    # The real script under an interpreter that reports 3.8.
    fake = ("import runpy, sys; sys.version_info = (3, 8, 18, 'final', 0); "
            f"sys.argv = [{str(ROOT / 'automation.py')!r}, '--help']; "
            f"runpy.run_path({str(ROOT / 'automation.py')!r}, run_name='__main__')")
    result = run([sys.executable, "-c", fake], pip_env(tmp_path), tmp_path)
    assert result.returncode == 3
    assert result.stderr.splitlines() == [
        "automation.py: error: Python 3.8 is too old: hgautomation needs Python 3.9 or newer "
        "(run this script with a newer python3)"]
    assert result.stdout == ""


def test_missing_ensurepip_says_install_python3_venv(tmp_path):
    repo = make_mini_repo(tmp_path / "repo")
    # As on Debian without python3-venv: the ensurepip module is absent.
    script = str(repo / "automation.py")
    fake = ("import runpy, sys; sys.modules['ensurepip'] = None; "
            f"sys.argv = [{script!r}, '--help']; runpy.run_path({script!r}, run_name='__main__')")
    result = run([sys.executable, "-c", fake], pip_env(tmp_path), repo)
    assert result.returncode == 3
    no_traceback(result)
    lines = errors_only(result.stderr)
    assert len(lines) == 1, result.stderr
    assert "lacks the module(s) ensurepip" in lines[0]
    assert "apt install python3-venv" in lines[0]
    assert not (repo / "build" / "venv-automation").exists()


def test_the_reexec_marker_never_loops(tmp_path):
    repo = make_mini_repo(tmp_path / "repo")
    env = pip_env(tmp_path)
    env["HGAUTOMATION_BOOTSTRAPPED"] = str(repo / "build" / "venv-automation")
    result = automation(repo, "--help", env=env)
    assert result.returncode == 73
    no_traceback(result)
    lines = errors_only(result.stderr)
    assert len(lines) == 1 and "re-executed into" in lines[0], result.stderr


def test_bootstrap_exit_codes_agree_with_errors_py():
    from hgautomation import errors
    from hgautomation import venv_bootstrap as vb

    assert errors.ConfigurationError.exit_code == vb.EXIT_CONFIGURATION
    assert errors.Interrupted.exit_code == vb.EXIT_INTERRUPTED
    assert vb.EXIT_INTERNAL == errors.INTERNAL_ERROR_EXIT
    assert vb.EXIT_TERMINATED == errors.SIGTERM_EXIT
    codes = {code for code in errors.EXIT_CODES} | {errors.SIGTERM_EXIT}
    # The bootstrap's own failures must not be mistaken for a CLI error.
    assert vb.EXIT_VENV_FAILED not in codes
    assert vb.EXIT_PIP_FAILED not in codes
    assert _load_automation().EXIT_CONFIGURATION == vb.EXIT_CONFIGURATION
