"""Host providers: where a Linux machine comes from (builders, in Packer's words).

A provider yields reachable :class:`Host` records; recipes only ever see those.
``static_hosts`` turns ``--host [user@]address[:port]`` into hosts (keys pinned in the
state dir's known_hosts); ``ec2_hosts`` launches temporary instances through
:mod:`hgautomation.aws` and pins their host keys in a per-run known_hosts.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

from hgautomation import errors, ssh

DEFAULT_LINUX_USER = "hg"  # the contract's user; --host user@... or ssh config User change it
STATIC_WAIT = 10.0  # a static host is up already: retry refused/timeouts only briefly
BOOT_WAIT = 600.0  # a new instance may take minutes before sshd answers


@dataclass
class Host:
    """A machine we can reach over SSH, with how to verify it."""

    label: str  # short name for output prefixes ("box", "i-0abc…")
    target: ssh.Target
    known_hosts: Path
    accept_new_host_key: bool = False
    wait: float = STATIC_WAIT
    instance_id: str | None = None
    block_device: str | None = None  # spare disk for --filesystem ext4 etc., if any
    extra_known_hosts: Sequence[Path] = field(default_factory=tuple)

    def connect(self) -> ssh.Connection:
        conn = ssh.connect(self.target, known_hosts=self.known_hosts,
                           extra_known_hosts=self.extra_known_hosts,
                           accept_new_host_key=self.accept_new_host_key, wait=self.wait)
        # The key is pinned now; later connections (hg push) must not re-accept.
        self.accept_new_host_key = False
        return conn


TOOL_KEY_NAME = "linux-hosts_ed25519"


def tool_key(keys_dir: Path, *, create: bool = False) -> Path:
    """The tool's own key for static hosts (``bootstrap-linux-dev --host`` authorizes it)."""
    path = keys_dir / TOOL_KEY_NAME
    if create and not path.exists():
        import subprocess

        try:
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                            "hgautomation", "-f", str(path)], check=True,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as exc:
            raise errors.ConfigurationError(f"cannot generate {path}: {exc}") from None
        path.chmod(0o600)
    return path


def static_hosts(specs: Sequence[str], *, known_hosts: Path, ssh_config: Path | None,
                 accept_new_host_key: bool = False, default_user: str = DEFAULT_LINUX_USER,
                 fallback_identity: Path | None = None) -> list[Host]:
    """Hosts from ``--host`` values; ssh config applies, explicit user/port win."""
    hosts = []
    for spec in specs:
        user, address, port = ssh.parse_host_spec(spec)
        target = ssh.resolve(address, user=user, port=port, ssh_config=ssh_config,
                             default_user=default_user, fallback_identity=fallback_identity)
        hosts.append(Host(label=address, target=target, known_hosts=known_hosts,
                          accept_new_host_key=accept_new_host_key))
    labels = [h.label for h in hosts]
    for h in hosts:
        if labels.count(h.label) > 1:
            h.label = f"{h.label}:{h.target.port}"
    return hosts


@contextlib.contextmanager
def ec2_hosts(ctx, *, count: int, distro: str, instance_type: str,
              ssh_config: Path | None, needs_disk: bool = False,
              run_dir: Path | None = None) -> Iterator[list[Host]]:
    """Temporary EC2 instances of ``distro``'s image as hosts; terminated on exit."""
    try:
        from hgautomation.aws import linux_hosts  # the AWS layer's entry point
    except ImportError:
        raise errors.NotAvailable(
            "EC2 hosts are not available yet in this build", hint="use --host") from None
    with linux_hosts(ctx, count=count, distro=distro, instance_type=instance_type,
                     needs_disk=needs_disk) as instances:
        yield [_instance_host(ctx, inst, ssh_config, run_dir) for inst in instances]


def _instance_host(ctx, inst, ssh_config: Path | None, run_dir: Path | None) -> Host:
    raise errors.NotAvailable("EC2 hosts are not wired yet", hint="use --host")
