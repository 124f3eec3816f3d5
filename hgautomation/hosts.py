"""Host providers: where a Linux machine comes from (builders, in Packer's words).

A provider yields reachable :class:`Host` records; recipes only ever see those.
:func:`static_hosts` turns ``--host [user@]address[:port]`` into hosts (keys pinned in
the state dir's known_hosts); :func:`instance_host` makes one of a temporary instance
whose generated host key is pinned in a per-run known_hosts (used by ``linux.ec2``
and ``windows.ec2``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from hgautomation import errors, keygen, ssh
from hgautomation.aws.deadman import Heartbeat
from hgautomation.options import HostSpec

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
    # A temporary instance's heartbeat, run while a connection is open.
    heartbeat: Heartbeat | None = None

    def connect(self) -> ssh.Connection:
        conn = ssh.connect(self.target, known_hosts=self.known_hosts,
                           extra_known_hosts=self.extra_known_hosts,
                           accept_new_host_key=self.accept_new_host_key, wait=self.wait)
        # The key is pinned now; later connections (hg push) must not re-accept.
        self.accept_new_host_key = False
        if self.heartbeat is not None:
            beat = self.heartbeat
            conn.keep_alive(beat.argv, beat.interval, posix=beat.posix)
        return conn


TOOL_KEY_NAME = "linux-hosts_ed25519"


def tool_key(keys_dir: Path, *, create: bool = False) -> Path:
    """The tool's own key for static hosts (``bootstrap-linux-dev --host`` authorizes it)."""
    path = keys_dir / TOOL_KEY_NAME
    if create and not path.exists():
        keygen.write(keygen.generate(keygen.ED25519, comment="hgautomation"), path)
    return path


def static_hosts(specs: Sequence[HostSpec], *, known_hosts: Path, ssh_config: Path | None,
                 accept_new_host_key: bool = False, default_user: str = DEFAULT_LINUX_USER,
                 fallback_identity: Path | None = None,
                 identity: Path | None = None) -> list[Host]:
    """Hosts from ``--host`` values, resolved as ssh resolves them; explicit user/port
    and ``identity`` (-i) win. A host key the user's known_hosts files (the config's
    UserKnownHostsFile) already hold is trusted; only the tool's file is ever written."""
    hosts = []
    for spec in specs:
        target = ssh.resolve(spec.address, user=spec.user, port=spec.port,
                             ssh_config=ssh_config, default_user=default_user,
                             identity_files=(identity,) if identity else (),
                             fallback_identity=fallback_identity)
        hosts.append(Host(label=spec.address, target=target, known_hosts=known_hosts,
                          accept_new_host_key=accept_new_host_key,
                          extra_known_hosts=target.user_known_hosts))
    labels = [h.label for h in hosts]
    for h in hosts:
        if labels.count(h.label) > 1:
            h.label = f"{h.label}:{h.target.port}"
    return hosts


def instance_host(*, instance_id: str, address: str | None, host_public_key: str,
                  known_hosts: Path, ssh_config: Path | None, user: str, key_path: Path,
                  wait: float = BOOT_WAIT, block_device: str | None = None,
                  heartbeat: Heartbeat | None = None) -> Host:
    """A temporary instance as a Host: its generated host key pinned under its id.

    The key is pinned before the first connection (HostKeyAlias = instance id), so
    the instance's address may be mapped anywhere by ``--ssh-config`` (bastions,
    tests) and the first contact is still verified. The key EC2 authorized comes
    after any IdentityFile of the config.
    """
    if not address:
        raise errors.AWSError(f"instance {instance_id} has no address to connect to")
    ssh.pin_host_key(known_hosts, instance_id, host_public_key)
    target = ssh.resolve(address, ssh_config=ssh_config, default_user=user,
                         host_key_alias=instance_id)
    target = replace(target, identity_files=target.identity_files + (Path(key_path),),
                     identities_only=True)
    return Host(label=instance_id, target=target, known_hosts=known_hosts, wait=wait,
                instance_id=instance_id, block_device=block_device,
                heartbeat=heartbeat)
