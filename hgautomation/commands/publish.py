"""``publish-windows-artifacts``: wheels to PyPI; every file (wheels and installers) and
latest.dat to mercurial-scm.org, as the release directory has always held them.

Order: read what the released revision declares (its tag by default), find
that whole artifact set, twine check, print the plan (``--dry-run``
stops there); then check both destinations (credentials, host key, conflicting
files) before anything is sent; then PyPI, then the release host.
"""

from __future__ import annotations

from dataclasses import dataclass

from hgautomation import console, errors, options
from hgautomation.commands import template
from hgautomation.context import Context
from hgautomation.declare import Command, Option
from hgautomation.options import HostSpec
from hgautomation.publish import artifacts


@dataclass(frozen=True)
class PublishOptions:
    template: str
    mercurial_version: str
    revision: str | None
    pypi: bool
    mercurial_scm_org: bool
    ssh_username: str | None
    ssh_host: HostSpec
    ssh_port: int | None
    release_dir: str
    repository: str | None
    repository_url: str | None
    dry_run: bool


def main(ctx: Context, opts: PublishOptions) -> int:
    out = console.get()
    version = opts.mercurial_version  # validated by options.version
    if not opts.pypi and not opts.mercurial_scm_org:
        raise errors.UsageError("--no-pypi and --no-mercurial-scm-org leave nothing to do")
    if opts.pypi and "+" in version:
        raise errors.UsageError(f"PyPI does not accept local versions like {version!r}",
                                hint="publish with --no-pypi, or a public version")
    builds, node = _declared_builds(ctx, opts.revision or version)
    dist = ctx.hg_repo / "dist"
    with out.step(f"checking the artifacts for {version} in {dist}"):
        found = artifacts.collect(dist, version, builds)
    wheels = [a for a in found if a.is_wheel]

    from hgautomation.publish import pypi

    with out.step(f"twine check ({len(wheels)} wheels)"):
        pypi.check_wheels(wheels)

    repo = pypi.open_repository(opts.repository, opts.repository_url) if opts.pypi else None
    host_label = f"{opts.ssh_host.address}:{opts.release_dir.rstrip('/')}/"
    rows, files = [], []
    for a in found:
        dests = [host_label + a.name] if opts.mercurial_scm_org else []
        to = ["release host"] if opts.mercurial_scm_org else []
        if a.is_wheel and repo is not None:
            dests.insert(0, repo.display)
            to.insert(0, "PyPI")
        rows.append((a.name, f"{a.size:,}", out.digest(a.sha256), ", ".join(to) or "-"))
        files.append({"name": a.name, "size": a.size, "sha256": a.sha256,
                      "destinations": dests})
    if repo is not None:
        out.info(f"PyPI: {repo.display}")
    if opts.mercurial_scm_org:
        out.info(f"release host: {host_label}")
    out.table(("file", "size", "sha256", "to"), rows,
              title=f"Mercurial {version}: {len(found)} files")
    document = {"version": version, "revision": node, "dry_run": opts.dry_run,
                "files": files, "pypi": None, "release_host": None}
    if opts.dry_run:
        out.result("dry run: nothing sent")
        out.emit(document)
        return 0

    if not opts.mercurial_scm_org:
        return _publish(ctx, opts, version, repo, wheels, found, None, document)
    from hgautomation import ssh

    host = opts.ssh_host
    target = ssh.resolve(host.address, user=opts.ssh_username or host.user,
                         port=opts.ssh_port or host.port, ssh_config=ctx.ssh_config,
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
        return _publish(ctx, opts, version, repo, wheels, found, conn, document)


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


def _publish(ctx: Context, opts: PublishOptions, version, repo, wheels, found,
             conn, document: dict) -> int:
    from hgautomation.publish import pypi, release_host

    out = console.get()
    directory = opts.release_dir
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


COMMAND = Command(
    "publish-windows-artifacts",
    options=(
        template(),
        Option("mercurial_version", metavar="VERSION", validator=options.version,
               help="Mercurial version being released (e.g. 7.2.1)"),
        Option("-r", "--revision",
               help="the released revision, whose declaration (its CI's Windows wheel "
                    "jobs, else pyproject.toml) names the wheels (default: the tag "
                    "VERSION)"),
        Option("--no-pypi", kind="off", help="do not upload wheels to PyPI"),
        Option("--no-mercurial-scm-org", kind="off",
               help="do not upload to mercurial-scm.org (wheels, installers, latest.dat)"),
        Option("--ssh-username", settings=("publish.ssh-username",),
               help="user name on the release host (default: --ssh-host's, else the ssh "
                    "config's, else the local user)"),
        Option("--ssh-host", default=options.parse_host_spec("mercurial-scm.org"),
               validator=options.parse_host_spec, metavar="[USER@]HOST[:PORT]",
               settings=("publish.ssh-host",),
               help="release host, resolved as ssh resolves it (default: mercurial-scm.org)"),
        Option("--ssh-port", validator=options.port,
               help="SSH port of the release host (default: the ssh config's, else 22)"),
        Option("--release-dir", default="/var/www/release/windows",
               settings=("publish.release-dir",),
               help="directory for the wheels, installers and latest.dat on the release "
                    "host (default: %(default)s)"),
        # Empty would mean the default (PyPI itself): `--repository-url "$UNSET"`.
        Option("--repository", validator=options.non_empty,
               help="twine repository name from .pypirc (default: TWINE_REPOSITORY, else "
                    "pypi)"),
        Option("--repository-url", validator=options.non_empty,
               help="upload URL of the package index (default: TWINE_REPOSITORY_URL, else "
                    "the repository's)"),
        Option("--dry-run", kind="flag",
               help="check the artifacts and print the plan; send nothing"),
    ),
    record=PublishOptions,
    flow=main,
    examples=(
        "{prog} publish-windows-artifacts 7.2.4 --dry-run",
        "{prog} publish-windows-artifacts 7.2.4 --ssh-username alice",
    ),
    json_keys={"": "dry_run files pypi release_host revision version",
               "files[]": "destinations name sha256 size",
               "pypi": "already_there repository uploaded",
               "release_host": "already_there directory host uploaded"},
)
