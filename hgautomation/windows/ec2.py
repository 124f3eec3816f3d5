"""Windows on EC2: the dev image (built via :mod:`hgautomation.aws.images`) and temporary hosts.

Host keys are pinned the same way for every instance: the tool generates a
fresh ed25519 host key, hands it to the instance in its user data (the
first-boot script installs it before sshd starts) and pins its public half,
under the instance id, in a per-run known_hosts. The first connection is
verified; nothing is ever accepted on trust.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Callable

from hgautomation import console, errors, hgrepo, hosts, platforms, ssh
from hgautomation.aws import deadman
from hgautomation.aws.account import AWS
from hgautomation.context import Context
from hgautomation.ssh.hostkeys import HostKey, generate_host_key
from hgautomation.windows import recipes
from hgautomation.windows.artifacts import sftp_path
from hgautomation.windows.powershell import SCRIPTS_DIR

IMAGE_FAMILY = "hg-windows-dev"
WINDOWS_USER = "Administrator"
# Windows boot, first-boot tasks and (on Server 2022) the OpenSSH capability
# download take minutes before sshd answers.
BOOT_WAIT = 1500.0
# The base image's 30 GB root does not hold VS Build Tools, twelve Pythons and Rust.
ROOT_VOLUME_GB = 100
ROOT_DEVICE = "/dev/sda1"  # Amazon's Windows images
# Windows features that need SYSTEM / Windows Update rather than an SSH logon:
# .NET 3.5 is what the WiX toolset runs on.
SSM_FEATURES = ("NET-Framework-Core",)
PROVISION_TIMEOUT = 4 * 3600.0
DEPS_SCRIPT = "contrib/install-windows-dependencies.ps1"
# Read by install-windows-dependencies.ps1 from its own directory ($PSScriptRoot).
DEPS_COMPANIONS = ("contrib/vs2022-settings.json",)



@dataclass(frozen=True)
class MachineOptions:
    """Which Windows machine a flow runs on: base image and instance type."""

    base_image_name: str = platforms.DEFAULT_WINDOWS_BASE_IMAGE
    instance_type: str = platforms.WINDOWS_INSTANCE_TYPES["build"]


def root_volume() -> list[dict]:
    return [{"DeviceName": ROOT_DEVICE,
             "Ebs": {"VolumeSize": ROOT_VOLUME_GB, "VolumeType": "gp3",
                     "DeleteOnTermination": True}}]


# -- the dependency script comes from the revision being worked on -------------

@dataclass(frozen=True)
class DepsFiles:
    """contrib/install-windows-dependencies.ps1 and its companions at one revision."""

    node: str
    files: dict[str, bytes]  # repo path -> content

    @property
    def script(self) -> bytes:
        return self.files[DEPS_SCRIPT]


def read_deps_files(repo, node: str) -> DepsFiles:
    """The dependency installer at ``node``; its absence is a clear LocalRepoError."""
    files: dict[str, bytes] = {}
    for path in (DEPS_SCRIPT, *DEPS_COMPANIONS):
        result = repo.run("cat", "-r", node, path, check=False)
        if result.returncode == 0:
            files[path] = result.stdout
        elif path == DEPS_SCRIPT:
            raise errors.LocalRepoError(
                f"revision {node[:12]} of {repo.root} has no {DEPS_SCRIPT}; the Windows "
                "image is provisioned by the checkout's own script",
                hint="use a revision of Mercurial that ships it (-r)")
    return DepsFiles(node, files)


def image_fingerprint(deps: DepsFiles,
                      base_image_name: str = platforms.DEFAULT_WINDOWS_BASE_IMAGE) -> str:
    """Hash of our recipe: the base image *choice* (Amazon's, name pattern), disk, our
    scripts, the checkout's installer. A new monthly Windows AMI does not change it."""
    from hgautomation.aws import images

    config = {
        "root_volume_gb": ROOT_VOLUME_GB,
        "ssm_features": list(SSM_FEATURES),
        "bootstrap_mercurial": recipes.BOOTSTRAP_MERCURIAL,
        "user": WINDOWS_USER,
    }
    ours = [SCRIPTS_DIR / name for name in
            ("prelude.ps1", "userdata.ps1", "provision.ps1", "prepare_image.ps1")]
    theirs = [path.encode() + b"\0" + deps.files[path] for path in sorted(deps.files)]
    return images.recipe_fingerprint(IMAGE_FAMILY, platforms.AMAZON_OWNER_ID, base_image_name,
                                     config, [*ours, *theirs])


def rebuild_command(deps: DepsFiles, base_image_name: str) -> str:
    """The command line that rebuilds the image for *deps* on the newest base image."""
    words = ["bootstrap-windows-dev", "-r", deps.node[:12]]
    if base_image_name != platforms.DEFAULT_WINDOWS_BASE_IMAGE:
        words += ["--base-image-name", base_image_name]
    return shlex.join([*words, "--refresh-image"])


# -- temporary Windows hosts ---------------------------------------------------

def host_for(instance, host_key: HostKey, account, known_hosts, ssh_config) -> hosts.Host:
    """The Host record of a Windows instance, its generated host key pinned under its id."""
    return hosts.instance_host(
        instance_id=instance.id, address=instance.address, host_public_key=host_key.public,
        known_hosts=known_hosts, ssh_config=ssh_config, user=WINDOWS_USER,
        key_path=account.key_path, wait=BOOT_WAIT, heartbeat=deadman.heartbeat("windows"))


def first_boot_user_data(aws: AWS, host_key: HostKey) -> str:
    """The user data of a new Windows instance: our key authorized, *host_key* installed."""
    return recipes.user_data(aws.state.public_key, host_key.private, host_key.public)


@contextlib.contextmanager
def windows_host(ctx: Context, aws: AWS, *, image_id: str, instance_type: str,
                 purpose: str, instance_profile: bool = True) -> Iterator[hosts.Host]:
    """One temporary Windows instance of ``image_id``, reachable over SSH; terminated on exit.
    ``instance_profile=False``: no AWS credentials on it (it runs untrusted code)."""
    from hgautomation.aws.instances import temporary_instances

    host_key = generate_host_key()
    spec = aws.launch_spec("windows", image_id=image_id, instance_type=instance_type,
                           user_data=first_boot_user_data(aws, host_key), purpose=purpose)
    if not instance_profile:
        spec = dataclasses.replace(spec, instance_profile_arn=None)
    with ctx.state.run_dir(f"windows-{purpose}-") as run_dir, \
            temporary_instances(aws.session, spec) as [instance]:
        yield host_for(instance, host_key, aws.state, run_dir / "known_hosts", ctx.ssh_config)


@contextlib.contextmanager
def pushed_host(ctx: Context, aws: AWS, machine: MachineOptions, repo: hgrepo.LocalRepo,
                deps: DepsFiles, *, purpose: str, instance_profile: bool = True
                ) -> Iterator[tuple[hosts.Host, ssh.Connection]]:
    """The shared start of every build/test flow: dev image for ``deps`` (reused by
    fingerprint) → one temporary instance (``instance_profile``: see
    :func:`windows_host`) → connection → ``deps.node`` pushed to C:\\hgdev\\src."""
    node = deps.node
    image = ensure_image(ctx, aws, deps, base_image_name=machine.base_image_name)
    with windows_host(ctx, aws, image_id=image.id, instance_type=machine.instance_type,
                      purpose=purpose, instance_profile=instance_profile) as host, \
            connect(host) as conn:
        with console.get().step(f"push {node[:12]} to {recipes.SOURCE}"):
            hgrepo.push(repo, node, conn.target, host.known_hosts,
                        remote_path=recipes.REMOTE_SOURCE_URL_PATH,
                        remote_hg=recipes.REMOTE_HG_CMD, label=f"[{host.label}] ")
        yield host, conn


def connect(host: hosts.Host) -> ssh.Connection:
    """Connect, waiting (bounded) for the first boot to bring sshd up."""
    with console.get().step(f"connect to {host.target} (waiting up to {host.wait:.0f}s "
                            "for first boot)"):
        return host.connect()


def run(conn: ssh.Connection, script, *, prefix: str = "", check: bool = True,
        timeout: float | None = None) -> int:
    """Run a rendered :class:`~hgautomation.windows.powershell.Script` over SSH."""
    # Windows's login shell is PowerShell: the words go as they are (no POSIX wrapper).
    return conn.run(script.argv, prefix=prefix, check=check, timeout=timeout, posix=False)


def mkdirs(conn: ssh.Connection, windows_path: str) -> None:
    """Create a directory and its parents over SFTP (existing ones are fine)."""
    parts = sftp_path(windows_path).strip("/").split("/")
    for i in range(2, len(parts) + 1):  # parts[0] is the drive ("C:")
        path = "/" + "/".join(parts[:i])
        if not conn.exists(path):
            try:
                conn.sftp.mkdir(path)
            except OSError as exc:
                raise errors.RemoteCommandError(
                    f"{conn.target}: cannot create {windows_path} (SFTP {path}): {exc}") \
                    from exc


# -- the dev image -------------------------------------------------------------

def provisioner(ctx: Context, aws: AWS, deps: DepsFiles, host_key: HostKey) -> Callable:
    """The provisioning callback for :func:`hgautomation.aws.images.build_image`."""
    from hgautomation.aws import ssm

    session, account = aws.session, aws.state

    def provision(instance) -> None:
        out = console.get()
        with ctx.state.run_dir("windows-image-") as run_dir:
            host = host_for(instance, host_key, account, run_dir / "known_hosts",
                            ctx.ssh_config)
            with connect(host) as conn:
                # sshd answering means first boot is done; the SSM agent starts
                # earlier in boot, so it is online by now.
                with out.step(f"Windows features via SSM: {', '.join(SSM_FEATURES)}"):
                    ssm.run_command(session, instance.id, [
                        "$ErrorActionPreference = 'Stop'",
                        *(f"Install-WindowsFeature -Name {f} | Out-Null" for f in SSM_FEATURES),
                    ], document=ssm.WINDOWS_DOCUMENT, timeout=1800.0,
                        comment="hgautomation: Windows features")
                with out.step(f"upload {DEPS_SCRIPT} of {deps.node[:12]}"):
                    mkdirs(conn, recipes.PROVISION_DIR)
                    for path, data in deps.files.items():
                        remote = sftp_path(recipes.PROVISION_DIR) + "/" + path.rsplit("/", 1)[1]
                        conn.putfo(io.BytesIO(data), remote, size=len(data),
                                   description=path)
                deps_remote = recipes.PROVISION_DIR + "\\" + DEPS_SCRIPT.rsplit("/", 1)[1]
                with out.step("provision (install-windows-dependencies.ps1, bootstrap venv)"):
                    run(conn, recipes.provision_script(deps_remote), prefix="  ",
                        timeout=PROVISION_TIMEOUT)
                with out.step("prepare for imaging (antivirus check, keys removed)"):
                    run(conn, recipes.prepare_image_script(), prefix="  ", timeout=600)

    return provision


def ensure_image(ctx: Context, aws: AWS, deps: DepsFiles, *,
                 base_image_name: str = platforms.DEFAULT_WINDOWS_BASE_IMAGE,
                 instance_type: str = platforms.WINDOWS_INSTANCE_TYPES["bootstrap"],
                 refresh: bool = False):
    """The dev image for the dependency script at ``node``: reused by recipe (a newer base
    AMI is reported, not acted on), else built on the newest base. ``refresh``: build
    anyway."""
    from hgautomation.aws import images

    out = console.get()
    base = images.find_base_image(aws.session, platforms.AMAZON_OWNER_ID, base_image_name)
    out.info(f"base image {base.id} {base.name}")
    fp = image_fingerprint(deps, base_image_name)
    out.detail(f"{IMAGE_FAMILY} fingerprint {fp}")
    host_key = generate_host_key()
    spec = aws.launch_spec("windows", image_id=base.id, instance_type=instance_type,
                           user_data=first_boot_user_data(aws, host_key),
                           block_device_mappings=root_volume())
    image = images.ensure_image(aws.session, spec, family=IMAGE_FAMILY, fp=fp,
                                provision=provisioner(ctx, aws, deps, host_key),
                                refresh=refresh, extra_tags={images.BASE_TAG: base.id})
    # A reused image may be on an older base.
    images.report_newer_base(image, base, title="Windows",
                             rebuild=rebuild_command(deps, base_image_name))
    return image
