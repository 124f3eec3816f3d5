"""Hostile hosts, networks and key files, through the real CLI (docs/faults.rst).

Four classes, each with the cases that once went wrong and a few more:

1. a check that never ran is no pass (a login shell that exits or goes silent);
2. every wait has a bound and every process an end, here and on the host (a slow
   login shell, FIFOs where files belong, a config's ``Match exec`` that hangs);
3. library logging (paramiko's transport thread) stays in the run's log: a strange
   server or ProxyCommand is one line, naming the host as it was typed;
4. a bad key file is a local fault, exit 3 at once, naming the file.

Every test asserts the exit code, exactly one error line on stderr (besides the
``==>`` step lines), no traceback, a time bound, and that nothing it started still
runs: locally (the test's own unique ``sleep`` arguments) and on the host (the
processes of the sshd's login user).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from harness import sshd
from harness.net import wait_for

from hgautomation import errors

USER = "hgfault"  # a login user of its own: its ~/.bashrc is what these tests break
REACHED = (0, errors.HostContractError.exit_code)


# -- helpers ---------------------------------------------------------------------------

def error_line(result: subprocess.CompletedProcess, code: int) -> str:
    """The run ended with ``code``, no traceback, and exactly one line that is not a
    step or wait line: that line (without the log's name)."""
    assert result.returncode == code, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines()
             if line.strip() and not line.startswith(("==> ", "    "))]
    assert len(lines) == 1, result.stderr[-3000:]
    return lines[0].split(" [log: ")[0]


def local_left(marker: str) -> list[str]:
    """Processes here whose command line holds ``marker`` (zombies aside)."""
    out = subprocess.run(["ps", "-eo", "stat=,args="], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    return [line for line in out.splitlines()
            if marker in line and not line.lstrip().startswith("Z") and "ps -eo" not in line]


def remote_left(user: str = USER) -> list[str]:
    """Processes of the host's login user (sshd's session processes and zombies aside)."""
    out = subprocess.run(["ps", "-u", user, "-o", "stat=,args="], capture_output=True,
                         text=True, check=False, timeout=30).stdout
    return [line for line in out.splitlines()
            if line.strip() and not line.lstrip().startswith("Z") and "sshd:" not in line]


def none_left(probe, timeout: float = 10.0) -> None:
    """``probe()`` comes back empty within ``timeout`` seconds (a kill takes a moment)."""
    try:
        wait_for(lambda: not probe(), timeout, "the processes to end", interval=0.2)
    except TimeoutError:
        raise AssertionError(f"still running: {probe()}") from None


# -- the host: an sshd for USER, whose ~/.bashrc each test sets --------------------------

class Host:
    def __init__(self, ssh: sshd.SSHHost, home: Path, ecdsa_pem: Path):
        self.ssh = ssh
        self.home = home
        self.ecdsa_pem = ecdsa_pem  # an ECDSA key in PEM format the sshd accepts

    @property
    def spec(self) -> str:
        return f"{self.ssh.user}@{self.ssh.host}:{self.ssh.port}"

    def bashrc(self, text: str) -> None:
        path = self.home / ".bashrc"
        path.write_text(text)
        path.chmod(0o644)

    def state(self, tmp_path: Path) -> Path:
        """A state directory whose known_hosts pins the sshd's key."""
        state = tmp_path / "state"
        state.mkdir(exist_ok=True)
        shutil.copy(self.ssh.known_hosts_path, state / "known_hosts")
        return state


@pytest.fixture(scope="module")
def host_server():
    if os.geteuid() != 0:
        pytest.skip("needs root (creates a user and runs sshd): use tests/run")
    home = sshd.ensure_user(USER)
    workdir = sshd.make_workdir(prefix="sshd-faults-")
    ecdsa_pem = workdir / "ecdsa_pem"
    subprocess.run(["ssh-keygen", "-q", "-t", "ecdsa", "-m", "PEM", "-N", "", "-f",
                    str(ecdsa_pem)], check=True, timeout=30, stdin=subprocess.DEVNULL)
    try:
        with sshd.running_sshd(workdir, USER,
                               authorized=[sshd.public_key(ecdsa_pem)]) as ssh:
            yield Host(ssh, home, ecdsa_pem)
    finally:
        (home / ".bashrc").unlink(missing_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def host(host_server):
    host_server.bashrc("")
    yield host_server
    host_server.bashrc("")


def check_host(cli, host: Host, tmp_path: Path, *extra: str, timeout: float = 120):
    return cli.run("-i", str(host.ssh.key_path), "check-host", "--no-features", "--host",
                   host.spec, *extra, state=host.state(tmp_path), cwd=tmp_path,
                   timeout=timeout)


# -- 1. a check that never ran is no pass --------------------------------------------------

def test_a_bashrc_that_exits_is_not_a_pass(cli, host, tmp_path):
    """Once: exit 0, "1 host meets the contract", with nothing checked."""
    host.bashrc("exit 0\n")
    start = time.monotonic()
    result = check_host(cli, host, tmp_path)
    line = error_line(result, errors.HostContractError.exit_code)
    assert "the login shell ended (exit 0, no output) before running" in line, line
    assert "meets the contract" not in result.stdout
    assert time.monotonic() - start < 20
    none_left(remote_left)


def test_a_bashrc_that_closes_its_output_is_not_a_pass(cli, host, tmp_path):
    host.bashrc("exec >&- 2>&-\n")
    start = time.monotonic()
    result = check_host(cli, host, tmp_path)
    line = error_line(result, errors.HostContractError.exit_code)
    assert "the login shell closed its output" in line, line
    assert "meets the contract" not in result.stdout
    assert time.monotonic() - start < 20
    none_left(remote_left)  # the shell that went on waiting for stdin is gone too


def test_a_bashrc_that_talks_then_exits_names_what_it_said(cli, host, tmp_path):
    host.bashrc("echo 'welcome to the box'\nexit 1\n")
    result = check_host(cli, host, tmp_path)
    line = error_line(result, errors.HostContractError.exit_code)
    assert "ended (exit 1; its output: welcome to the box)" in line, line


def test_a_bash_env_that_ends_the_check_script_is_not_a_pass(cli, host, tmp_path):
    """The login shell runs our command, but ``bash -s`` exits before reading the
    script: only the script's own last line tells (the verdict line)."""
    (host.home / ".benv").write_text("exit 0\n")
    host.bashrc(f"export BASH_ENV={host.home / '.benv'}\n")
    result = check_host(cli, host, tmp_path)
    line = error_line(result, errors.HostContractError.exit_code)
    assert "the contract check did not run to its end (no output)" in line, line
    assert "meets the contract" not in result.stdout


def test_a_quiet_healthy_bashrc_still_checks(cli, host, tmp_path):
    """The other side: a startup file that prints nothing and returns changes nothing."""
    host.bashrc("export SOMETHING=1\n")
    result = check_host(cli, host, tmp_path)
    assert result.returncode in REACHED, result.stderr[-3000:]
    assert "/hgdev" in result.stdout  # the table of what was checked


# -- 2. bounded waits, nothing left running ----------------------------------------------------

def test_a_slow_bashrc_is_given_up_within_the_bound_and_stopped(cli, host, tmp_path):
    """Once: over 200 s of waiting, and the remote shell still ran afterwards."""
    host.bashrc("sleep 3071\n")
    start = time.monotonic()
    result = check_host(cli, host, tmp_path)
    took = time.monotonic() - start
    line = error_line(result, errors.WaitTimeout.exit_code)
    assert "the login shell did not start bash -s -- within 30s" in line, line
    assert "waiting for the login shell of" in result.stderr  # said while it waited
    assert took < 50, took
    none_left(remote_left)


def test_sigterm_while_the_login_shell_starts_stops_it_on_the_host(cli, host, tmp_path):
    host.bashrc("sleep 3072\n")
    with cli.popen("-i", str(host.ssh.key_path), "check-host", "--no-features", "--host",
                   host.spec, state=host.state(tmp_path), cwd=tmp_path) as proc:
        wait_for(lambda: any("sleep 3072" in p for p in remote_left()), 30,
                 "the login shell to start")
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    none_left(remote_left)


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


def _config(tmp_path: Path, host: Host, *lines: str) -> Path:
    config = tmp_path / "ssh_config"
    config.write_text("Host box\n  HostName 127.0.0.1\n"
                      f"  Port {host.ssh.port}\n  User {USER}\n"
                      + "".join(f"  {line}\n" for line in lines))
    return config


def test_a_user_known_hosts_file_that_is_a_fifo_is_exit_3_at_once(cli, host, tmp_path, fifo):
    """Once: a hang with no output (the FIFO was opened to be read)."""
    config = _config(tmp_path, host, f"IdentityFile {host.ssh.key_path}",
                     f"UserKnownHostsFile {fifo}")
    start = time.monotonic()
    result = cli.run("--ssh-config", str(config), "check-host", "--no-features", "--host",
                     "box", state=host.state(tmp_path), cwd=tmp_path, timeout=60)
    line = error_line(result, 3)
    assert f"{fifo} is not a regular file (UserKnownHostsFile)" in line, line
    assert time.monotonic() - start < 10


def test_an_identity_file_that_is_a_fifo_is_exit_3_at_once(cli, host, tmp_path, fifo):
    config = _config(tmp_path, host, f"IdentityFile {fifo}")
    start = time.monotonic()
    result = cli.run("--ssh-config", str(config), "check-host", "--no-features", "--host",
                     "box", state=host.state(tmp_path), cwd=tmp_path, timeout=60)
    line = error_line(result, 3)
    assert f"identity file {fifo}: not a regular file" in line, line
    assert time.monotonic() - start < 10


def test_an_ssh_config_that_is_a_fifo_is_exit_3_at_once(cli, tmp_path, fifo):
    start = time.monotonic()
    result = cli.run("--ssh-config", str(fifo), "check-host", "--host", "box",
                     state=tmp_path / "s", cwd=tmp_path, timeout=60)
    line = error_line(result, 3)
    assert f"ssh config {fifo} is not a regular file" in line, line
    assert time.monotonic() - start < 10


def test_a_match_exec_that_hangs_is_bounded_and_killed(cli, tmp_path):
    """Once: the config's command outlived the tool (under init)."""
    config = tmp_path / "ssh_config"
    config.write_text('Match exec "sleep 3073"\n  User x\nHost box\n  HostName 127.0.0.1\n')
    start = time.monotonic()
    result = cli.run("--ssh-config", str(config), "check-host", "--host", "box",
                     state=tmp_path / "s", cwd=tmp_path, timeout=120)
    took = time.monotonic() - start
    line = error_line(result, 3)
    assert "did not finish within 30s" in line and "Match exec" in line, line
    assert "waiting for ssh -G box" in result.stderr  # said while it waited
    assert took < 45, took
    none_left(lambda: local_left("sleep 3073"))


def test_sigterm_during_a_match_exec_kills_it(cli, tmp_path):
    config = tmp_path / "ssh_config"
    config.write_text('Match exec "sleep 3074"\n  User x\nHost box\n  HostName 127.0.0.1\n')
    with cli.popen("--ssh-config", str(config), "check-host", "--host", "box",
                   state=tmp_path / "s", cwd=tmp_path) as proc:
        wait_for(lambda: local_left("sleep 3074"), 30, "the Match exec command")
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    none_left(lambda: local_left("sleep 3074"))


def test_a_match_exec_that_leaves_a_child_behind_leaves_nothing(cli, host, tmp_path):
    """ssh -G succeeds, but its Match exec started something in the background."""
    config = tmp_path / "ssh_config"
    config.write_text('Match exec "sleep 3075 >/dev/null 2>&1 &"\n  ServerAliveInterval 5\n'
                      + _config(tmp_path, host, f"IdentityFile {host.ssh.key_path}")
                      .read_text())
    result = cli.run("--ssh-config", str(config), "check-host", "--no-features", "--host",
                     "box", state=host.state(tmp_path), cwd=tmp_path, timeout=120)
    assert result.returncode in REACHED, result.stderr[-3000:]
    none_left(lambda: local_left("sleep 3075"))


# -- 3. library logging stays in the log; errors name the host as typed --------------------

class BannerServer:
    """A TCP server on 127.0.0.1 that sends ``payload`` to each client (None: nothing),
    then closes after ``hold`` seconds."""

    def __init__(self, payload: bytes | None, hold: float = 0.2):
        self.payload, self.hold = payload, hold
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                if self.payload:
                    conn.sendall(self.payload)
                time.sleep(self.hold)
            except OSError:
                pass

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def banner():
    servers: list[BannerServer] = []

    def make(payload: bytes | None, hold: float = 0.2) -> BannerServer:
        servers.append(BannerServer(payload, hold))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def _check_banner_host(cli, tmp_path, port: int, timeout: float = 120):
    key = tmp_path / "key"
    if not key.exists():
        sshd.generate_key(key)
    return cli.run("-i", str(key), "check-host", "--no-features", "--accept-new-host-key",
                   "--host", f"hg@127.0.0.1:{port}", state=tmp_path / "state",
                   cwd=tmp_path, timeout=timeout)


def _logged(tmp_path: Path, text: str) -> bool:
    return any(text in p.read_text(errors="replace")
               for p in (tmp_path / "state" / "logs").glob("*.log"))


@pytest.mark.parametrize("name, payload, expected, bound", [
    ("non-UTF-8", b"SSH-2.0-\xff\xfe\xc3(box\r\n", "SSH banner is not text", 10),
    ("SSH-1.5", b"SSH-1.5-OldServer\r\n", "not a usable SSH server (Incompatible version "
     "(1.5 instead of 2.0))", 10),
    ("binary junk", bytes(range(256)) * 4, "SSH banner is not text", 10),
])
def test_a_server_that_is_not_ssh_2_is_one_line_at_once(cli, tmp_path, banner, name,
                                                         payload, expected, bound):
    """Once: 45-136 lines and up to 12 paramiko tracebacks, after 10 s of retries."""
    server = banner(payload)
    start = time.monotonic()
    result = _check_banner_host(cli, tmp_path, server.port)
    line = error_line(result, errors.HostConnectionError.exit_code)
    assert f"cannot connect to hg@127.0.0.1:{server.port}: " in line and expected in line, \
        line
    assert len(result.stderr.splitlines()) <= 3, result.stderr
    assert time.monotonic() - start < bound
    assert server.connections == 1  # not retried: it will not change its mind
    assert _logged(tmp_path, "[paramiko.transport]")  # the library's detail: in the log


def test_a_server_that_closes_at_once_is_retried_quietly(cli, tmp_path, banner):
    server = banner(None, hold=0)
    start = time.monotonic()
    result = _check_banner_host(cli, tmp_path, server.port)
    line = error_line(result, errors.HostConnectionError.exit_code)
    assert "the connection closed before the server's SSH banner (gave up after" in line, \
        line
    assert len(result.stderr.splitlines()) <= 3, result.stderr
    assert time.monotonic() - start < 25
    assert _logged(tmp_path, "[paramiko.transport]")


def _proxy_config(tmp_path: Path, command: str, timeout: int = 3) -> Path:
    key = tmp_path / "key"
    sshd.generate_key(key)
    config = tmp_path / "ssh_config"
    config.write_text(f"Host box\n  HostName 10.255.0.1\n  ConnectTimeout {timeout}\n"
                      f"  IdentityFile {key}\n  ProxyCommand {command}\n")
    return config


@pytest.mark.parametrize("name, command, expected, marker", [
    ("hangs", "sleep 3081", " within the ConnectTimeout", "sleep 3081"),
    ("garbage", "sh -c 'echo not-ssh-at-all; sleep 3082'",
     " within the ConnectTimeout", "sleep 3082"),
    ("binary", "sh -c 'head -c 4000 /dev/urandom; sleep 3083'",
     "SSH banner is not text", "sleep 3083"),
    ("fails", "sh -c 'echo bastion unreachable >&2; sleep 3084 & exit 1'",
     "its ProxyCommand ended (exit 1: bastion unreachable)", "sleep 3084"),
])
def test_a_proxy_command_that_misbehaves_is_one_line_naming_the_alias(cli, tmp_path, name,
                                                                      command, expected,
                                                                      marker):
    """Once: tracebacks on stderr, "hg@10.255.0.1:22" (the proxy's target) in the error,
    and the proxy's children left under init."""
    config = _proxy_config(tmp_path, command)
    start = time.monotonic()
    result = cli.run("--ssh-config", str(config), "check-host", "--no-features",
                     "--accept-new-host-key", "--host", "box", state=tmp_path / "state",
                     cwd=tmp_path, timeout=120)
    line = error_line(result, errors.HostConnectionError.exit_code)
    assert line.startswith("connection error: cannot connect to hg@box (through its "
                           "ProxyCommand): "), line
    assert expected in line, line
    assert "10.255.0.1" not in line
    assert len(result.stderr.splitlines()) <= 3, result.stderr
    assert time.monotonic() - start < 25
    none_left(lambda: local_left(marker))


# -- 4. key files: a local check, exit 3 at once, naming the file ------------------------------

def _bad_keys(tmp_path: Path, good: Path) -> dict[str, tuple[Path, str]]:
    data = good.read_bytes()
    keys = {
        "public key": (Path(f"{good}.pub"), "a public key, not a private key"),
        "empty": (tmp_path / "empty", "empty"),
        "truncated": (tmp_path / "truncated", "truncated (no '-----END OPENSSH PRIVATE KEY"),
        "random bytes": (tmp_path / "random", "not a private key"),
        "cut in the middle": (tmp_path / "middle", "cannot be parsed"),
    }
    keys["empty"][0].write_bytes(b"")
    keys["truncated"][0].write_bytes(data[:len(data) // 2])
    keys["random bytes"][0].write_bytes(os.urandom(1024))
    lines = data.splitlines(keepends=True)
    keys["cut in the middle"][0].write_bytes(b"".join(lines[:2] + lines[-1:]))
    for path, _ in keys.values():
        path.chmod(0o600)
    return keys


@pytest.mark.parametrize("kind", ["public key", "empty", "truncated", "random bytes",
                                  "cut in the middle"])
def test_a_bad_key_file_is_exit_3_at_once_naming_it(cli, host, tmp_path, kind):
    """Once: retried for 10 s, then exit 8 "gave up after 6 attempts" (or "an invalid
    host name" for random bytes)."""
    path, expected = _bad_keys(tmp_path, host.ssh.key_path)[kind]
    start = time.monotonic()
    result = cli.run("-i", str(path), "check-host", "--no-features", "--host", host.spec,
                     state=host.state(tmp_path), cwd=tmp_path, timeout=60)
    line = error_line(result, errors.ConfigurationError.exit_code)
    assert f"identity file {path}: {expected}" in line, line
    assert time.monotonic() - start < 8


def test_an_ecdsa_key_in_pem_format_works(cli, host, tmp_path):
    result = cli.run("-i", str(host.ecdsa_pem), "check-host", "--no-features", "--host",
                     host.spec, state=host.state(tmp_path), cwd=tmp_path, timeout=60)
    assert result.returncode in REACHED, result.stderr[-3000:]
    assert "OPENSSH" not in result.stderr


def test_a_key_the_host_refuses_is_an_authentication_failure_at_once(cli, host, tmp_path):
    """A valid ECDSA key the host does not accept: once "expected OPENSSH key" or
    "Invalid key", retried 6 times."""
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", str(other)],
                   check=True, timeout=30, stdin=subprocess.DEVNULL)
    start = time.monotonic()
    result = cli.run("-i", str(other), "check-host", "--no-features", "--host", host.spec,
                     state=host.state(tmp_path), cwd=tmp_path, timeout=60)
    line = error_line(result, errors.HostConnectionError.exit_code)
    assert line.startswith(f"connection error: authentication failed for {host.spec} "
                           f"(offered: {other})"), line
    assert "gave up" not in line and "OPENSSH" not in line
    assert time.monotonic() - start < 8


@pytest.mark.parametrize("fmt, passphrase, expected", [
    ("PKCS8", "", "PKCS#8 format is not supported"),
    ("PEM", "a passphrase", "protected by a passphrase"),
    ("RFC4716", "a passphrase", "protected by a passphrase"),
])
def test_keys_paramiko_cannot_use_are_named_as_such(cli, host, tmp_path, fmt, passphrase,
                                                    expected):
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ecdsa", "-m", fmt, "-N", passphrase, "-f",
                    str(key)], check=True, timeout=30, stdin=subprocess.DEVNULL)
    result = cli.run("-i", str(key), "check-host", "--no-features", "--host", host.spec,
                     state=host.state(tmp_path), cwd=tmp_path, timeout=60)
    line = error_line(result, errors.ConfigurationError.exit_code)
    assert f"identity file {key}: {expected}" in line, line


def test_one_bad_key_among_good_ones_is_left_out_with_a_warning(cli, host, tmp_path):
    """As ssh does: the config's other IdentityFile still serves."""
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    config = _config(tmp_path, host, f"IdentityFile {empty}",
                     f"IdentityFile {host.ssh.key_path}")
    result = cli.run("--ssh-config", str(config), "check-host", "--no-features", "--host",
                     "box", state=host.state(tmp_path), cwd=tmp_path, timeout=60)
    assert result.returncode in REACHED, result.stderr[-3000:]
    assert f"warning: identity file {empty}: empty; not offered" in result.stderr
