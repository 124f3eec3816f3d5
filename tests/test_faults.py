"""Faults, one class at a time, through the real CLI: exit code, the one line, what is left.

Each test names the class of defect it guards (docs/faults.rst, the "Faults"
table). Hostile values for every option are fed by tests/test_hostile_input.py.
"""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
import zipfile

import pytest
from harness import hgsource

from hgautomation import errors


def last_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, "no message at all"
    return lines[-1]


def one_line_error(result: subprocess.CompletedProcess, code: int) -> str:
    """The run failed with ``code``, no traceback, and this is its closing line."""
    assert result.returncode == code, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return last_line(result)


@pytest.fixture
def unshared(tmp_path):
    """Run a CLI command in a private mount namespace with DIR mounted as asked."""
    def run(cli, mount: str, *args: str, fill: int = 0) -> subprocess.CompletedProcess:
        target = tmp_path / "mnt"
        target.mkdir(exist_ok=True)
        fill_cmd = (f'dd if=/dev/zero of="$1/filler" bs=1k count={fill} 2>/dev/null; '
                    if fill else "")
        script = (f'mount -t tmpfs -o {mount} tmpfs "$1" && mkdir -p "$1/state" 2>/dev/null; '
                  f'{fill_cmd}shift; exec "$@"')
        command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                   str(target), *cli.command(*args, state=target / "state")]
        from harness.cli import cli_env

        return subprocess.run(command, env=cli_env(), capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL, cwd=tmp_path,
                              check=False)
    return run


# -- 1. local filesystem faults: exit 3, naming the path, before anything starts ---------

def test_a_read_only_state_directory_is_exit_3(cli, unshared):
    start = time.monotonic()
    result = unshared(cli, "ro,size=64k", "check-host", "--host", "127.0.0.1:9")
    line = one_line_error(result, 3)
    assert "/mnt/state" in line and "Read-only file system" in line
    assert time.monotonic() - start < 30


def test_a_full_state_filesystem_is_exit_3(cli, unshared):
    result = unshared(cli, "size=64k", "check-host", "--host", "127.0.0.1:9", fill=200)
    line = one_line_error(result, 3)
    assert "No space left on device" in line, line


def test_a_state_path_below_a_file_is_exit_3(cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = cli.run("check-host", "--host", "127.0.0.1:9", state=blocker / "state",
                     cwd=tmp_path)
    line = one_line_error(result, 3)
    assert str(blocker / "state") in line


def test_known_hosts_that_is_a_directory_is_exit_3_at_once(cli, tmp_path):
    state = tmp_path / "state"
    (state / "known_hosts").mkdir(parents=True)
    start = time.monotonic()
    result = cli.run("check-host", "--host", "127.0.0.1:9", "--accept-new-host-key",
                     state=state, cwd=tmp_path)
    line = one_line_error(result, 3)
    assert f"{state / 'known_hosts'} is not a file" in line
    assert time.monotonic() - start < 15  # not retried as a connection failure


def test_a_results_dir_that_cannot_be_made_is_exit_3_before_any_host(cli, hg_source,
                                                                      tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = cli.run("run-tests-linux", "--host", "127.0.0.1:9", "--results-dir",
                     str(blocker / "results"), "--hg", hgsource.hg_executable(),
                     state=tmp_path / "state", cwd=hg_source)
    line = one_line_error(result, 3)
    assert f"cannot create the results directory {blocker / 'results'}" in line
    assert "connect" not in result.stderr  # found before any host was tried


# -- 2. malformed known_hosts lines are skipped, as OpenSSH does -------------------------

def test_malformed_known_hosts_lines_are_skipped_with_a_warning(cli, ssh_host, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    pinned = ssh_host.known_hosts_path.read_text().strip()
    (state / "known_hosts").write_text(
        "garbage\n"
        "[127.0.0.1]:1 ssh-ed25519 AAAA!!!not-base64\n"
        "# a comment\n"
        f"{pinned}\n")
    config = tmp_path / "ssh_config"
    config.write_text(f"Host *\n  IdentityFile {ssh_host.key_path}\n")
    result = cli.run("--ssh-config", str(config), "check-host", "--host",
                     f"{ssh_host.user}@{ssh_host.host}:{ssh_host.port}", state=state,
                     cwd=tmp_path)
    # The host is reached: its key is still found among the bad lines.
    assert result.returncode in (0, errors.HostContractError.exit_code), result.stderr[-3000:]
    assert "done in" in result.stderr
    assert f"warning: {state / 'known_hosts'}, line 1: skipped" in result.stderr
    assert f"warning: {state / 'known_hosts'}, line 2: skipped" in result.stderr
    assert "line 3" not in result.stderr and "line 4" not in result.stderr


# -- 3. endpoint and network faults: bounded, announced, their own exit codes -------------

class _Html(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = b"<html><body>Welcome to the captive portal</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST

    def log_message(self, *args):
        pass


@pytest.fixture
def html_endpoint():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Html)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent_endpoint():
    """Accepts connections and never answers."""
    sock = socket.create_server(("127.0.0.1", 0))
    held = []
    stop = threading.Event()

    def accept():
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    sock.close()


AWS_FAKE = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-west-2"}


def test_an_endpoint_answering_html_is_exit_7(cli, html_endpoint, tmp_path):
    result = cli.run("list-ec2-resources", state=tmp_path / "s", cwd=tmp_path,
                     env={**AWS_FAKE, "AWS_ENDPOINT_URL": html_endpoint,
                          "AWS_MAX_ATTEMPTS": "1"})
    line = one_line_error(result, 7)
    assert "not an AWS response" in line and "AWS_ENDPOINT_URL" in line


@pytest.mark.parametrize("url", ["not a url", "ftp://example.org", "http://", "http://x:99999"])
def test_an_endpoint_url_that_is_not_a_url_is_exit_7(cli, tmp_path, url):
    result = cli.run("list-ec2-resources", state=tmp_path / "s", cwd=tmp_path,
                     env={**AWS_FAKE, "AWS_ENDPOINT_URL": url})
    line = one_line_error(result, 7)
    assert "is not an http(s) URL" in line


def test_a_silent_endpoint_is_retried_visibly_and_bounded(cli, silent_endpoint, tmp_path):
    start = time.monotonic()
    result = cli.run("list-ec2-resources", state=tmp_path / "s", cwd=tmp_path, timeout=120,
                     env={**AWS_FAKE, "AWS_ENDPOINT_URL": silent_endpoint,
                          "AWS_MAX_ATTEMPTS": "3", "HGAUTOMATION_AWS_TIMEOUT": "1"})
    line = one_line_error(result, 7)
    assert "cannot reach AWS" in line
    assert "retrying (2/3)" in result.stderr and "retrying (3/3)" in result.stderr
    assert time.monotonic() - start < 60


def test_a_host_name_that_does_not_resolve_fails_at_once(cli, tmp_path):
    start = time.monotonic()
    result = cli.run("check-host", "--host", "no-such-host.invalid", state=tmp_path / "s",
                     cwd=tmp_path)
    line = one_line_error(result, 8)
    assert "unknown host" in line
    assert time.monotonic() - start < 8  # no 10 s of retries for a name that cannot resolve


def test_a_missing_identity_file_is_exit_3(cli, tmp_path):
    config = tmp_path / "ssh_config"
    config.write_text("Host box\n  HostName 127.0.0.1\n  Port 9\n"
                      f"  IdentityFile {tmp_path / 'no-such-key'}\n")
    result = cli.run("--ssh-config", str(config), "check-host", "--host", "box",
                     state=tmp_path / "s", cwd=tmp_path)
    line = one_line_error(result, 3)
    assert f"identity file missing: {tmp_path / 'no-such-key'}" in line


def test_a_proxy_command_that_cannot_run_is_named(cli, tmp_path):
    config = tmp_path / "ssh_config"
    key = tmp_path / "key"
    key.write_text("not used")
    config.write_text(f"Host box\n  ProxyCommand /no/such/program %h %p\n"
                      f"  IdentityFile {key}\n")
    result = cli.run("--ssh-config", str(config), "check-host", "--host", "box",
                     state=tmp_path / "s", cwd=tmp_path)
    line = one_line_error(result, 3)
    assert "ProxyCommand cannot run" in line and "/no/such/program" in line


# -- 4. odd but possible input -------------------------------------------------------

@pytest.mark.parametrize("host", ["box..example.org", "a" * 64 + ".example.org",
                                  "x" * 300, "box:\u00b2"])
def test_host_names_that_cannot_exist_are_usage_errors(cli, tmp_path, host):
    result = cli.run("check-host", "--host", host, state=tmp_path / "s", cwd=tmp_path)
    one_line_error(result, 2)


def test_a_very_long_repository_path_is_exit_4(cli, tmp_path):
    result = cli.run("--hg-repo", "/x" * 2500, "try", state=tmp_path / "s", cwd=tmp_path)
    line = one_line_error(result, 4)
    assert "File name too long" in line and len(line) < 400


# -- 5. closed or broken standard streams ------------------------------------------------

def test_help_into_a_pipe_closed_early_is_quiet(tmp_path):
    from harness.cli import cli_env

    result = subprocess.run(
        f"'{sys.executable}' -m hgautomation --help | head -c1; "
        f"'{sys.executable}' -m hgautomation run-tests-linux --help | head -c1",
        shell=True, capture_output=True, text=True, env=cli_env(), cwd=tmp_path, timeout=60,
        check=False)
    assert result.stderr == ""  # no "Exception ignored ... BrokenPipeError"
    assert result.stdout == "uu"


def test_closed_stdout_and_stdin_are_not_a_crash(cli, aws_fresh, tmp_path):
    from harness.cli import cli_env

    command = cli.command("list-ec2-resources", state=tmp_path / "s")
    for redirect in (">&-", "<&-", ">&- <&-"):
        shell = " ".join(f"'{word}'" for word in command) + f" {redirect}"
        result = subprocess.run(shell, shell=True, capture_output=True, text=True,
                                env=cli_env(aws=aws_fresh), cwd=tmp_path, timeout=120,
                                check=False)
        assert result.returncode == 0, (redirect, result.stderr[-3000:])
        assert "Traceback" not in result.stderr


# -- 6. validation holes ---------------------------------------------------------------

def test_an_empty_or_corrupt_wheel_is_exit_13_naming_it(cli, tmp_path):
    from unit.helpers import install_script, pip_builds

    from hgautomation.publish.artifacts import expected_names
    from hgautomation.windows import declared

    repo = tmp_path / "repo"
    hgsource.hg("init", str(repo))
    (repo / "contrib").mkdir()
    (repo / declared.INSTALL_SCRIPT).write_text(install_script(cibuildwheel=None))
    hgsource.hg("commit", "-A", "-q", "-m", "declaration", "-u", "test", cwd=repo)
    hgsource.hg("tag", "-u", "test", "7.2.1", cwd=repo)
    dist = repo / "dist"
    dist.mkdir()
    for spec, name in expected_names(pip_builds(), "7.2.1"):
        path = dist / name
        if spec.kind == "wheel":
            path.write_bytes(b"")  # every wheel empty: not even a zip
        else:
            path.write_bytes(b"installer")
    result = cli.run("publish-windows-artifacts", "7.2.1", "--dry-run", "--hg-repo", str(repo),
                     state=tmp_path / "s", cwd=tmp_path)
    line = one_line_error(result, 13)
    assert "mercurial-7.2.1-cp312-cp312-win_amd64.whl is empty" in line, line
    assert zipfile.is_zipfile(dist / "Mercurial-7.2.1-x64.exe") is False  # untouched


# -- 7. wrong diagnoses and hints ---------------------------------------------------------

def test_try_in_an_empty_repository_says_so(cli, tmp_path):
    repo = tmp_path / "empty"
    hgsource.hg("init", str(repo))
    result = cli.run("try", state=tmp_path / "s", cwd=repo, aws=False)
    line = one_line_error(result, 4)
    assert "null revision" in line and "no changeset" in line


def test_a_revset_parse_error_keeps_its_reason(cli, tmp_path):
    repo = tmp_path / "empty"
    hgsource.hg("init", str(repo))
    result = cli.run("try", "-r", "foo(", state=tmp_path / "s", cwd=repo, aws=False)
    line = one_line_error(result, 4)
    assert "parse error at" in line and "^ here" not in line


def test_an_abbreviated_option_is_not_guessed(cli, tmp_path):
    result = cli.run("try", "--hg", "/usr/bin/hg", state=tmp_path / "s", cwd=tmp_path)
    line = one_line_error(result, 2)
    assert "unrecognized arguments: --hg" in line


def test_run_tests_options_with_values_must_follow_the_double_dash(cli, tmp_path):
    result = cli.run("run-tests-linux", "-j", "8", "test-a.t", state=tmp_path / "s",
                     cwd=tmp_path)
    line = one_line_error(result, 2)
    assert "-j 8: options of run-tests.py go after --" in line


# -- 8. nothing changed before the local checks -------------------------------------------

def test_a_windows_command_with_a_bad_cidr_makes_no_aws_call(cli, aws_fresh, tmp_path):
    result = cli.run("-v", "bootstrap-windows-dev", "--ingress-cidr", "abc",
                     state=tmp_path / "s", cwd=tmp_path, aws=aws_fresh)
    line = one_line_error(result, 2)
    assert "--ingress-cidr: invalid address range 'abc'" in line
    ec2 = aws_fresh.client("ec2")
    assert ec2.describe_key_pairs()["KeyPairs"] == []
    assert [g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]] == [
        "default"]


# -- 9. open to the world only on purpose ------------------------------------------------

@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "::/0"])
def test_an_ingress_open_to_everyone_is_refused_without_its_flag(cli, aws_fresh, tmp_path,
                                                                 cidr):
    result = cli.run("setup-ec2-account", "--ingress-cidr", cidr, state=tmp_path / "s",
                     cwd=tmp_path, aws=aws_fresh)
    line = one_line_error(result, 2)
    assert "--allow-any-address" in line
    assert aws_fresh.client("ec2").describe_key_pairs()["KeyPairs"] == []


def test_a_widened_cidr_is_warned_about(cli, aws_fresh, tmp_path):
    result = cli.run("setup-ec2-account", "--ingress-cidr", "192.0.2.77/24",
                     state=tmp_path / "s", cwd=tmp_path, aws=aws_fresh)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "warning: --ingress-cidr 192.0.2.77/24 admits all of 192.0.2.0/24" in result.stderr
    groups = aws_fresh.client("ec2").describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["hg-linux-dev-1-*"]}])["SecurityGroups"]
    ranges = {r["CidrIp"] for g in groups for p in g["IpPermissions"] for r in p["IpRanges"]}
    assert ranges == {"192.0.2.0/24"}


# -- 10. nothing left running: see tests/linux/test_ssh_communicator.py (remote process
# groups) and tests/test_bootstrap.py (pip and venv creation, foreign venvs).

def test_exit_70_is_only_for_unexpected_exceptions():
    assert errors.INTERNAL_ERROR_EXIT == 70
    assert 70 not in errors.EXIT_CODES
    assert os.EX_SOFTWARE == 70
