"""Linux on EC2: dev images per distro and temporary hosts from them.

``bootstrap_linux`` builds (or reuses) ``hg-linux-dev-<distro>`` images;
``linux_hosts`` launches temporary instances of such an image. Each instance
gets a host key generated here (cloud-init user data), so callers pin it before
the first connection.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from hgautomation import console, errors, platforms
from hgautomation.aws import images as images_
from hgautomation.aws.instances import Instance, temporary_instances, terminate_active
from hgautomation.hostkeys import HostKey, generate_host_key

_SCRIPTS = Path(__file__).parent / "scripts"
BUILD_INSTANCE_TYPE = "c5.large"
CONTRACT_USER = "hg"
BOOT_WAIT = 600.0
ROOT_VOLUME_GB = 32
SPARE_DEVICE = "/dev/sdf"  # attached with needs_disk; Nitro exposes it as an nvme disk


def family(distro: str) -> str:
    return f"hg-linux-dev-{distro}"


def base_user(distro: str) -> str:
    """The login user of the distro's official images."""
    return "admin" if distro.startswith("debian") else "ubuntu"


def user_data(host_key: HostKey) -> str:
    template = (_SCRIPTS / "linux-user-data.yaml").read_text()
    indented = "\n".join("    " + line for line in host_key.private_openssh.strip().splitlines())
    return (template.replace("@HOST_PRIVATE_KEY@", indented)
            .replace("@HOST_PUBLIC_KEY@", host_key.public))


@dataclass(frozen=True)
class LinuxInstance:
    """A temporary Linux instance and what it takes to reach it over SSH."""

    instance: Instance
    user: str  # login user
    key_path: Path  # private key accepted for that user
    host_public_key: str  # pin this for instance.id (e.g. HostKeyAlias) before connecting
    block_device: str | None = None

    @property
    def id(self) -> str:
        return self.instance.id

    @property
    def address(self) -> str | None:
        return self.instance.address


def _root_volume(size_gb: int = ROOT_VOLUME_GB, spare_gb: int = 0) -> list[dict]:
    mappings = [{"DeviceName": "/dev/xvda",
                 "Ebs": {"VolumeSize": size_gb, "VolumeType": "gp3",
                         "DeleteOnTermination": True}}]
    if spare_gb:
        mappings.append({"DeviceName": SPARE_DEVICE,
                         "Ebs": {"VolumeSize": spare_gb, "VolumeType": "gp3",
                                 "DeleteOnTermination": True}})
    return mappings


def _session_state(ctx, owner: str | None, ingress_cidr: str | None):
    from hgautomation.aws.account import ensure_account_state, resolve_owner
    from hgautomation.aws.security_groups import parse_cidr
    from hgautomation.aws.session import open_session

    session = open_session(ctx)
    owner = resolve_owner(session, owner)
    cidr = parse_cidr(ingress_cidr) if ingress_cidr else None
    account = ensure_account_state(ctx, session, owner, cidr, kinds=("linux",))
    return session, account


def image_fingerprint(distro: str, base_image_id: str, pythons: Sequence[str],
                      script: Path) -> str:
    config = {"family": family(distro), "base_image": base_image_id,
              "root_volume_gb": ROOT_VOLUME_GB, "pythons": sorted(pythons),
              "user": CONTRACT_USER}
    return images_.fingerprint(config, [script, _SCRIPTS / "linux-user-data.yaml"])


def ensure_linux_image(ctx, session, account, distro: str, pythons: Sequence[str],
                       script: Path, *, spot: bool = False,
                       instance_type: str = BUILD_INSTANCE_TYPE,
                       pip_index_url: str | None = None) -> images_.Image:
    """The dev image of *distro*: reused when its fingerprint matches, else built.

    *pip_index_url* is only where the builder fetches Mercurial from, not part of the
    image's recipe, so it is left out of the fingerprint.
    """
    from hgautomation import linux, ssh

    owner_id, pattern = platforms.LINUX_DISTROS[distro]
    base = images_.find_base_image(session, owner_id, pattern)
    console.get().info(f"{distro}: base image {base.id} {base.name}")
    fp = image_fingerprint(distro, base.id, pythons, script)
    host_key = generate_host_key()

    def provision(instance: Instance) -> None:
        run_dir = Path(tempfile.mkdtemp(prefix="linux-image-", dir=ctx.state.runs))
        try:
            known_hosts = run_dir / "known_hosts"
            ssh.pin_host_key(known_hosts, instance.id, host_key.public)
            target = ssh.resolve(instance.address, ssh_config=ctx.ssh_config,
                                 identity_files=[account.key_path],
                                 default_user=base_user(distro), host_key_alias=instance.id)
            with console.get().step(f"connect to {target} (up to {BOOT_WAIT:.0f}s for boot)"):
                conn = ssh.connect(target, known_hosts=known_hosts, wait=BOOT_WAIT)
            with conn:
                linux.provision(conn, CONTRACT_USER, account.public_key, pythons,
                                prefix=f"[{distro}] ", pip_index_url=pip_index_url)
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)

    return images_.ensure_image(
        session, family=family(distro), fp=fp, owner=account.owner, base_image_id=base.id,
        instance_type=instance_type, provision=provision,
        security_group_ids=[account.security_group_ids["linux"]], key_name=account.key_name,
        instance_profile_arn=account.instance_profile_arn or None,
        user_data=user_data(host_key), platform="linux",
        block_device_mappings=_root_volume(), spot=spot)


def bootstrap_linux(ctx, args, script: Path) -> int:
    """``bootstrap-linux-dev`` on EC2: build or reuse the image of each ``--distros``."""
    con = console.get()
    from hgautomation.aws.session import translate_errors

    with translate_errors():
        session, account = _session_state(ctx, args.owner, args.ingress_cidr)
        spot = args.spot
        index_url = args.pip_index_url
        built = []
        try:
            if args.parallel and len(args.distros) > 1:
                images = _build_parallel(ctx, session, account, args.distros, args.pythons,
                                         script, spot, index_url)
            else:
                images = [ensure_linux_image(ctx, session, account, distro, args.pythons,
                                             script, spot=spot, pip_index_url=index_url)
                          for distro in args.distros]
            built = [[d, i.id, i.name] for d, i in zip(args.distros, images)]
        finally:
            con.detail(session.counter.summary())
        con.table(["distro", "image", "name"], built, title="Linux dev images:")
    return 0


def _build_parallel(ctx, session, account, distros: Sequence[str], pythons: Sequence[str],
                    script: Path, spot: bool,
                    pip_index_url: str | None = None) -> list[images_.Image]:
    """One image build per distro, each in its own thread.

    Daemon threads, because a build may sit in a long bounded wait (SSH boot) that
    cannot be cancelled from outside: on an error or interrupt the main thread
    terminates every instance the builds launched and returns without them.
    """
    results: dict[str, images_.Image] = {}
    failures: list[BaseException] = []
    done = threading.Semaphore(0)

    def build(distro: str) -> None:
        try:
            results[distro] = ensure_linux_image(ctx, session, account, distro, pythons,
                                                 script, spot=spot,
                                                 pip_index_url=pip_index_url)
        except BaseException as exc:  # noqa: BLE001 - even Ctrl-C: the main thread re-raises it
            failures.append(exc)
        finally:
            done.release()

    threads = [threading.Thread(target=build, args=(d,), name=f"hg-image-{d}", daemon=True)
               for d in distros]
    try:
        for t in threads:
            t.start()
        for _ in threads:
            done.acquire()
            if failures:
                raise failures[0]
    except BaseException:
        terminate_active(session)
        raise
    return [results[d] for d in distros]


@contextlib.contextmanager
def linux_hosts(ctx, *, count: int, distro: str, instance_type: str,
                needs_disk: bool = False, owner: str | None = None,
                ingress_cidr: str | None = None, spot: bool = False,
                pythons: Sequence[str] | None = None,
                script: Path | None = None) -> Iterator[list[LinuxInstance]]:
    """*count* temporary instances of *distro*'s dev image (built first if missing)."""
    from hgautomation import linux

    session, account = _session_state(ctx, owner, ingress_cidr)
    image = ensure_linux_image(ctx, session, account, distro,
                               pythons or platforms.LINUX_PYTHONS,
                               script or linux.SCRIPTS / "bootstrap-debian.sh", spot=spot)
    host_keys = [generate_host_key() for _ in range(count)]
    if len({hk.public for hk in host_keys}) != count:  # pragma: no cover - paranoia
        raise errors.HgAutomationError("host key generation repeated itself")
    # One user data for all: instances of one launch share the host key (they are
    # pinned per instance id, and all are ours and short-lived).
    with temporary_instances(
            session, owner=account.owner, image_id=image.id, instance_type=instance_type,
            count=count, security_group_ids=[account.security_group_ids["linux"]],
            key_name=account.key_name, user_data=user_data(host_keys[0]),
            instance_profile_arn=account.instance_profile_arn or None,
            purpose=f"linux-{distro}", spot=spot,
            block_device_mappings=_root_volume(spare_gb=32 if needs_disk else 0),
    ) as instances:
        yield [LinuxInstance(i, CONTRACT_USER, account.key_path, host_keys[0].public,
                             SPARE_DEVICE if needs_disk else None) for i in instances]
