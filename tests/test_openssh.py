"""Hosts are resolved as ssh resolves them: the user's ~/.ssh/config (Include, aliases),
their known_hosts, -i; publishing's --ssh-host takes [user@]host[:port] the same way."""

from __future__ import annotations

import pytest

from hgautomation import errors

REACHED = (0, errors.HostContractError.exit_code)  # connected: the contract check ran


@pytest.fixture
def home(tmp_path):
    """A HOME with an empty ~/.ssh, and the CLI's environment pointing at it."""
    path = tmp_path / "home"
    (path / ".ssh").mkdir(parents=True, mode=0o700)
    return path


def _trust(home, ssh_host):
    """The sshd's key in the user's own known_hosts (as `ssh` would have put it)."""
    (home / ".ssh" / "known_hosts").write_text(ssh_host.known_hosts_path.read_text())


def test_a_host_known_only_to_the_users_ssh_config(cli, ssh_host, home, tmp_path):
    included = tmp_path / "conf.d" / "work.conf"
    included.parent.mkdir()
    included.write_text(f"Host buildbox\n  HostName {ssh_host.host}\n  Port {ssh_host.port}\n"
                        f"  User {ssh_host.user}\n  IdentityFile {ssh_host.key_path}\n")
    (home / ".ssh" / "config").write_text(f"Include {tmp_path}/conf.d/*.conf\n")
    _trust(home, ssh_host)
    result = cli.run("check-host", "--host", "buildbox", "--no-features",
                     state=tmp_path / "state", cwd=tmp_path, env={"HOME": str(home)},
                     timeout=120)
    assert result.returncode in REACHED, result.stderr[-3000:]
    assert f"{ssh_host.user}@buildbox" in result.stderr + result.stdout
    assert "unknown host key" not in result.stderr
    # The user's file is read, never written.
    assert (home / ".ssh" / "known_hosts").read_text() == \
        ssh_host.known_hosts_path.read_text()


def test_without_the_users_known_hosts_the_key_is_unknown(cli, ssh_host, home, tmp_path):
    (home / ".ssh" / "config").write_text(
        f"Host buildbox\n  HostName {ssh_host.host}\n  Port {ssh_host.port}\n"
        f"  User {ssh_host.user}\n  IdentityFile {ssh_host.key_path}\n")
    result = cli.run("check-host", "--host", "buildbox", "--no-features",
                     state=tmp_path / "state", cwd=tmp_path, env={"HOME": str(home)},
                     timeout=120)
    assert result.returncode == errors.HostKeyError.exit_code, result.stderr
    assert "unknown host key" in result.stderr.splitlines()[-1]


def test_identity_option_is_ssh_i(cli, ssh_host, home, tmp_path):
    _trust(home, ssh_host)
    spec = f"{ssh_host.user}@{ssh_host.host}:{ssh_host.port}"
    without = cli.run("check-host", "--host", spec, "--no-features", state=tmp_path / "s1",
                      cwd=tmp_path, env={"HOME": str(home), "SSH_AUTH_SOCK": None},
                      timeout=120)
    assert without.returncode == errors.HostConnectionError.exit_code, without.stderr
    with_key = cli.run("-i", str(ssh_host.key_path), "check-host", "--host", spec,
                       "--no-features", state=tmp_path / "s2", cwd=tmp_path,
                       env={"HOME": str(home), "SSH_AUTH_SOCK": None}, timeout=120)
    assert with_key.returncode in REACHED, with_key.stderr[-3000:]
    missing = cli.run("-i", str(tmp_path / "no-such-key"), "check-host", "--host", spec,
                      state=tmp_path / "s3", cwd=tmp_path, env={"HOME": str(home)},
                      timeout=60)
    assert missing.returncode == 2
    assert missing.stderr.strip().startswith("usage error: -i/--identity: ")
