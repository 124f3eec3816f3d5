"""Linux on EC2: the dev image of each distro, and temporary hosts made from it.

:func:`ensure_image` builds (or reuses, by fingerprint) ``hg-linux-dev-<distro>``;
:func:`temporary_hosts` launches instances of it and yields them as pinned
:class:`~hgautomation.hosts.Host` records. Each instance gets a host key generated
here (cloud-init user data), pinned before the first connection.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from hgautomation import console, hosts, linux, platforms
from hgautomation.aws import deadman
from hgautomation.aws import images as images_
from hgautomation.aws.account import AWS
from hgautomation.aws.instances import Instance, temporary_instances, terminate_active
from hgautomation.context import Context
from hgautomation.ssh.hostkeys import HostKey, generate_host_key

BUILD_INSTANCE_TYPE = platforms.LINUX_BUILDER_INSTANCE_TYPE
CONTRACT_USER = "hg"
ROOT_VOLUME_GB = 32
SPARE_DEVICE = "/dev/sdf"  # attached with needs_disk; Nitro exposes it as an nvme disk
DEFAULT_ROOT_DEVICE = "/dev/xvda"  # only if the image does not say (it always should)
DEFAULT_CLONE_URL = "https://www.mercurial-scm.org/repo/hg"
RECIPE_TAG = "hgautomation:recipe"
PYTHONS_TAG = "hgautomation:pythons"
BASE_TAG = images_.BASE_TAG
SCRIPTS_TAG = "hgautomation:scripts"  # the provisioning scripts alone
BOOTSTRAP_SCRIPT = linux.SCRIPTS / "bootstrap-debian.sh"
USER_DATA = linux.SCRIPTS / "user-data.yaml"
REQUIREMENTS_SCRIPT = linux.SCRIPTS / "python-requirements.sh"


def family(distro: str) -> str:
    return f"hg-linux-dev-{distro}"


def base_user(distro: str) -> str:
    """The login user of the distro's official images."""
    return "admin" if distro.startswith("debian") else "ubuntu"


def user_data(host_key: HostKey) -> str:
    template = USER_DATA.read_text()
    indented = "\n".join("    " + line for line in host_key.private.strip().splitlines())
    return (template.replace("@HOST_PRIVATE_KEY@", indented)
            .replace("@HOST_PUBLIC_KEY@", host_key.public))


def _block_devices(root_device: str, size_gb: int = ROOT_VOLUME_GB,
                   spare_gb: int = 0) -> list[dict]:
    """The root volume resized (on the image's own root device name), and a spare disk."""
    mappings = [{"DeviceName": root_device,
                 "Ebs": {"VolumeSize": size_gb, "VolumeType": "gp3",
                         "DeleteOnTermination": True}}]
    if spare_gb:
        mappings.append({"DeviceName": SPARE_DEVICE,
                         "Ebs": {"VolumeSize": spare_gb, "VolumeType": "gp3",
                                 "DeleteOnTermination": True}})
    return mappings


def recipe_fingerprint(distro: str, clone_url: str = DEFAULT_CLONE_URL, rust: bool = True,
                       script: Path = BOOTSTRAP_SCRIPT) -> str:
    """What an image of *distro* is made of, but for its Pythons: our scripts, the
    base image *choice* (owner and name pattern: not the newest AMI of the day),
    the clone's source. A new base AMI alone does not change it."""
    owner_id, pattern = platforms.LINUX_DISTROS[distro]
    config = {"root_volume_gb": ROOT_VOLUME_GB, "user": CONTRACT_USER,
              "clone_url": clone_url, "rust": rust}
    return images_.recipe_fingerprint(family(distro), owner_id, pattern, config,
                                      [script, REQUIREMENTS_SCRIPT, USER_DATA])


def scripts_fingerprint(distro: str) -> str:
    """Our provisioning scripts for *distro*: an image made by other scripts is outdated."""
    return images_.fingerprint({"family": family(distro)},
                               [BOOTSTRAP_SCRIPT, REQUIREMENTS_SCRIPT, USER_DATA])


def image_fingerprint(recipe: str, pythons: Sequence[str]) -> str:
    return images_.fingerprint({"recipe": recipe, "pythons": sorted(set(pythons))})


def image_pythons(image: images_.Image) -> set[str]:
    """The Pythons an image of ours has (system3 always: it is the distro's)."""
    return {"system3", *filter(None, image.tags.get(PYTHONS_TAG, "").split(","))}


def _stale(recipe: str) -> Callable[[images_.Image, images_.Image], bool]:
    """Images that go once *new* exists: other recipes, and older builds of new's own
    fingerprint. Images of the same recipe with other Pythons stay: they serve runs."""
    def is_stale(other: images_.Image, new: images_.Image) -> bool:
        return other.tags.get(RECIPE_TAG) != recipe or other.fingerprint == new.fingerprint
    return is_stale


def report_newer_base(aws: AWS, distro: str, image: images_.Image,
                      base: images_.Image | None = None) -> None:
    """Say so when the distro has a newer base image (*base*, looked up if not given)
    than *image* was built on."""
    if base is None:
        owner_id, pattern = platforms.LINUX_DISTROS[distro]
        base = images_.find_base_image(aws.session, owner_id, pattern)
    images_.report_newer_base(
        image, base, title=platforms.distro_title(distro),
        rebuild=f"bootstrap-linux-dev --distros {distro} --refresh-images")


def ensure_image(ctx: Context, aws: AWS, distro: str, pythons: Sequence[str], *,
                 instance_type: str = BUILD_INSTANCE_TYPE, refresh: bool = False,
                 clone_url: str = DEFAULT_CLONE_URL, rust: bool = True,
                 pip_index_url: str | None = None) -> images_.Image:
    """The dev image of *distro* with *pythons*: reused when one of the same recipe and
    Pythons exists (a newer base AMI is reported, not acted on), else built on the
    newest base image. ``refresh``: build anyway.

    *pip_index_url* is only where the builder fetches Mercurial from, not part of the
    image's recipe, so it is left out of the fingerprint.
    """
    account = aws.state
    recipe = recipe_fingerprint(distro, clone_url, rust)
    fp = image_fingerprint(recipe, pythons)
    owner_id, pattern = platforms.LINUX_DISTROS[distro]
    base = images_.find_base_image(aws.session, owner_id, pattern)
    console.get().info(f"{distro}: newest base image {base.id} {base.name}")
    host_key = generate_host_key()
    spec = aws.launch_spec(
        "linux", image_id=base.id, instance_type=instance_type, user_data=user_data(host_key),
        block_device_mappings=_block_devices(base.root_device_name or DEFAULT_ROOT_DEVICE))

    def provision(instance: Instance) -> None:
        with ctx.state.run_dir("linux-image-") as run_dir:
            host = hosts.instance_host(
                instance_id=instance.id, address=instance.address,
                host_public_key=host_key.public, known_hosts=run_dir / "known_hosts",
                ssh_config=ctx.ssh_config, user=base_user(distro), key_path=account.key_path,
                heartbeat=deadman.heartbeat("linux"))
            with console.get().step(f"connect to {host.target} (up to {host.wait:.0f}s "
                                    "for boot)"):
                conn = host.connect()
            with conn:
                linux.provision(conn, CONTRACT_USER, account.public_key, pythons,
                                prefix=f"[{distro}] ", pip_index_url=pip_index_url,
                                clone_url=clone_url, rust=rust)

    image = images_.ensure_image(
        aws.session, spec, family=family(distro), fp=fp, provision=provision,
        refresh=refresh, is_stale=_stale(recipe),
        extra_tags={RECIPE_TAG: recipe, SCRIPTS_TAG: scripts_fingerprint(distro),
                    PYTHONS_TAG: ",".join(sorted(set(pythons))), BASE_TAG: base.id})
    report_newer_base(aws, distro, image, base)  # a reused image may be on an older one
    return image


def image_for_tests(ctx: Context, aws: AWS, distro: str, python: str) -> images_.Image:
    """The newest dev image made by the current scripts that has *python* (whatever
    other Pythons, clone or Rust choice it was built with); one with every Python is
    built only if none has it."""
    scripts = scripts_fingerprint(distro)
    usable = [i for i in images_.find_ours(aws.session, family(distro))
              if i.state == "available" and i.tags.get(SCRIPTS_TAG) == scripts
              and python in image_pythons(i)]
    if usable:
        image = usable[-1]
        console.get().info(f"image {image.id} {image.name} has {python}")
        report_newer_base(aws, distro, image)
        return image
    console.get().info(f"no {family(distro)} image of the current scripts has {python}: "
                       "building one with every Python (bootstrap-linux-dev does this ahead)")
    return ensure_image(ctx, aws, distro, platforms.LINUX_PYTHONS)


def ensure_images(ctx: Context, aws: AWS, distros: Sequence[str], pythons: Sequence[str], *,
                  parallel: bool = False, refresh: bool = False,
                  clone_url: str = DEFAULT_CLONE_URL, rust: bool = True,
                  pip_index_url: str | None = None,
                  instance_type: str = BUILD_INSTANCE_TYPE) -> list[images_.Image]:
    """The dev image of each distro, one after the other or all at once."""
    options = {"refresh": refresh, "clone_url": clone_url, "rust": rust,
               "pip_index_url": pip_index_url, "instance_type": instance_type}
    if not parallel or len(distros) < 2:
        return [ensure_image(ctx, aws, d, pythons, **options) for d in distros]
    return _build_parallel(ctx, aws, distros, pythons, options)


def _build_parallel(ctx: Context, aws: AWS, distros: Sequence[str], pythons: Sequence[str],
                    options: dict) -> list[images_.Image]:
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
            results[distro] = ensure_image(ctx, aws, distro, pythons, **options)
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
                    python: str = "system3",
                    needs_disk: bool = False) -> Iterator[list[hosts.Host]]:
    """*count* temporary instances of *distro*'s dev image with *python* (built first
    if there is none)."""
    account = aws.state
    image = image_for_tests(ctx, aws, distro, python)
    # One user data for all: instances of one launch share the host key (they are
    # pinned per instance id, and all are ours and short-lived).
    host_key = generate_host_key()
    spec = aws.launch_spec(
        "linux", image_id=image.id, instance_type=instance_type, user_data=user_data(host_key),
        purpose=f"linux-{distro}",
        block_device_mappings=_block_devices(image.root_device_name or DEFAULT_ROOT_DEVICE,
                                             spare_gb=32 if needs_disk else 0))
    with ctx.state.run_dir("linux-") as run_dir, \
            temporary_instances(aws.session, spec, count=count) as instances:
        yield [hosts.instance_host(
            instance_id=i.id, address=i.address, host_public_key=host_key.public,
            known_hosts=run_dir / "known_hosts", ssh_config=ctx.ssh_config,
            user=CONTRACT_USER, key_path=account.key_path,
            block_device=SPARE_DEVICE if needs_disk else None,
            heartbeat=deadman.heartbeat("linux")) for i in instances]
