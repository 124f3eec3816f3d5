"""Linux on EC2: the dev image of each distro, and temporary hosts made from it.

:func:`ensure_image` builds (or reuses, by fingerprint) ``hg-linux-dev-<distro>``;
:func:`temporary_hosts` launches instances of it and yields them as pinned
:class:`~hgautomation.hosts.Host` records. Each instance gets a host key generated
here (cloud-init user data), pinned before the first connection.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from hgautomation import console, hosts, linux, platforms
from hgautomation.aws import images as images_
from hgautomation.aws.account import AWS
from hgautomation.aws.instances import Instance, temporary_instances, terminate_active
from hgautomation.context import Context
from hgautomation.ssh.hostkeys import HostKey, generate_host_key

BUILD_INSTANCE_TYPE = "c5.large"
CONTRACT_USER = "hg"
ROOT_VOLUME_GB = 32
SPARE_DEVICE = "/dev/sdf"  # attached with needs_disk; Nitro exposes it as an nvme disk
BOOTSTRAP_SCRIPT = linux.SCRIPTS / "bootstrap-debian.sh"
USER_DATA = linux.SCRIPTS / "user-data.yaml"


def family(distro: str) -> str:
    return f"hg-linux-dev-{distro}"


def base_user(distro: str) -> str:
    """The login user of the distro's official images."""
    return "admin" if distro.startswith("debian") else "ubuntu"


def user_data(host_key: HostKey) -> str:
    template = USER_DATA.read_text()
    indented = "\n".join("    " + line for line in host_key.private_openssh.strip().splitlines())
    return (template.replace("@HOST_PRIVATE_KEY@", indented)
            .replace("@HOST_PUBLIC_KEY@", host_key.public))


def _root_volume(size_gb: int = ROOT_VOLUME_GB, spare_gb: int = 0) -> list[dict]:
    mappings = [{"DeviceName": "/dev/xvda",
                 "Ebs": {"VolumeSize": size_gb, "VolumeType": "gp3",
                         "DeleteOnTermination": True}}]
    if spare_gb:
        mappings.append({"DeviceName": SPARE_DEVICE,
                         "Ebs": {"VolumeSize": spare_gb, "VolumeType": "gp3",
                                 "DeleteOnTermination": True}})
    return mappings


def image_fingerprint(distro: str, base_image_id: str, pythons: Sequence[str],
                      script: Path = BOOTSTRAP_SCRIPT) -> str:
    config = {"family": family(distro), "base_image": base_image_id,
              "root_volume_gb": ROOT_VOLUME_GB, "pythons": sorted(pythons),
              "user": CONTRACT_USER}
    return images_.fingerprint(config, [script, USER_DATA])


def ensure_image(ctx: Context, aws: AWS, distro: str, pythons: Sequence[str], *,
                 instance_type: str = BUILD_INSTANCE_TYPE,
                 pip_index_url: str | None = None) -> images_.Image:
    """The dev image of *distro*: reused when its fingerprint matches, else built.

    *pip_index_url* is only where the builder fetches Mercurial from, not part of the
    image's recipe, so it is left out of the fingerprint.
    """
    account = aws.state
    owner_id, pattern = platforms.LINUX_DISTROS[distro]
    base = images_.find_base_image(aws.session, owner_id, pattern)
    console.get().info(f"{distro}: base image {base.id} {base.name}")
    fp = image_fingerprint(distro, base.id, pythons)
    host_key = generate_host_key()

    def provision(instance: Instance) -> None:
        with ctx.state.run_dir("linux-image-") as run_dir:
            host = hosts.instance_host(
                instance_id=instance.id, address=instance.address,
                host_public_key=host_key.public, known_hosts=run_dir / "known_hosts",
                ssh_config=ctx.ssh_config, user=base_user(distro), key_path=account.key_path)
            with console.get().step(f"connect to {host.target} (up to {host.wait:.0f}s "
                                    "for boot)"):
                conn = host.connect()
            with conn:
                linux.provision(conn, CONTRACT_USER, account.public_key, pythons,
                                prefix=f"[{distro}] ", pip_index_url=pip_index_url)

    return images_.ensure_image(
        aws.session, family=family(distro), fp=fp, owner=aws.owner, base_image_id=base.id,
        instance_type=instance_type, provision=provision,
        security_group_ids=[account.security_group_ids["linux"]], key_name=account.key_name,
        instance_profile_arn=account.instance_profile_arn or None,
        user_data=user_data(host_key), platform="linux",
        block_device_mappings=_root_volume(), spot=aws.options.spot)


def ensure_images(ctx: Context, aws: AWS, distros: Sequence[str], pythons: Sequence[str], *,
                  parallel: bool = False,
                  pip_index_url: str | None = None) -> list[images_.Image]:
    """The dev image of each distro, one after the other or all at once."""
    if not parallel or len(distros) < 2:
        return [ensure_image(ctx, aws, d, pythons, pip_index_url=pip_index_url)
                for d in distros]
    return _build_parallel(ctx, aws, distros, pythons, pip_index_url)


def _build_parallel(ctx: Context, aws: AWS, distros: Sequence[str], pythons: Sequence[str],
                    pip_index_url: str | None) -> list[images_.Image]:
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
            results[distro] = ensure_image(ctx, aws, distro, pythons,
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
        terminate_active(aws.session)
        raise
    return [results[d] for d in distros]


@contextlib.contextmanager
def temporary_hosts(ctx: Context, aws: AWS, *, count: int, distro: str, instance_type: str,
                    needs_disk: bool = False) -> Iterator[list[hosts.Host]]:
    """*count* temporary instances of *distro*'s dev image (built first if missing)."""
    account = aws.state
    image = ensure_image(ctx, aws, distro, platforms.LINUX_PYTHONS)
    # One user data for all: instances of one launch share the host key (they are
    # pinned per instance id, and all are ours and short-lived).
    host_key = generate_host_key()
    with ctx.state.run_dir("linux-") as run_dir, temporary_instances(
            aws.session, owner=aws.owner, image_id=image.id, instance_type=instance_type,
            count=count, security_group_ids=[account.security_group_ids["linux"]],
            key_name=account.key_name, user_data=user_data(host_key),
            instance_profile_arn=account.instance_profile_arn or None,
            purpose=f"linux-{distro}", spot=aws.options.spot,
            block_device_mappings=_root_volume(spare_gb=32 if needs_disk else 0),
    ) as instances:
        yield [hosts.instance_host(
            instance_id=i.id, address=i.address, host_public_key=host_key.public,
            known_hosts=run_dir / "known_hosts", ssh_config=ctx.ssh_config,
            user=CONTRACT_USER, key_path=account.key_path,
            block_device=SPARE_DEVICE if needs_disk else None) for i in instances]
