"""``bootstrap-linux-dev``: provision Debian/Ubuntu hosts (``--host``) or build EC2 images.

With ``--host root@box`` the shipped ``bootstrap-debian.sh`` turns an existing machine
into a contract host (user, sudo, key, /hgdev, Pythons, venv-bootstrap, clone); the local
repository is then pushed into ``/hgdev/src`` so runs only send new changesets.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from hgautomation import console, errors, hgrepo, hosts, linux, options, platforms
from hgautomation.commands import aws_options, host_options, open_aws, static_hosts
from hgautomation.context import Context
from hgautomation.declare import Command, Option
from hgautomation.options import AWSOptions, StaticHosts

_BUILDER_PRICE = platforms.hourly_estimate(platforms.LINUX_BUILDER_INSTANCE_TYPE) or 0.0


@dataclass(frozen=True)
class BootstrapLinuxOptions:
    hosts: StaticHosts
    pythons: tuple[str, ...]
    user: str
    authorized_key: str | None
    hg: str
    pip_index_url: str | None
    distros: tuple[str, ...]
    parallel: bool
    no_rust: bool
    refresh_images: bool
    clone_url: str | None
    builder_instance_type: str
    aws: AWSOptions


def main(ctx: Context, opts: BootstrapLinuxOptions) -> int:
    if not opts.hosts.specs:
        return _images(ctx, opts)
    out = console.get()
    if opts.authorized_key:
        key_file = Path(opts.authorized_key).expanduser()
    else:
        key_file = Path(f"{hosts.tool_key(ctx.state.keys, create=True)}.pub")
    try:
        public_key = key_file.read_text().strip()
    except OSError as exc:
        raise errors.ConfigurationError(f"cannot read public key {key_file}: {exc.strerror}") \
            from exc
    if not public_key.startswith(("ssh-", "ecdsa-", "sk-")):
        raise errors.ConfigurationError(f"{key_file} does not hold an OpenSSH public key")
    repo = None
    try:
        repo = hgrepo.LocalRepo(ctx.hg_repo, hg=opts.hg)
    except errors.LocalRepoError:
        out.warn("no local Mercurial repository: /hgdev/src stays empty until the first run")
    targets = static_hosts(ctx, opts.hosts, provisioning=True)
    for host in targets:
        with out.step(f"provision {host.target} ({','.join(opts.pythons)})"), \
                host.connect() as conn:
            linux.provision(conn, opts.user, public_key, opts.pythons,
                            prefix=f"[{host.label}] " if len(targets) > 1 else "",
                            pip_index_url=opts.pip_index_url, clone_url=opts.clone_url,
                            rust=not opts.no_rust)
        if repo is not None:
            # Seed /hgdev/src as the contract user, so later pushes are incremental.
            node = hgrepo.resolve_revision(repo, ".")
            identity = Path(str(key_file)[:-4]) if str(key_file).endswith(".pub") else None
            as_user = replace(host.target, user=opts.user,
                              identity_files=(identity,) if identity and identity.exists()
                              else host.target.identity_files,
                              identities_only=bool(identity and identity.exists()))
            with out.step(f"seed /hgdev/src on {as_user}"):
                result = hgrepo.push(repo, node, as_user, host.known_hosts)
                out.info(f"pushed {result.changesets} changesets" if result.pushed
                         else "/hgdev/src has the local history already")
            with out.step(f"test requirements on {host.target}"), host.connect() as conn:
                linux.install_test_requirements(conn, opts.user, opts.pip_index_url)
    out.result(f"{len(targets)} host{'s' if len(targets) != 1 else ''} provisioned")
    return 0


def _images(ctx: Context, opts: BootstrapLinuxOptions) -> int:
    from hgautomation.linux import ec2  # boto3: only for the EC2 path

    with open_aws(ctx, opts.aws, kinds=("linux",)) as aws:
        images = ec2.ensure_images(ctx, aws, opts.distros, opts.pythons,
                                   parallel=opts.parallel, refresh=opts.refresh_images,
                                   rust=not opts.no_rust,
                                   clone_url=opts.clone_url or ec2.DEFAULT_CLONE_URL,
                                   pip_index_url=opts.pip_index_url,
                                   instance_type=opts.builder_instance_type)
        console.get().table(["distro", "image", "name"],
                            [[d, i.id, i.name] for d, i in zip(opts.distros, images)],
                            title="Linux dev images:")
    return 0


COMMAND = Command(
    "bootstrap-linux-dev",
    options=(
        *host_options(),
        Option("--pythons", kind="list", choices=platforms.LINUX_PYTHONS,
               default=list(platforms.LINUX_PYTHONS), metavar="PYTHON",
               help="Pythons to install, 'a b' or 'a,b' (default: all: "
                    f"{','.join(platforms.LINUX_PYTHONS)})"),
        Option("--user", default="hg",
               help="with --host: the contract user to create (default: %(default)s)"),
        Option("--authorized-key", metavar="FILE",
               help="with --host: public key to authorize for that user (default: the "
                    "tool's own key in the state dir)"),
        Option("--hg", default="hg", metavar="PATH",
               help="local hg used to seed /hgdev/src (default: %(default)s)"),
        Option("--pip-index-url", metavar="URL",
               help="package index for Mercurial in venv-bootstrap, on --host machines or "
                    "EC2 image builders (default: PyPI)"),
        Option("--distros", kind="list", choices=tuple(platforms.LINUX_DISTROS),
               default=list(platforms.LINUX_DISTROS), metavar="DISTRO",
               help="distros, 'a b' or 'a,b' (default: all: "
                    f"{','.join(platforms.LINUX_DISTROS)})"),
        Option("--parallel", kind="flag", help="build the distro images at the same time"),
        Option("--no-rust", kind="flag",
               help="leave out the pinned Rust toolchain (rustup from static.rust-lang.org; "
                    "needed for --rust/--rhg runs and the cargo/rustfmt features)"),
        Option("--refresh-images", kind="flag",
               help="build the images even if up to date (e.g. on a newer base image)"),
        Option("--clone-url", metavar="URL", validator=options.repository_url,
               help="repository cloned into /hgdev/src: for EC2 images (default: "
                    "https://www.mercurial-scm.org/repo/hg); with --host only if given "
                    "(otherwise the local repository is pushed)"),
        Option("--builder-instance-type", metavar="TYPE",
               default=platforms.LINUX_BUILDER_INSTANCE_TYPE,
               settings=("linux.builder-instance-type",),
               help="EC2 instance type that builds the images, compiling the Pythons "
                    f"(default: %(default)s, 8 vCPUs, about ${_BUILDER_PRICE:.2f}/hour; the "
                    "build prints its type and price)"),
        *aws_options(),
    ),
    record=BootstrapLinuxOptions,
    flow=main,
    examples=(
        "{prog} bootstrap-linux-dev --distros debian12,ubuntu24.04",
        "{prog} bootstrap-linux-dev --host hg@buildbox --pythons 3.12,3.13",
    ),
)
