"""A "Linux dev host": the `ssh_host` sshd's user given the remote-machine contract for real.

/hgdev and /hgwork are fixed absolute paths on this machine: the fixture creates them
only when absent (or when they hold its own marker, left by a killed run) and removes
them at teardown only if it created them. The user is the harness's (`hgtest`), not
`hg`: the product takes the user from `--host`/the ssh config.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness import hgsource

REPO_ROOT = Path(__file__).resolve().parents[2]
# tests/run would fetch this before going offline; see the report for the line.
WHEEL_DIRS = [REPO_ROOT / "build" / "cache" / "wheels-hg", REPO_ROOT / "build" / "cache" / "wheels"]
BUILD_WHEELS = REPO_ROOT / "build" / "cache" / "wheels-build"
HG_VERSION = "7.2.4"
HGDEV = Path("/hgdev")
HGWORK = Path("/hgwork")
MARKER = ".hgautomation-test-fixture"
SYSTEM_PYTHON = "/usr/bin/python3"


@dataclass(frozen=True)
class LinuxDevHost:
    """A contract host reachable through `ssh_config` as `alias`."""

    ssh: object  # harness.sshd.SSHHost
    alias: str
    ssh_config: Path
    user: str

    def cli_args(self, state: Path) -> list[str]:
        """Global options that reach this host with pinned keys from `state`."""
        return ["--state-path", str(state), "--ssh-config", str(self.ssh_config)]


def _run(*cmd: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), check=True, capture_output=True, text=True,
                          timeout=kwargs.pop("timeout", 300), **kwargs)


def _claim(path: Path) -> bool:
    """Create `path` (True); a leftover of a killed run is replaced (True); a path in use
    by another live test run, or not ours at all, is left alone (False)."""
    marker = path / MARKER
    if path.exists():
        if not marker.exists():
            return False
        try:
            owner_pid = int(marker.read_text().split()[0])
        except (ValueError, IndexError, OSError):
            owner_pid = 0
        if owner_pid and Path(f"/proc/{owner_pid}").exists():
            return False  # another pytest on this machine is using it right now
        _remove(path)
    path.mkdir(mode=0o755)
    marker.write_text(f"{os.getpid()} created by tests/linux/conftest.py; safe to delete "
                      "when that process is gone\n")
    return True


def _remove(path: Path) -> None:
    if path.is_mount():
        subprocess.run(["umount", str(path)], check=False, timeout=60)
    shutil.rmtree(path, ignore_errors=True)


def _find_wheel() -> Path | None:
    for directory in WHEEL_DIRS:
        found = sorted(directory.glob(f"mercurial-{HG_VERSION}-*.whl"))
        if found:
            return found[0]
    return None


def lay_out_contract(user: str, source_repo: Path) -> None:
    """/hgdev: venv-bootstrap with Mercurial, a non-publishing clone, a python shim."""
    wheel = _find_wheel()
    if wheel is None or not any(BUILD_WHEELS.glob("setuptools_scm-*.whl")):
        pytest.skip(f"no mercurial {HG_VERSION} wheel in {WHEEL_DIRS[0]} or no build "
                    f"requirements in {BUILD_WHEELS} (tests/run downloads them before "
                    "going offline)")
    venv = HGDEV / "venv-bootstrap"
    # From the system Python: a venv whose interpreter lives under /root is not
    # executable by another user.
    _run(SYSTEM_PYTHON, "-m", "venv", str(venv))
    _run(str(venv / "bin" / "python"), "-m", "pip", "install", "--isolated", "-q",
         "--no-index", "--find-links", str(wheel.parent), f"mercurial=={HG_VERSION}")
    hgsource.hg("clone", "-q", "--noupdate", str(source_repo), str(HGDEV / "src"))
    with open(HGDEV / "src" / ".hg" / "hgrc", "a") as fh:
        fh.write("\n[phases]\npublish = False\n")
    # The image's wheelhouse of build requirements (tests/run downloads them).
    shutil.copytree(BUILD_WHEELS, HGDEV / "wheelhouse")
    (HGDEV / "builds").mkdir()
    shims = HGDEV / "pyenv" / "shims"
    shims.mkdir(parents=True)
    version = _run(SYSTEM_PYTHON, "-c",
                   "import sys; print('%d.%d' % sys.version_info[:2])").stdout.strip()
    (shims / f"python{version}").symlink_to(SYSTEM_PYTHON)
    _run("chown", "-R", f"{user}:", str(HGDEV))


@pytest.fixture
def stocked_pypi(pypi, mercurial_wheel):
    """The loopback package index holding what bootstrap-debian.sh fetches: Mercurial
    for venv-bootstrap and the build requirements for /hgdev/wheelhouse."""
    shutil.copy(mercurial_wheel, pypi.packages_dir / mercurial_wheel.name)
    for wheel in BUILD_WHEELS.glob("*.whl"):
        shutil.copy(wheel, pypi.packages_dir / wheel.name)
    return pypi


@pytest.fixture(scope="session")
def mercurial_wheel() -> Path:
    """The cached Mercurial wheel for /usr/bin/python3 (tests/run fetches it)."""
    wheel = _find_wheel()
    if wheel is None:
        pytest.skip(f"no mercurial {HG_VERSION} wheel in {WHEEL_DIRS[0]} (tests/run downloads "
                    "it before going offline)")
    return wheel


@pytest.fixture(scope="session")
def linux_dev_host(ssh_host, hg_source, tmp_path_factory) -> Iterator[LinuxDevHost]:
    """The sshd fixture's user with /hgdev laid out and /hgwork owned, reached as `devhost`."""
    created = []
    try:
        for path in (HGDEV, HGWORK):
            if not _claim(path):
                pytest.skip(f"{path} exists and is not this test run's (another run or not a "
                            "test's): not touching it")
            created.append(path)
        lay_out_contract(ssh_host.user, hg_source)
        _run("chown", f"{ssh_host.user}:", str(HGWORK))
        # An offline host: pip (run-tests.py's own install) finds everything in the
        # wheelhouse instead of retrying an index it cannot reach.
        pip_conf = Path(os.path.expanduser(f"~{ssh_host.user}")) / ".config" / "pip" / "pip.conf"
        if not pip_conf.exists():
            pip_conf.parent.mkdir(parents=True, exist_ok=True)
            pip_conf.write_text("[global]\nno-index = true\n")
            created.append(pip_conf)
        config = tmp_path_factory.mktemp("ssh-config") / "config"
        config.write_text(
            "Host devhost\n"
            f"  HostName {ssh_host.host}\n"
            f"  Port {ssh_host.port}\n"
            f"  User {ssh_host.user}\n"
            f"  IdentityFile {ssh_host.key_path}\n")
        yield LinuxDevHost(ssh=ssh_host, alias="devhost", ssh_config=config,
                           user=ssh_host.user)
    finally:
        for path in created:
            if path.is_file():
                path.unlink()
            else:
                _remove(path)


@pytest.fixture
def second_dev_host(linux_dev_host, sshd_workdir, tmp_path) -> Iterator[LinuxDevHost]:
    """Another "machine" for sharding: an sshd in its own mount namespace, whose /hgwork
    is a private bind mount (so two runs on this box do not share /hgwork); /hgdev is
    the same as `linux_dev_host`'s. Reached as `devhost2` through its own ssh config."""
    from harness import sshd
    from harness.net import LOOPBACK, read_banner, wait_until
    from harness.process import stop_process

    # Let the harness write keys and config, then run that config in a new namespace.
    first = sshd.start_sshd(sshd_workdir, linux_dev_host.user,
                            user_key=linux_dev_host.ssh.key_path)
    first.stop()
    host = first.host
    private_work = sshd_workdir / "hgwork"
    private_work.mkdir()
    _run("chown", f"{linux_dev_host.user}:", str(private_work))
    command = (f"mount --bind {private_work} {HGWORK} && exec {sshd.SSHD} -D "
               f"-f {sshd_workdir / 'sshd_config'} -E {sshd_workdir / 'sshd.log'}")
    process = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "--",
                                "sh", "-c", command], stdin=subprocess.DEVNULL)
    try:
        def up() -> bool:
            assert process.poll() is None, f"namespaced sshd exited {process.returncode}"
            return read_banner(LOOPBACK, host.port).startswith(b"SSH-2.0-")

        wait_until(up, 20, f"namespaced sshd on {host.port}")
        config = tmp_path / "ssh-config-2"
        config.write_text(
            linux_dev_host.ssh_config.read_text()
            + f"Host devhost2\n  HostName {host.host}\n  Port {host.port}\n"
              f"  User {host.user}\n  IdentityFile {host.key_path}\n")
        yield LinuxDevHost(ssh=host, alias="devhost2", ssh_config=config, user=host.user)
    finally:
        stop_process(process)


DEBIAN_ROOT = REPO_ROOT / "build" / "cache" / "debian-root"


@dataclass(frozen=True)
class ChrootHost:
    """sshd running in a throwaway overlay of the cached clean Debian root."""

    port: int
    root_key: Path  # logs in as root
    host_public_key: str
    upper: Path  # the overlay's upper dir: every file the test run changed


@pytest.fixture
def debian_chroot_host(sshd_workdir) -> Iterator[ChrootHost]:
    """A clean Debian 12 "machine": an overlay on build/cache/debian-root, sshd in a chroot
    on a loopback port, in a private mount namespace (the overlay, /proc and /dev vanish
    with it). Only root may log in, with a key of its own."""
    from harness import sshd
    from harness.net import LOOPBACK, free_port, read_banner, wait_until
    from harness.process import stop_process

    if not any(DEBIAN_ROOT.glob(".ready-*")):
        pytest.skip(f"no Debian root at {DEBIAN_ROOT}: run tests/linux/make-debian-root.sh "
                    "(needs the network) before the test namespace")
    upper, work, merged = (sshd_workdir / n for n in ("upper", "work", "merged"))
    for d in (upper, work, merged):
        d.mkdir()
    ssh_dir = upper / "etc" / "ssh"
    ssh_dir.mkdir(parents=True)
    (upper / "run" / "sshd").mkdir(parents=True)
    host_key = sshd.generate_key(ssh_dir / "test_host_ed25519_key", "debian-chroot-host")
    root_key = sshd.generate_key(sshd_workdir / "root_key", "root@debian-chroot")
    (ssh_dir / "keys_root").write_text(sshd.public_key(root_key) + "\n")
    port = free_port()
    sshd_options = [
        "-D", "-e", "-p", str(port), "-h", "/etc/ssh/test_host_ed25519_key",
        "-o", f"ListenAddress={LOOPBACK}", "-o", "UsePAM=no",
        "-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no",
        "-o", "PermitRootLogin=prohibit-password",
        "-o", "AuthorizedKeysFile=.ssh/authorized_keys /etc/ssh/keys_%u",
        "-o", "PidFile=none",
    ]
    command = " && ".join([
        f"mount -t overlay overlay -o lowerdir={DEBIAN_ROOT},upperdir={upper},workdir={work} "
        f"{merged}",
        f"mount -t proc proc {merged}/proc",
        f"mount --rbind /dev {merged}/dev",
        f"mount -t tmpfs tmpfs {merged}/tmp",
        "exec chroot " + str(merged) + " /usr/sbin/sshd "
        + " ".join(f"'{o}'" for o in sshd_options),
    ])
    with open(sshd_workdir / "sshd.log", "wb") as log:  # the child keeps its own copy
        process = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "--",
                                    "sh", "-c", command], stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT)
    try:
        def up() -> bool:
            assert process.poll() is None, (
                f"chroot sshd exited {process.returncode}: "
                + (sshd_workdir / "sshd.log").read_text(errors="replace"))
            return read_banner(LOOPBACK, port).startswith(b"SSH-2.0-")

        wait_until(up, 30, f"chroot sshd on {port}")
        yield ChrootHost(port=port, root_key=root_key,
                         host_public_key=sshd.public_key(host_key), upper=upper)
    finally:
        stop_process(process)
