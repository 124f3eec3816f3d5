"""Local faults of the second hostile round, through the real CLI (docs/faults.rst).

Each test names its class (issue classes 2, 3, 8, 9, the first-contact edges and the
two decisions) and asserts the exact exit code, one line on stderr, no traceback, a
time bound and that nothing the run started is still running afterwards. Before these
fixes the cases hung (a FIFO, a credential_process), ended in exit 70 with an internal
error, or passed silently.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from harness.cli import cli_env

QUICK = 15.0  # seconds: a local check answers well within this

# No AWS account: an endpoint that refuses at once, one attempt, no ambient identity.
NO_AWS = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1",
          "AWS_DEFAULT_REGION": "us-west-2", "AWS_EC2_METADATA_DISABLED": "true",
          "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that mention `text` (a test's tmp_path)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, UnicodeDecodeError):
            continue
        if text in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


def lines_of(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def one_line(result: subprocess.CompletedProcess, code: int, *, within: float,
             started: float, left: Path, progress: bool = False) -> str:
    """Exit `code`, one line on stderr (`progress`: plus indented progress lines), no
    traceback, within `within` seconds, nothing mentioning `left` still running."""
    elapsed = time.monotonic() - started
    assert result.returncode == code, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = lines_of(result.stderr)
    if progress:
        lines = [line for line in lines if not line.startswith("    ")]
    assert len(lines) == 1, result.stderr[-3000:]
    assert elapsed < within, f"took {elapsed:.1f}s (bound {within}s)"
    assert processes_mentioning(str(left)) == []
    return lines[0]


def run(cli, tmp_path: Path, *args: str, env: dict | None = None, cwd: Path | None = None,
        state: Path | str | None = None, aws: bool = False):
    """(the run, when it started): `args` with an isolated state dir and, unless `aws`,
    an AWS that refuses at once."""
    environment = dict(NO_AWS, AWS_CONFIG_FILE=os.devnull,
                       AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    environment.update(env or {})
    started = time.monotonic()
    result = cli.run(*args, state=tmp_path / "state" if state is None else state,
                     cwd=cwd or tmp_path, env=environment, aws=False, timeout=120)
    return result, started


# -- 2. waits with a bound, processes that end with the tool ------------------------------

def test_a_state_config_that_is_a_fifo_is_exit_3_at_once(cli, tmp_path):
    """Once: open() blocked for ever on the FIFO, with no output."""
    (tmp_path / "state").mkdir()
    os.mkfifo(tmp_path / "state" / "config")
    result, started = run(cli, tmp_path, "list-ec2-resources")
    line = one_line(result, 3, within=QUICK, started=started, left=tmp_path)
    assert line == (f"configuration error: cannot read {tmp_path / 'state' / 'config'}: "
                    "it is a FIFO, not a regular file")


def credential_process(tmp_path: Path, body: str, profile: str = "p") -> dict[str, str]:
    """An AWS config whose profile `profile` runs a shell script with `body`; the env."""
    script = tmp_path / f"creds-{profile}.sh"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    config = tmp_path / "aws-config"
    with open(config, "a") as fh:
        fh.write(f"[profile {profile}]\ncredential_process = {script}\n")
    return {"AWS_CONFIG_FILE": str(config), "AWS_ACCESS_KEY_ID": None,
            "AWS_SECRET_ACCESS_KEY": None}


def test_a_credential_process_that_never_answers_is_stopped_at_its_bound(cli, tmp_path):
    """Once: botocore waited for ever, silently. Now: a visible wait, exit 6 at the
    bound (HGAUTOMATION_AWS_TIMEOUT, here 4 s), its whole group killed (the sleep it
    started in the background too)."""
    env = credential_process(tmp_path, f"sleep 300 &\nsleep 301 # {tmp_path}")
    env["HGAUTOMATION_AWS_TIMEOUT"] = "4"
    result, started = run(cli, tmp_path, "--profile", "p", "list-ec2-resources", env=env)
    line = one_line(result, 6, within=4 + QUICK, started=started, left=tmp_path,
                    progress=True)
    assert time.monotonic() - started > 4
    assert "of AWS profile 'p' did not answer within 4s; stopped it" in line
    assert "    waiting for the credential_process (creds-p.sh) of AWS profile 'p' " \
        "(at most 4s)" in result.stderr


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_while_a_credential_process_runs_stops_it(cli, tmp_path, signum, code):
    """The credential_process has a process group of its own (so that it can be killed
    as a whole): a signal to the tool must still end it."""
    started_file = tmp_path / "started"
    env = credential_process(tmp_path, f"touch {started_file}\nsleep 300")
    environment = dict(NO_AWS, **{k: v for k, v in env.items() if v is not None})
    environment.update(AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None)
    with cli.popen("--profile", "p", "list-ec2-resources", state=tmp_path / "state",
                   cwd=tmp_path, env=environment, aws=False) as proc:
        deadline = time.monotonic() + QUICK
        while not started_file.exists():
            assert time.monotonic() < deadline, "the credential_process never started"
            time.sleep(0.1)
        os.kill(proc.pid, signum)  # the tool only, as a service manager would
        _out, err = proc.communicate(timeout=QUICK)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert processes_mentioning(str(tmp_path)) == []


def test_an_aws_config_that_is_a_fifo_does_not_hang(cli, tmp_path):
    """New case: botocore reads only regular files; a FIFO as AWS_CONFIG_FILE is skipped
    (no credentials then), never opened."""
    os.mkfifo(tmp_path / "fifo")
    result, started = run(cli, tmp_path, "list-ec2-resources",
                          env={"AWS_CONFIG_FILE": str(tmp_path / "fifo"),
                               "AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None})
    line = one_line(result, 6, within=QUICK, started=started, left=tmp_path)
    assert "no usable AWS credentials" in line


# -- 3. exit 70 for faults the tool should expect -----------------------------------------

def test_a_state_path_of_an_unknown_user_is_exit_3(cli, tmp_path):
    """Once: internal error: RuntimeError: Could not determine home directory."""
    result, started = run(cli, tmp_path, "list-ec2-resources", state="~nosuchuser4711/x")
    line = one_line(result, 3, within=QUICK, started=started, left=tmp_path)
    assert line == ("configuration error: state directory ~nosuchuser4711/x: no user "
                    "'nosuchuser4711' to expand '~nosuchuser4711' (give an absolute path)")


@pytest.mark.parametrize("option, code", [("--hg-repo", 3), ("--ssh-config", 3),
                                          ("-i", 2)])
def test_other_paths_of_an_unknown_user(cli, tmp_path, option, code):
    """New cases: the same expansion for the other paths the user names (-i keeps the
    exit 2 of its other path errors)."""
    result, started = run(cli, tmp_path, option, "~nosuchuser4711/x", "try")
    line = one_line(result, code, within=QUICK, started=started, left=tmp_path)
    assert "no user 'nosuchuser4711'" in line


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run as a user id with no "
                                              "passwd entry")
@pytest.mark.parametrize("args", [("list-ec2-resources",),
                                  ("check-host", "--host", "127.0.0.1:9")])
def test_a_user_with_no_passwd_entry_and_no_home_is_exit_3(cli, tmp_path, args):
    """Once: exit 70 (RuntimeError) from the default state path, or from ~/.ssh/config
    when --state-path was given."""
    # pytest's tmp_path is private to root: this user gets a directory it can reach.
    state = Path(tempfile.mkdtemp(prefix="hga-nohome-"))
    state.chmod(0o777)
    try:
        for with_state in (False, True):
            argv = cli.command(*args, state=state if with_state else None)
            started = time.monotonic()
            result = subprocess.run(
                ["setpriv", "--reuid", "54321", "--regid", "54321", "--clear-groups",
                 *argv], env=cli_env(dict(NO_AWS, HOME=None)), cwd="/", capture_output=True,
                text=True, timeout=60, stdin=subprocess.DEVNULL, check=False)
            line = one_line(result, 3, within=QUICK, started=started, left=state)
            assert line == ("configuration error: no home directory: HOME is unset and "
                            "user id 54321 has no passwd entry (set HOME)")
    finally:
        import shutil

        shutil.rmtree(state, ignore_errors=True)


def bad_hg(tmp_path: Path, kind: str) -> Path:
    """A directory for PATH whose `hg` is `kind`: not executable, a directory, or a
    script whose interpreter is missing."""
    bin_dir = tmp_path / f"bin-{kind}"
    bin_dir.mkdir()
    hg = bin_dir / "hg"
    if kind == "directory":
        hg.mkdir()
    elif kind == "not-executable":
        hg.write_text("#!/bin/sh\n")
        hg.chmod(0o644)
    else:
        hg.write_text("#!/nonexistent/python3\n")
        hg.chmod(0o755)
    return bin_dir


@pytest.mark.parametrize("kind, reason", [
    ("not-executable", "'hg': Permission denied"),
    ("directory", "'hg': Permission denied"),
    ("no-interpreter", "hg: its interpreter (#! line) is missing"),  # new case
])
def test_an_hg_that_cannot_run_is_exit_3(cli, tmp_path, kind, reason):
    """Once: internal error: PermissionError (only "not found" was caught)."""
    repo = tmp_path / "repo"
    (repo / ".hg").mkdir(parents=True)
    result, started = run(cli, tmp_path, "try", cwd=repo,
                          env={"PATH": str(bad_hg(tmp_path, kind))})
    line = one_line(result, 3, within=QUICK, started=started, left=tmp_path)
    assert line.startswith("configuration error: cannot run Mercurial: ") and reason in line


@pytest.mark.parametrize("body, says", [
    ("echo notjson", "printed something other than a JSON object ('notjson')"),
    ("echo '[1, 2]'", "printed something other than a JSON object ('[1, 2]')"),  # new
    ("printf '\\377\\376'", "printed something other than a JSON object"),  # new
    ("echo denied >&2; exit 3", "custom-process: denied"),  # new: once exit 5
])
def test_a_credential_process_answering_nonsense_is_exit_6(cli, tmp_path, body, says):
    """Once: internal error: JSONDecodeError (a failing process: exit 5)."""
    env = credential_process(tmp_path, body)
    result, started = run(cli, tmp_path, "--profile", "p", "list-ec2-resources", env=env)
    line = one_line(result, 6, within=QUICK, started=started, left=tmp_path)
    assert line.startswith("aws credentials: ") and says in line, line


def test_a_credential_process_that_does_not_exist_is_exit_6(cli, tmp_path):
    """New case: the program named is missing."""
    config = tmp_path / "aws-config"
    config.write_text(f"[profile p]\ncredential_process = {tmp_path}/missing --x\n")
    result, started = run(cli, tmp_path, "--profile", "p", "list-ec2-resources",
                          env={"AWS_CONFIG_FILE": str(config), "AWS_ACCESS_KEY_ID": None,
                               "AWS_SECRET_ACCESS_KEY": None})
    line = one_line(result, 6, within=QUICK, started=started, left=tmp_path)
    assert "(missing) of AWS profile 'p' cannot be started (No such file or directory)" \
        in line


def sparse(path: Path) -> None:
    path.write_bytes(b"")
    os.truncate(path, 8 << 30)  # 8 GB of nothing


@pytest.mark.parametrize("make, says", [
    (lambda p: p.symlink_to("/dev/zero"), "it is a device, not a regular file"),
    (lambda p: p.mkdir(), "it is a directory, not a regular file"),  # new
    (lambda p: p.write_bytes(b"#" * (2 << 20)), "larger than 1048576 bytes"),  # new
    (sparse, "larger than 1048576 bytes"),  # new
])
def test_a_config_file_that_is_no_settings_file_is_exit_3_at_once(cli, tmp_path, make,
                                                                   says):
    """Once (/dev/zero): MemoryError after 14 s, exit 70."""
    (tmp_path / "state").mkdir()
    make(tmp_path / "state" / "config")
    result, started = run(cli, tmp_path, "list-ec2-resources")
    line = one_line(result, 3, within=QUICK, started=started, left=tmp_path)
    assert line == (f"configuration error: cannot read {tmp_path / 'state' / 'config'}: "
                    f"{says}" + (", not a settings file" if "larger" in says else ""))


# -- 8. settings that passed silently ------------------------------------------------------

@pytest.mark.parametrize("text, says", [
    ("[DEFAULT]\nregoin = us-east-1\n", "a [DEFAULT] section is not supported"),
    ("[DEFAULT]\nregion = us-east-1\n[aws]\nprofile = x\n",
     "a [DEFAULT] section is not supported"),
    ("[default]\nregion = us-east-1\n", "a [default] section is not supported"),  # new
    ("[awss]\n", "unknown section [awss] (did you mean [aws]?)"),  # new: no keys at all
])
def test_a_default_section_or_an_empty_unknown_one_is_exit_3(cli, tmp_path, text, says):
    """Once: a [DEFAULT] key was ignored (or reported as every section's), and an
    unknown section without keys passed."""
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "config").write_text(text)
    result, started = run(cli, tmp_path, "list-ec2-resources")
    line = one_line(result, 3, within=QUICK, started=started, left=tmp_path)
    assert line.startswith(f"configuration error: {tmp_path / 'state' / 'config'}: ")
    assert says in line, line


@pytest.mark.parametrize("name, value", [
    ("HGAUTOMATION_AWS_TIMEOUT", "abc"), ("HGAUTOMATION_AWS_TIMEOUT", "-5"),
    ("HGAUTOMATION_AWS_TIMEOUT", "9" * 20), ("AWS_MAX_ATTEMPTS", "abc"),
    ("HGAUTOMATION_AWS_TIMEOUT", "0"), ("HGAUTOMATION_AWS_TIMEOUT", "\uff15"),  # new
    ("AWS_MAX_ATTEMPTS", "0"), ("AWS_MAX_ATTEMPTS", "2.5"),  # new
])
def test_a_bad_aws_tuning_variable_is_exit_3_naming_it(cli, tmp_path, name, value):
    """Once: taken as the default (or as 1), or handed to botocore as 10**20 seconds."""
    result, started = run(cli, tmp_path, "list-ec2-resources", env={name: value})
    line = one_line(result, 3, within=QUICK, started=started, left=tmp_path)
    assert line.startswith(f"configuration error: {name}={value!r}: expected a whole "
                           "number from 1 to "), line


def test_a_bad_yes_no_variable_is_exit_3_naming_it(cli, tmp_path):
    """New case (a guard: it already held): HGAUTOMATION_VERBOSE=maybe."""
    result, started = run(cli, tmp_path, "list-ec2-resources",
                          env={"HGAUTOMATION_VERBOSE": "maybe"})
    line = one_line(result, 3, within=QUICK, started=started, left=tmp_path)
    assert "HGAUTOMATION_VERBOSE" in line and "'maybe' is not a yes/no value" in line


# -- 9. the log that turned itself off ------------------------------------------------------

def test_a_directory_named_like_a_log_does_not_stop_logging(cli, tmp_path):
    """Once: rotation failed on the directory and no run was logged again, silently.
    Now the odd entry is skipped, old logs still rotate and this run is logged."""
    logs = tmp_path / "state" / "logs"
    (logs / "20000101T000000.000Z-odd.log").mkdir(parents=True)
    for n in range(120):
        (logs / f"2001{n:04d}T000000.000Z-old.log").write_text("old\n")
    result, started = run(cli, tmp_path, "list-ec2-resources")
    line = one_line(result, 7, within=QUICK, started=started, left=tmp_path)
    assert f"[log: {logs}/" in line
    written = Path(line.rsplit("[log: ", 1)[1].rstrip("]"))
    assert "list-ec2-resources" in written.read_text()
    assert (logs / "20000101T000000.000Z-odd.log").is_dir()  # left alone
    files = [p for p in logs.iterdir() if p.is_file()]
    assert len(files) == 100, len(files)


@pytest.mark.parametrize("make", ["file", "dangling-symlink"])
def test_a_log_that_cannot_be_written_is_said_once_and_the_run_goes_on(cli, tmp_path,
                                                                       make):
    """Once: nothing said. Now one warning, then the run as usual (here: AWS refuses,
    exit 7); the dangling symlink is a new case."""
    state = tmp_path / "state"
    state.mkdir()
    if make == "file":
        (state / "logs").write_text("")
    else:
        (state / "logs").symlink_to(tmp_path / "nowhere")
    result, started = run(cli, tmp_path, "list-ec2-resources")
    assert result.returncode == 7, result.stderr
    assert "Traceback" not in result.stderr
    lines = lines_of(result.stderr)
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith("warning: this run is not logged (") and "logs" in lines[0]
    assert lines[1].startswith("aws endpoint: ") and "[log:" not in lines[1]
    assert time.monotonic() - started < QUICK
    assert not (tmp_path / "nowhere").exists()


# -- first contact: a command's option before the command ---------------------------------

@pytest.mark.parametrize("args, line", [
    (("-T", "json", "list-ec2-resources"),
     "usage error: -T is an option of list-ec2-resources: put it after the command name "
     "(e.g. hgautomation list-ec2-resources -T json)"),
    (("-Tjson", "list-ec2-resources"),  # new
     "usage error: -T is an option of list-ec2-resources: put it after the command name "
     "(e.g. hgautomation list-ec2-resources -Tjson)"),
    (("-v", "--owner=x", "purge-ec2-resources"),  # new: after a global option
     "usage error: --owner is an option of purge-ec2-resources: put it after the command "
     "name (e.g. hgautomation purge-ec2-resources --owner=x)"),
])
def test_a_command_option_before_the_command_says_where_it_goes(cli, tmp_path, args,
                                                                 line):
    """Once: "unknown command 'json'"."""
    result, started = run(cli, tmp_path, *args, env={"HGAUTOMATION_PROG": "hgautomation"})
    assert one_line(result, 2, within=QUICK, started=started, left=tmp_path) == line


def test_a_command_option_without_a_command_names_the_commands(cli, tmp_path):
    """New case: no command at all; the option is one of run-tests-linux and try-agent."""
    result, started = run(cli, tmp_path, "--distro", "debian12")
    line = one_line(result, 2, within=QUICK, started=started, left=tmp_path)
    assert line.startswith("usage error: --distro is an option of COMMAND, not a global one: "
                           "put it after the command name"), line
    assert line.endswith("commands that take it: run-tests-linux, try-agent)"), line


# -- decided: owners kept distinct, the state directory outside the checkout --------------

@pytest.mark.parametrize("owner", ["élève", "alice.smith", "a" * 40, "bob "])
def test_an_owner_that_normalization_would_change_is_exit_2(cli, tmp_path, owner):
    """Once: élève became l-ve (and alice.smith alice-smith) silently, so two owners
    could share one key pair and security group."""
    result, started = run(cli, tmp_path, "list-ec2-resources", "--owner", owner)
    line = one_line(result, 2, within=QUICK, started=started, left=tmp_path)
    assert "invalid owner" in line and "owners are ASCII letters, digits and dashes" in line


def test_an_owner_from_the_config_file_follows_the_same_rule(cli, tmp_path):
    """New case: from <state>/config the same value is exit 3 (a configuration error)."""
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "config").write_text("[aws]\nowner = Alice.Smith\n")
    result, started = run(cli, tmp_path, "list-ec2-resources")
    line = one_line(result, 3, within=QUICK, started=started, left=tmp_path)
    assert "(aws.owner): --owner: invalid owner 'Alice.Smith'" in line


@pytest.mark.parametrize("relative", [True, False])
def test_a_state_directory_inside_the_checkout_is_exit_3(cli, tmp_path, relative):
    """Once: `--state-path state` inside the checkout put private keys there, one
    `hg addremove` from a commit."""
    repo = tmp_path / "repo"
    (repo / ".hg").mkdir(parents=True)
    (repo / "sub").mkdir()
    state = "../state-here" if relative else str(repo / "state-here")
    result, started = run(cli, tmp_path, "list-ec2-resources", cwd=repo / "sub", state=state)
    line = one_line(result, 3, within=QUICK, started=started, left=tmp_path)
    assert line.startswith(f"configuration error: the state directory {repo / 'state-here'} "
                           f"is inside the Mercurial checkout {repo}, ")
    assert not (repo / "state-here").exists()  # nothing written there


def test_a_state_directory_inside_the_hg_repo_named_is_exit_3(cli, tmp_path):
    """New case: --hg-repo names the checkout; the working directory is elsewhere."""
    repo = tmp_path / "repo"
    (repo / ".hg").mkdir(parents=True)
    result, started = run(cli, tmp_path, "--hg-repo", str(repo), "list-ec2-resources",
                          state=repo / ".hgautomation")
    line = one_line(result, 3, within=QUICK, started=started, left=tmp_path)
    assert "is inside the Mercurial checkout" in line


def test_a_state_directory_beside_the_checkout_is_fine(cli, tmp_path):
    """The check must not refuse what is safe: cwd in the checkout, state outside."""
    repo = tmp_path / "repo"
    (repo / ".hg").mkdir(parents=True)
    result, started = run(cli, tmp_path, "list-ec2-resources", cwd=repo,
                          state=tmp_path / "state")
    line = one_line(result, 7, within=QUICK, started=started, left=tmp_path)
    assert line.startswith("aws endpoint: ")
    assert stat.S_ISDIR((tmp_path / "state").stat().st_mode)

