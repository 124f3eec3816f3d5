"""A private OpenSSH sshd on 127.0.0.1 with its own host key, user key and login user."""

from __future__ import annotations

import pwd
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .net import LOOPBACK, free_port, read_banner, wait_until
from .process import stop_process, tail

DEFAULT_USER = "hgtest"
SSHD = "/usr/sbin/sshd"  # sshd insists on being started by absolute path
# sshd's StrictModes rejects an AuthorizedKeysFile below a world-writable directory
# such as /tmp, and the login user must be able to read it: so not under pytest's
# 0700 /tmp/pytest-of-root either, but in a root-owned 0755 tree.
DEFAULT_BASE = Path("/run/hgautomation-test")


@dataclass(frozen=True)
class SSHHost:
    """Everything a client needs to log in to one running sshd."""

    host: str
    port: int
    user: str
    key_path: Path
    host_public_key: str  # "ssh-ed25519 AAAA..."
    known_hosts_path: Path  # one line: "[127.0.0.1]:PORT ssh-ed25519 AAAA..."
    workdir: Path
    pid: int


def ensure_user(name: str = DEFAULT_USER) -> Path:
    """Create system user `name` (bash, home dir) if absent, unlock it; return its home."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        # Not check=True: a concurrent run may have created the user meanwhile.
        subprocess.run(["useradd", "--system", "--create-home", "--shell", "/bin/bash", name],
                       check=False, timeout=30)
        entry = pwd.getpwnam(name)
    # useradd leaves the password "!" (locked) and sshd without PAM refuses locked
    # accounts even for key logins; "*" means "no password" but not locked.
    subprocess.run(["usermod", "-p", "*", name], check=True, timeout=30)
    return Path(entry.pw_dir)


def make_workdir(base: Path = DEFAULT_BASE, prefix: str = "sshd-") -> Path:
    """A fresh 0755 directory under a root-owned 0755 base, fit for sshd's StrictModes."""
    base.mkdir(mode=0o755, parents=True, exist_ok=True)
    base.chmod(0o755)
    workdir = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    workdir.chmod(0o755)
    return workdir


def generate_key(path: Path, comment: str = "hgautomation-test") -> Path:
    """Write a new ed25519 key pair at `path` (0600) and `path`.pub."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                   check=True, timeout=30, stdin=subprocess.DEVNULL)
    path.chmod(0o600)
    return path


def public_key(key_path: Path) -> str:
    """The "type base64" part of the .pub file next to `key_path`."""
    fields = Path(f"{key_path}.pub").read_text().split()
    return f"{fields[0]} {fields[1]}"


@dataclass
class SSHDaemon:
    """A started sshd: the login details plus the process to stop."""

    host: SSHHost
    process: subprocess.Popen
    log_path: Path

    def stop(self) -> None:
        """Stop sshd by its PID (TERM, bounded wait, KILL)."""
        stop_process(self.process)


def start_sshd(workdir: Path, user: str = DEFAULT_USER, *, user_key: Path | None = None,
               host_key: Path | None = None, port: int | None = None,
               authorized: Sequence[str] = (), timeout: float = 20.0) -> SSHDaemon:
    """Start sshd for `user` on a loopback port (`port`, else a free one), files in `workdir`.

    Missing keys are generated; pass `user_key`/`host_key` to reuse (or swap) keys.
    `authorized`: more public key lines accepted from the first connection on (as a
    machine's first boot installs them before sshd starts).
    """
    ensure_user(user)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir
    workdir.mkdir(mode=0o755, parents=True, exist_ok=True)
    host_key = host_key or generate_key(workdir / "ssh_host_ed25519_key", "hgautomation-test-host")
    user_key = user_key or generate_key(workdir / "id_ed25519", f"{user}@hgautomation-test")

    authorized_keys = workdir / "authorized_keys"
    authorized_keys.write_text("".join(line.strip() + "\n"
                                       for line in (public_key(user_key), *authorized)))
    authorized_keys.chmod(0o644)  # read by sshd as the login user

    port = port or free_port()
    config = workdir / "sshd_config"
    config.write_text("\n".join([
        f"ListenAddress {LOOPBACK}",
        f"Port {port}",
        f"HostKey {host_key}",
        f"PidFile {workdir / 'sshd.pid'}",
        f"AuthorizedKeysFile {authorized_keys}",
        f"AllowUsers {user}",
        "UsePAM no",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin no",
        "StrictModes yes",
        "X11Forwarding no",
        "PrintMotd no",
        "Subsystem sftp internal-sftp",
        "",
    ]))
    log_path = workdir / "sshd.log"
    process = subprocess.Popen([SSHD, "-D", "-f", str(config), "-E", str(log_path)],
                               stdin=subprocess.DEVNULL)

    def banner_arrived() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited with {process.returncode}:\n{tail(log_path)}")
        return read_banner(LOOPBACK, port).startswith(b"SSH-2.0-")

    # Every step after the start stops sshd if it fails: nothing else would.
    try:
        wait_until(banner_arrived, timeout, f"sshd banner on {LOOPBACK}:{port}")
        host_public_key = public_key(host_key)
        known_hosts = workdir / "known_hosts"
        known_hosts.write_text(f"[{LOOPBACK}]:{port} {host_public_key}\n")
        host = SSHHost(host=LOOPBACK, port=port, user=user, key_path=user_key,
                       host_public_key=host_public_key, known_hosts_path=known_hosts,
                       workdir=workdir, pid=process.pid)
        return SSHDaemon(host=host, process=process, log_path=log_path)
    except BaseException:
        stop_process(process)
        raise


@contextmanager
def running_sshd(workdir: Path, user: str = DEFAULT_USER, **kwargs) -> Iterator[SSHHost]:
    """`start_sshd` as a context manager that always stops the daemon."""
    daemon = start_sshd(workdir, user, **kwargs)
    try:
        yield daemon.host
    finally:
        daemon.stop()


def ssh_command(host: SSHHost, *remote: str) -> list[str]:
    """An OpenSSH client command line that logs in to `host` with nothing but its own files."""
    return [
        "ssh", "-F", "/dev/null", "-i", str(host.key_path), "-p", str(host.port),
        "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
        "-o", f"UserKnownHostsFile={host.known_hosts_path}", "-o", "StrictHostKeyChecking=yes",
        f"{host.user}@{host.host}", *remote,
    ]
