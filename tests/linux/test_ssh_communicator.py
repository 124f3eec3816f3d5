"""hgautomation.ssh against a real loopback sshd: run, put/get, ssh config, proxies, errors."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path

import pytest
from harness.net import free_port

from hgautomation import console, errors, ssh


@pytest.fixture
def target(ssh_host) -> ssh.Target:
    return ssh.resolve(ssh_host.host, port=ssh_host.port, user=ssh_host.user,
                       identity_files=[ssh_host.key_path])


@pytest.fixture
def lines(monkeypatch) -> list[str]:
    """What the communicator streamed to the console, line by line."""
    seen: list[str] = []
    monkeypatch.setattr(console.Console, "remote_line",
                        lambda self, prefix, line: seen.append(prefix + line))
    return seen


def test_run_streams_lines_and_returns_status(ssh_host, target, lines):
    with ssh.connect(target, known_hosts=ssh_host.known_hosts_path) as conn:
        assert conn.run("echo out; echo err >&2; printf 'no newline'", prefix="> ") == 0
        assert lines == ["> out", "> err", "> no newline"]
        assert conn.run("exit 7", check=False) == 7
        assert conn.output("cat", stdin=b"fed on stdin\n") == "fed on stdin"
        with pytest.raises(errors.RemoteCommandError) as info:
            conn.run("for i in $(seq 1 30); do echo line $i; done; exit 3", quiet=True)
    exc = info.value
    assert exc.status == 3 and exc.exit_code == 10
    assert exc.output_tail.splitlines() == [f"line {i}" for i in range(11, 31)]
    assert exc.one_line().endswith("exit status 3 from for i in $(seq 1 30); do echo line $i; "
                                   "done; exit 3; last output: line 30")


def test_put_get_roundtrip_atomic_and_chmod(ssh_host, target, tmp_path):
    payload = tmp_path / "payload.bin"
    payload.write_bytes(os.urandom(3 << 20))
    remote = f"/tmp/hgauto-ssh-test-{os.getpid()}.bin"
    with ssh.connect(target, known_hosts=ssh_host.known_hosts_path) as conn:
        try:
            conn.put(payload, remote, atomic=True, mode=0o640)
            assert not conn.exists(remote + ".part")
            assert conn.output(f"stat -c %a {remote}") == "640"
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
            conn.run(f"rm -f {remote} {remote}.moved", check=False, quiet=True)


def test_ssh_config_hostname_port_user_identity(ssh_host, tmp_path):
    config = tmp_path / "config"
    config.write_text(f"Host box\n  HostName {ssh_host.host}\n  Port {ssh_host.port}\n"
                      f"  User {ssh_host.user}\n  IdentityFile {ssh_host.key_path}\n")
    target = ssh.resolve("box", ssh_config=config)
    assert (target.hostname, target.port, target.user) == \
        (ssh_host.host, ssh_host.port, ssh_host.user)
    with ssh.connect(target, known_hosts=ssh_host.known_hosts_path) as conn:
        assert conn.output("id -un") == ssh_host.user
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
            assert conn.output("echo through $SSH_CONNECTION").startswith("through 127.0.0.1")
        # The OpenSSH config for hg push reaches the same host through the same proxy.
        ossh = tmp_path / f"{name}.ssh_config"
        ossh.write_text(ssh.openssh_config(target, ssh_host.known_hosts_path))
        result = subprocess.run(["ssh", "-F", str(ossh), ssh.ALIAS, "echo", "openssh ok"],
                                capture_output=True, text=True, timeout=60,
                                stdin=subprocess.DEVNULL)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "openssh ok"


def test_openssh_config_refuses_unpinned_key(ssh_host, target, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    ossh = tmp_path / "ssh_config"
    ossh.write_text(ssh.openssh_config(target, empty))
    result = subprocess.run(["ssh", "-F", str(ossh), ssh.ALIAS, "true"], capture_output=True,
                            text=True, timeout=60, stdin=subprocess.DEVNULL)
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


def test_refused_is_retried_within_the_bound(tmp_path):
    target = ssh.resolve("127.0.0.1", port=free_port(), user="nobody")
    start = time.monotonic()
    with pytest.raises(errors.HostConnectionError, match="connection refused"):
        ssh.connect(target, known_hosts=tmp_path / "kh", wait=2)
    assert 1.5 < time.monotonic() - start < 10


@pytest.mark.parametrize("spec,expected", [
    ("box", (None, "box", None)),
    ("hg@box:2222", ("hg", "box", 2222)),
    ("[::1]:22", (None, "::1", 22)),
    ("u@[fe80::1]", ("u", "fe80::1", None)),
    ("::1", (None, "::1", None)),
])
def test_parse_host_spec(spec, expected):
    assert ssh.parse_host_spec(spec) == expected


@pytest.mark.parametrize("spec", ["box:0", "box:http", "@box", "[::1", "u@"])
def test_parse_host_spec_rejects(spec):
    with pytest.raises(errors.UsageError):
        ssh.parse_host_spec(spec)
