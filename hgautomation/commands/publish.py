"""`publish-windows-artifacts`: wheels to PyPI; every file (wheels and installers) and
latest.dat to mercurial-scm.org, as the release directory has always held them.

Order: read what the released revision declares (its tag by default), find
that whole artifact set, twine check, print the plan (``--dry-run``
stops there); then check both destinations (credentials, host key, conflicting
files) before anything is sent; then PyPI, then the release host.
"""

from __future__ import annotations

import argparse

from hgautomation import console, errors
from hgautomation.context import Context
from hgautomation.publish import artifacts


def main(ctx: Context, args: argparse.Namespace) -> int:
    out = console.get()
    version = args.mercurial_version  # validated by options.version
    if not args.pypi and not args.mercurial_scm_org:
        raise errors.UsageError("--no-pypi and --no-mercurial-scm-org leave nothing to do")
    if args.pypi and "+" in version:
        raise errors.UsageError(f"PyPI does not accept local versions like {version!r}",
                                hint="publish with --no-pypi, or a public version")
    builds, node = _declared_builds(ctx, args.revision or version)
    dist = ctx.hg_repo / "dist"
    with out.step(f"checking the artifacts for {version} in {dist}"):
        found = artifacts.collect(dist, version, builds)
    wheels = [a for a in found if a.is_wheel]

    from hgautomation.publish import pypi

    with out.step(f"twine check ({len(wheels)} wheels)"):
        pypi.check_wheels(wheels)

    repo = pypi.open_repository(args.repository, args.repository_url) if args.pypi else None
    host_label = f"{args.ssh_host.address}:{args.release_dir.rstrip('/')}/"
    rows, files = [], []
    for a in found:
        dests = [host_label + a.name] if args.mercurial_scm_org else []
        to = ["release host"] if args.mercurial_scm_org else []
        if a.is_wheel and repo is not None:
            dests.insert(0, repo.display)
            to.insert(0, "PyPI")
        rows.append((a.name, f"{a.size:,}", out.digest(a.sha256), ", ".join(to) or "-"))
        files.append({"name": a.name, "size": a.size, "sha256": a.sha256,
                      "destinations": dests})
    if repo is not None:
        out.info(f"PyPI: {repo.display}")
    if args.mercurial_scm_org:
        out.info(f"release host: {host_label}")
    out.table(("file", "size", "sha256", "to"), rows,
              title=f"Mercurial {version}: {len(found)} files")
    document = {"version": version, "revision": node, "dry_run": args.dry_run,
                "files": files, "pypi": None, "release_host": None}
    if args.dry_run:
        out.result("dry run: nothing sent")
        out.emit(document)
        return 0

    if not args.mercurial_scm_org:
        return _publish(ctx, args, version, repo, wheels, found, None, document)
    from hgautomation import ssh

    host = args.ssh_host
    target = ssh.resolve(host.address, user=args.ssh_username or host.user,
                         port=args.ssh_port or host.port, ssh_config=ctx.ssh_config,
                         identity_files=(ctx.identity,) if ctx.identity else ())
    with out.step(f"connecting to {target}"):
        try:
            conn = ssh.connect(target, known_hosts=ctx.state.known_hosts,
                               extra_known_hosts=target.user_known_hosts,
                               accept_new_host_key=False, wait=0)
        except errors.UnknownHostKeyError as exc:
            # Publishing never pins a key on first sight: say how to add it instead.
            files = [str(p) for p in target.user_known_hosts[:1]] + [str(ctx.state.known_hosts)]
            raise errors.UnknownHostKeyError(
                exc.message, hostname=exc.hostname, offered=exc.offered,
                hint=f"verify the fingerprint, then add the key to {' or '.join(files)}") \
                from None
    with conn:
        return _publish(ctx, args, version, repo, wheels, found, conn, document)


def _declared_builds(ctx: Context, revision: str):
    """What the released revision builds on Windows (default: the release's tag)."""
    from hgautomation import hgrepo
    from hgautomation.windows import declared

    repo = hgrepo.LocalRepo(ctx.hg_repo)
    try:
        node = hgrepo.resolve_revision(repo, revision)
    except errors.LocalRepoError as exc:
        raise errors.LocalRepoError(
            exc.message, hint="the released revision's declaration names the wheels: "
            "tag the release, or name its revision with --revision") from None
    return declared.read(repo, node), node


def _publish(ctx: Context, args: argparse.Namespace, version, repo, wheels, found,
             conn, document: dict) -> int:
    from hgautomation.publish import pypi, release_host

    out = console.get()
    directory = args.release_dir
    # Everything that can refuse is asked before the first byte goes anywhere.
    pypi_plan = host_plan = None
    if repo is not None:
        with out.step(f"reading what {repo.display} already has"):
            pypi_plan = pypi.plan(repo, wheels)
    if conn is not None:
        with out.step(f"reading what {conn.target.name}:{directory} already has"):
            release_host.check_directory(conn, directory)
            host_plan = release_host.plan(conn, directory, found)

    if pypi_plan is not None:
        for w in pypi_plan.already_there:
            out.info(f"PyPI: {w.name} already published (same sha256), skipped")
        pypi.upload(repo, pypi_plan.to_upload)
        with out.step(f"verifying {len(wheels)} wheels on {repo.display}"):
            pypi.verify(repo, wheels)
        out.result(f"PyPI: {len(pypi_plan.to_upload)} uploaded, "
                   f"{len(pypi_plan.already_there)} already there, all verified")
        document["pypi"] = {"repository": repo.display,
                            "uploaded": [w.name for w in pypi_plan.to_upload],
                            "already_there": [w.name for w in pypi_plan.already_there]}

    if host_plan is not None:
        for a in host_plan.already_there:
            out.info(f"{conn.target.name}: {a.name} already published (same sha256), skipped")
        release_host.remove_stale_parts(conn, directory, [a.name for a in found])
        release_host.upload(conn, directory, host_plan.to_upload)
        with out.step(f"verifying {len(found)} files on {conn.target.name}"):
            release_host.verify(conn, directory, found)
        with out.step(f"updating {release_host.LATEST}"):
            release_host.update_latest(conn, directory,
                                       release_host.latest_dat(version, found),
                                       ctx.state.backups)
        out.result(f"{conn.target.name}: {len(host_plan.to_upload)} uploaded, "
                   f"{len(host_plan.already_there)} already there, all verified; "
                   f"{release_host.LATEST} up to date")
        document["release_host"] = {"host": conn.target.name, "directory": directory,
                                    "uploaded": [a.name for a in host_plan.to_upload],
                                    "already_there": [a.name for a in host_plan.already_there]}
    out.emit(document)
    return 0
