"""`bootstrap-linux-dev`: provision Debian/Ubuntu hosts (``--host``) or build EC2 images.

With ``--host root@box`` the shipped ``bootstrap-debian.sh`` turns an existing machine
into a contract host (user, sudo, key, /hgdev, Pythons, venv-bootstrap, clone); the local
repository is then pushed into ``/hgdev/src`` so runs only send new changesets.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from hgautomation import console, errors, hgrepo, hosts, linux
from hgautomation.commands import open_aws, static_hosts
from hgautomation.context import Context


def main(ctx: Context, args: argparse.Namespace) -> int:
    if not args.host:
        return _images(ctx, args)
    out = console.get()
    if args.authorized_key:
        key_file = Path(args.authorized_key).expanduser()
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
        repo = hgrepo.LocalRepo(ctx.hg_repo, hg=args.hg)
    except errors.LocalRepoError:
        out.warn("no local Mercurial repository: /hgdev/src stays empty until the first run")
    wanted = static_hosts(args)
    targets = hosts.static_hosts(
        wanted.specs, known_hosts=ctx.state.known_hosts, ssh_config=ctx.ssh_config,
        identity=ctx.identity,
        accept_new_host_key=wanted.accept_new_host_key, default_user="root")
    for host in targets:
        with out.step(f"provision {host.target} ({','.join(args.pythons)})"), \
                host.connect() as conn:
            linux.provision(conn, args.user, public_key, args.pythons,
                            prefix=f"[{host.label}] " if len(targets) > 1 else "",
                            pip_index_url=args.pip_index_url, clone_url=args.clone_url,
                            rust=not args.no_rust)
        if repo is not None:
            # Seed /hgdev/src as the contract user, so later pushes are incremental.
            node = hgrepo.resolve_revision(repo, ".")
            identity = Path(str(key_file)[:-4]) if str(key_file).endswith(".pub") else None
            as_user = replace(host.target, user=args.user,
                              identity_files=(identity,) if identity and identity.exists()
                              else host.target.identity_files,
                              identities_only=bool(identity and identity.exists()))
            with out.step(f"seed /hgdev/src on {as_user}"):
                result = hgrepo.push(repo, node, as_user, host.known_hosts)
                out.info(f"pushed {result.changesets} changesets" if result.pushed
                         else "/hgdev/src has the local history already")
            with out.step(f"test requirements on {host.target}"), host.connect() as conn:
                linux.install_test_requirements(conn, args.user, args.pip_index_url)
    out.result(f"{len(targets)} host{'s' if len(targets) != 1 else ''} provisioned")
    return 0


def _images(ctx: Context, args: argparse.Namespace) -> int:
    from hgautomation.linux import ec2  # boto3: only for the EC2 path

    with open_aws(ctx, args, kinds=("linux",)) as aws:
        images = ec2.ensure_images(ctx, aws, args.distros, args.pythons,
                                   parallel=args.parallel, refresh=args.refresh_images,
                                   rust=not args.no_rust,
                                   clone_url=args.clone_url or ec2.DEFAULT_CLONE_URL,
                                   pip_index_url=args.pip_index_url)
        console.get().table(["distro", "image", "name"],
                            [[d, i.id, i.name] for d, i in zip(args.distros, images)],
                            title="Linux dev images:")
    return 0
