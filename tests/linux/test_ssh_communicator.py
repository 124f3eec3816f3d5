"""hgautomation.ssh against a real loopback sshd: run, put/get, ssh config, proxies, errors."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import sshd
from harness.net import free_port
from harness.process import reaped

from hgautomation import console, errors, ssh

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def target(ssh_host) -> ssh.Target:
    return ssh.resolve(ssh_host.host, port=ssh_host.port, user=ssh_host.user,
                       identity_files=[ssh_host.key_path])


@pytest.fixture
def lines(monkeypatch) -> list[str]:
    """What the communicator streamed to the console, line by line."""
    seen: list[str] = []
    monkeypatch.setattr(console.Console, "remote_line",
                        lambda self, prefix, line, shown=0: seen.append(prefix + line))
    return seen


def test_unfinished_line_is_shown_before_it_ends(ssh_host, target, capsys):
    """Progress dots appear while the command runs, then the line ends in place."""
    shown_at: list[tuple[float, str]] = []
    original = console.Console.remote_partial

    def spy(self, prefix, text):
        shown_at.append((time.monotonic(), text))
        original(self, prefix, text)

    start = time.monotonic()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(console.Console, "remote_partial", spy)
        with ssh.connect(target, known_hosts=ssh_host.known_hosts_path) as conn:
            conn.run(["sh", "-c", "printf 'dots..'; sleep 1.5; printf '.'; sleep 1.5; "
                      "echo ' done'; echo next"], prefix="[h] ")
    end = time.monotonic()
    assert [t for _, t in shown_at] == ["dots..", "."]
    assert shown_at[0][0] - start < end - start - 2.5  # shown well before the line ended
    err = capsys.readouterr().err
    assert "[h] dots... done\n[h] next\n" in err


def test_host_output_reaches_the_terminal_escaped(ssh_host, target, capsys):
    """Escape sequences, CRs and C1 controls from the host are shown escaped, tabs kept.

    Before: the terminal got them raw (a cleared screen, a retitled window, a line
    overwritten with a forged "all tests passed").
    """
    script = ("printf 'ok\\r\\033[2Jall tests passed\\n\\033]0;title\\007tab\\there\\n'; "
              "printf '\\033[1m..'; sleep 1; printf '\\302\\233done\\n'")
    with ssh.connect(target, known_hosts=ssh_host.known_hosts_path) as conn:
        conn.run(["sh", "-c", script], prefix="[h] ")
    err = capsys.readouterr().err
    assert ("[h] ok\\r\\x1b[2Jall tests passed\n[h] \\x1b]0;title\\x07tab\there\n"
            "[h] \\x1b[1m..\\x9bdone\n") in err
    assert "\x1b" not in err and "\r" not in err and "\x9b" not in err


def test_run_streams_lines_and_returns_status(ssh_host, target, lines):
    with ssh.connect(target, known_hosts=ssh_host.known_hosts_path) as conn:
        assert conn.run(["sh", "-c", "echo out; echo err >&2; printf 'no newline'"],
                        prefix="> ") == 0
        assert lines == ["> out", "> err", "> no newline"]
        assert conn.run(["sh", "-c", "exit 7"], check=False) == 7
        assert conn.output(["cat"], stdin=b"fed on stdin\n") == "fed on stdin"
        with pytest.raises(errors.RemoteCommandError) as info:
            conn.run(["sh", "-c", "for i in $(seq 1 30); do echo line $i; done; exit 3"],
                     quiet=True)
    exc = info.value
    assert exc.status == 3 and exc.exit_code == 10
    assert exc.output_tail.splitlines() == [f"line {i}" for i in range(11, 31)]
    assert exc.one_line().endswith("exit status 3 from sh -c 'for i in $(seq 1 30); do echo "
                                   "line $i; done; exit 3'; last output: line 30")


def test_put_get_roundtrip_atomic_and_chmod(ssh_host, target, tmp_path):
    payload = tmp_path / "payload.bin"
    payload.write_bytes(os.urandom(3 << 20))
    remote = f"/tmp/hgauto-ssh-test-{os.getpid()}.bin"
    with ssh.connect(target, known_hosts=ssh_host.known_hosts_path) as conn:
        try:
            conn.put(payload, remote, atomic=True, mode=0o640)
            assert not conn.exists(remote + ".part")
            assert conn.output(["stat", "-c", "%a", remote]) == "640"
            conn.rename(remote, remote + ".moved")
            back = tmp_path / "back.bin"
            conn.get(remote + ".moved", back)
            assert hashlib.sha256(back.read_bytes()).digest() == \
                hashlib.sha256(payload.read_bytes()).digest()
            with pytest.raises(errors.RemoteCommandError, match="does not exist"):
                conn.get("/nonexistent/file", tmp_path / "never")
            assert not (tmp_path / "never").exists()
            assert not list(tmp_path.glob(".*.part"))
        finally:
            conn.run(["rm", "-f", remote, f"{remote}.moved"], check=False, quiet=True)


def test_ssh_config_hostname_port_user_identity(ssh_host, tmp_path):
    config = tmp_path / "config"
    config.write_text(f"Host box\n  HostName {ssh_host.host}\n  Port {ssh_host.port}\n"
                      f"  User {ssh_host.user}\n  IdentityFile {ssh_host.key_path}\n")
    target = ssh.resolve("box", ssh_config=config)
    assert (target.hostname, target.port, target.user) == \
        (ssh_host.host, ssh_host.port, ssh_host.user)
    with ssh.connect(target, known_hosts=ssh_host.known_hosts_path) as conn:
        assert conn.output(["id", "-un"]) == ssh_host.user
    # Explicit user/port win over the config, as with ssh.
    assert ssh.resolve("box", user="other", port=2222, ssh_config=config).user == "other"


def test_proxy_command_and_proxy_jump(ssh_host, tmp_path):
    common = (f"  HostName {ssh_host.host}\n  Port {ssh_host.port}\n  User {ssh_host.user}\n"
              f"  IdentityFile {ssh_host.key_path}\n")
    # A ProxyCommand that is itself an OpenSSH client (ssh -W) through the same sshd.
    ssh_w = (f"ssh -F /dev/null -i {ssh_host.key_path} -p {ssh_host.port} -o BatchMode=yes "
             f"-o UserKnownHostsFile={ssh_host.known_hosts_path} -o StrictHostKeyChecking=yes "
             f"-W %h:%p {ssh_host.user}@{ssh_host.host}")
    config = tmp_path / "config"
    config.write_text(f"Host viacmd\n{common}  ProxyCommand {ssh_w}\n"
                      f"Host bastion\n{common}"
                      f"Host viajump\n{common}  ProxyJump bastion\n")
    for name in ("viacmd", "viajump"):
        target = ssh.resolve(name, ssh_config=config)
        with ssh.connect(target, known_hosts=ssh_host.known_hosts_path) as conn:
            seen = conn.output(["sh", "-c", "echo through $SSH_CONNECTION"])
            assert seen.startswith("through 127.0.0.1")
        # The OpenSSH config for hg push reaches the same host through the same proxy.
        ossh = tmp_path / f"{name}.ssh_config"
        ossh.write_text(ssh.openssh_config(target, ssh_host.known_hosts_path))
        result = subprocess.run(["ssh", "-F", str(ossh), ssh.ALIAS, "echo", "openssh ok"],
                                check=False, capture_output=True, text=True, timeout=60,
                                stdin=subprocess.DEVNULL)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "openssh ok"


def test_openssh_config_refuses_unpinned_key(ssh_host, target, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    ossh = tmp_path / "ssh_config"
    ossh.write_text(ssh.openssh_config(target, empty))
    result = subprocess.run(["ssh", "-F", str(ossh), ssh.ALIAS, "true"], check=False,
                            capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 255
    assert "Host key verification failed" in result.stderr
    assert empty.read_text() == ""  # never learnt


def test_accept_new_pins_in_tool_file_only(ssh_host, target, tmp_path):
    known = tmp_path / "known_hosts"
    home_known = Path("~/.ssh/known_hosts").expanduser()
    before = home_known.read_bytes() if home_known.exists() else None
    with pytest.raises(errors.HostKeyError, match="unknown host key"):
        ssh.connect(target, known_hosts=known)
    ssh.connect(target, known_hosts=known, accept_new_host_key=True).close()
    assert known.read_text().split() == [f"[{ssh_host.host}]:{ssh_host.port}",
                                         *ssh_host.host_public_key.split()]
    ssh.connect(target, known_hosts=known).close()  # pinned now
    after = home_known.read_bytes() if home_known.exists() else None
    assert after == before


def test_refused_is_retried_within_the_bound(tmp_path, monkeypatch):
    import io

    from hgautomation import console

    err = io.StringIO()
    monkeypatch.setattr(console, "WAIT_REPORT_EVERY", 0.5)
    monkeypatch.setattr(console, "_current", console.Console(err=err, out=io.StringIO()))
    target = ssh.resolve("127.0.0.1", port=free_port(), user="nobody")
    start = time.monotonic()
    with pytest.raises(errors.HostConnectionError, match="connection refused"):
        ssh.connect(target, known_hosts=tmp_path / "kh", wait=3)
    assert 2.5 < time.monotonic() - start < 12
    # The wait says what it waits for while it waits, not only when it gives up.
    assert f"still waiting: nobody@127.0.0.1:{target.port} to answer SSH (connection " \
        "refused" in err.getvalue()


# -- interrupted remote commands ---------------------------------------------------------

# A child that runs one long remote command (its words after "--") and turns SIGTERM
# into a KeyboardInterrupt as the CLI does; "stdin" feeds the command a script.
COMMAND_CHILD = """
import signal, sys
from pathlib import Path
from hgautomation import cli, ssh

def on_term(signum, frame):
    raise cli.SignalInterrupt(signum)

signal.signal(signal.SIGTERM, on_term)
host, port, user, key, known, feed = sys.argv[1:7]
argv = sys.argv[8:]
target = ssh.resolve(host, port=int(port), user=user, identity_files=[Path(key)])
conn = ssh.connect(target, known_hosts=Path(known))
try:
    conn.run(argv, stdin=feed.encode() if feed else None)
except KeyboardInterrupt:
    sys.exit(130)
finally:
    conn.close()
"""


def _remote_processes(marker: str) -> list[str]:
    """Live processes (the loopback host is this machine) whose command line has marker."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                if marker in cmdline and "COMMAND_CHILD" not in cmdline \
                        and "import signal" not in cmdline:
                    found.append(f"{entry.name}: {cmdline}")
    return found


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
@pytest.mark.parametrize("feed", ["", "sleep 3600 & sleep 3599; wait\n"],
                         ids=["no-stdin", "script-on-stdin"])
def test_an_interrupt_stops_the_whole_remote_command(ssh_host, signum, feed):
    # The remote command starts children of its own (a background sleep): all of them
    # must go when the tool is interrupted, whether or not the command reads stdin.
    marker = f"{3000 + os.getpid() % 500}"
    argv = (["bash", "-s"] if feed else
            ["sh", "-c", f"sleep 3{marker} & sleep 4{marker}; wait"])
    if feed:
        feed = feed.replace("3600", f"3{marker}").replace("3599", f"4{marker}")
    proc = subprocess.Popen(
        [sys.executable, "-c", COMMAND_CHILD, ssh_host.host, str(ssh_host.port),
         ssh_host.user, str(ssh_host.key_path), str(ssh_host.known_hosts_path), feed, "--",
         *argv], cwd=str(REPO_ROOT), env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with reaped(proc):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(_remote_processes(f"sleep 3{marker}")) < 1:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        assert _remote_processes(f"sleep 4{marker}"), "the remote command never started"
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _remote_processes(f"{marker}"):
        time.sleep(0.1)
    assert _remote_processes(f"sleep 3{marker}") + _remote_processes(f"sleep 4{marker}") == []


def test_a_dropped_connection_stops_a_command_without_stdin(ssh_host, target):
    # The tool killed outright (no cleanup of ours runs): the host-side watcher notices
    # the channel close and stops the group.
    marker = f"{5000 + os.getpid() % 500}"
    conn = ssh.connect(target, known_hosts=ssh_host.known_hosts_path)

    def run() -> None:
        with contextlib.suppress(errors.HostConnectionError):  # the connection drops
            conn.run(["sh", "-c", f"sleep 5{marker} & sleep 6{marker}; wait"], check=False)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not _remote_processes(f"sleep 6{marker}"):
        time.sleep(0.05)
    assert _remote_processes(f"sleep 6{marker}")
    conn.running.clear()  # as if this process died: no stop of ours, only the drop
    conn.client.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _remote_processes(marker):
        time.sleep(0.1)
    assert _remote_processes(f"sleep 5{marker}") + _remote_processes(f"sleep 6{marker}") == []
    worker.join(10)


# -- interrupted transfers -------------------------------------------------------------

# A child that uploads (put) or downloads (get) one big file and turns SIGTERM into a
# KeyboardInterrupt as the CLI does; exit 130 means the interrupt came out of the call.
TRANSFER_CHILD = """
import signal, sys
from pathlib import Path
from hgautomation import cli, ssh

def on_term(signum, frame):
    raise cli.SignalInterrupt(signum)

signal.signal(signal.SIGTERM, on_term)
direction, host, port, user, key, known, src, dest = sys.argv[1:]
target = ssh.resolve(host, port=int(port), user=user, identity_files=[Path(key)])
with ssh.connect(target, known_hosts=Path(known)) as conn:
    try:
        if direction == "put":
            conn.put(Path(src), dest, atomic=True)
        else:
            conn.get(src, Path(dest))
    except KeyboardInterrupt:
        sys.exit(130)
sys.exit(0)
"""
BIG = 2 << 30  # sparse: costs no disk, takes far longer than the test waits to interrupt
INTERRUPT_BOUND = 20.0


@pytest.fixture
def user_dir(ssh_host) -> Iterator[Path]:
    """A directory on this machine that the sshd's login user may write."""
    import pwd

    entry = pwd.getpwnam(ssh_host.user)
    path = ssh_host.workdir / f"transfer-{os.getpid()}-{time.monotonic_ns()}"
    path.mkdir(mode=0o755)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _sftp_servers(sshd_pid: int) -> list[int]:
    """PIDs of the internal-sftp processes below the daemon ``sshd_pid``."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, todo = [], [sshd_pid]
    while todo:
        for pid in children.get(todo.pop(), []):
            todo.append(pid)
            with contextlib.suppress(OSError):
                if b"internal-sftp" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(pid)
    return found


def _interrupt_transfer(ssh_host, direction: str, src: Path, dest: Path, partial: Path,
                        signum: int) -> tuple[int, float, str]:
    """Run the child, signal it mid-transfer, return (status, seconds, stderr).

    The signal lands while the server is briefly stopped, as over a slow link: the
    client then sits in a half-sent write or a half-read reply, which is where
    paramiko's polite close used to wait forever (about half the time).
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", TRANSFER_CHILD, direction, ssh_host.host, str(ssh_host.port),
         ssh_host.user, str(ssh_host.key_path), str(ssh_host.known_hosts_path),
         str(src), str(dest)],
        cwd=str(REPO_ROOT), env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stopped: list[int] = []
    with reaped(proc):  # killed if still running at the end
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None:
                with contextlib.suppress(FileNotFoundError):
                    if partial.stat().st_size > 16 << 20:
                        break
                time.sleep(0.01)
            assert proc.poll() is None, f"the child ended before the transfer was seen: " \
                                        f"{proc.communicate()[1]}"
            for pid in _sftp_servers(ssh_host.pid):
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
            assert stopped, "no internal-sftp process found"
            time.sleep(0.3)  # the client fills the window or waits for replies
            proc.send_signal(signum)
            sent = time.monotonic()
            time.sleep(0.3)
            for pid in stopped:
                os.kill(pid, signal.SIGCONT)
            stopped.clear()
            try:
                _, err = proc.communicate(timeout=INTERRUPT_BOUND)
            except subprocess.TimeoutExpired:
                pytest.fail(f"still running {INTERRUPT_BOUND:.0f}s after {signum.name}: the "
                            "interrupted transfer hangs")
            return proc.returncode, time.monotonic() - sent, err
        finally:
            for pid in stopped:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGCONT)


# Several rounds: whether the signal lands mid-packet is a matter of timing.
ROUNDS = 3


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
def test_interrupted_upload_ends_promptly_without_partial_file(ssh_host, user_dir, tmp_path,
                                                              signum):
    big = tmp_path / "big.bin"
    with open(big, "wb") as fh:
        fh.truncate(BIG)
    remote = user_dir / "big.bin"
    for _ in range(ROUNDS):
        status, seconds, err = _interrupt_transfer(ssh_host, "put", big, remote,
                                                   user_dir / "big.bin.part", signum)
        assert status == 130, err
        assert seconds < INTERRUPT_BOUND
        assert list(user_dir.iterdir()) == []  # neither big.bin nor big.bin.part
        assert "Traceback" not in err and "Exception" not in err, err


def test_interrupted_download_ends_promptly_without_partial_file(ssh_host, user_dir, tmp_path):
    remote = user_dir / "big.bin"
    with open(remote, "wb") as fh:
        fh.truncate(BIG)
    local = tmp_path / "big.bin"
    for _ in range(ROUNDS):
        status, seconds, err = _interrupt_transfer(ssh_host, "get", remote, local,
                                                   tmp_path / ".big.bin.part", signal.SIGINT)
        assert status == 130, err
        assert seconds < INTERRUPT_BOUND
        assert list(tmp_path.iterdir()) == []
        assert "Traceback" not in err, err


def test_remove_quietly_after_interrupted_call_is_bounded(ssh_host, target, user_dir):
    """A reply stream cut mid-call (simulated: a request whose reply is never read) does
    not make the cleanup wait for it."""
    path = user_dir / "left.bin"
    path.write_bytes(b"x")
    with ssh.connect(target, known_hosts=ssh_host.known_hosts_path) as conn:
        conn.sftp._async_request(type(None), 17, str(path))  # CMD_STAT, reply left unread
        start = time.monotonic()
        assert conn.remove_quietly(str(path), timeout=5)
        assert time.monotonic() - start < 5
        assert not path.exists()
        assert conn.exists(str(user_dir))  # a fresh shared channel works


def test_start_sshd_stops_the_daemon_when_a_later_step_fails(ssh_host, sshd_workdir,
                                                             monkeypatch):
    started: list[subprocess.Popen] = []
    real_popen = sshd.subprocess.Popen

    def popen(argv, *args, **kwargs):
        proc = real_popen(argv, *args, **kwargs)
        if argv[0] == sshd.SSHD:
            started.append(proc)
        return proc

    host_key = sshd.generate_key(sshd_workdir / "host_key")
    monkeypatch.setattr(sshd.subprocess, "Popen", popen)
    # The .pub is only read after the banner: let it vanish then.
    real_banner = sshd.read_banner

    def banner_then_lose_pub(*args, **kwargs):
        banner = real_banner(*args, **kwargs)
        if banner.startswith(b"SSH-2.0-"):
            Path(f"{host_key}.pub").unlink(missing_ok=True)
        return banner

    monkeypatch.setattr(sshd, "read_banner", banner_then_lose_pub)
    with pytest.raises(FileNotFoundError):
        sshd.start_sshd(sshd_workdir, ssh_host.user, user_key=ssh_host.key_path,
                        host_key=host_key)
    assert len(started) == 1
    assert started[0].poll() is not None, "sshd left running"
