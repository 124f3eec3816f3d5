"""Windows builds: wheels, Inno Setup and WiX installers, on a temporary instance.

Flow: resolve the revision, read its dependency installer and its declared
builds (install script + pyproject.toml), plan the matrix cells (every error
before any machine starts) → dev image (reused by
fingerprint) → one instance → hg push → per cell: update + purge, build, copy
the artifact back → table.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from hgautomation import console, hgrepo
from hgautomation.commands import open_aws, windows_machine
from hgautomation.context import Context
from hgautomation.windows import declared, recipes


def build_all(ctx: Context, args: argparse.Namespace) -> int:
    recipes.check_version(args.version, "build-all-windows-packages")
    return _build(ctx, args, "build-all-windows-packages", recipes.KINDS, args.version)


def build_inno(ctx: Context, args: argparse.Namespace) -> int:
    recipes.check_version(args.version, "build-inno")
    return _build(ctx, args, "build-inno", ["inno"], args.version, [args.python_version],
                  args.arch)


def build_wix(ctx: Context, args: argparse.Namespace) -> int:
    recipes.check_version(args.version, "build-wix")
    return _build(ctx, args, "build-wix", ["wix"], args.version, [args.python_version],
                  args.arch)


def build_wheel(ctx: Context, args: argparse.Namespace) -> int:
    return _build(ctx, args, "build-windows-wheel", ["wheel"], None, args.python_version,
                  args.arch)


def _build(ctx: Context, args: argparse.Namespace, command: str, kinds: Sequence[str],
           version: str | None, pythons: Sequence[str] | None = None,
           arches: Sequence[str] | None = None) -> int:
    from hgautomation.windows import artifacts, ec2

    out = console.get()
    repo = hgrepo.LocalRepo(ctx.hg_repo)
    node = hgrepo.resolve_revision(repo, args.revision)
    deps = ec2.read_deps_files(repo, node)  # the image needs it: fail before touching AWS
    builds = declared.read(repo, node, deps.script)  # what it builds, checked up front too
    steps = recipes.plan(builds, kinds, version, pythons, arches)
    out.info(f"{command}: {console.plural(len(steps), 'artifact')} of {node[:12]}; "
             f"the revision declares {builds.describe()}")
    out.info(", ".join(s.label for s in steps))
    local_dist = ctx.hg_repo / "dist"
    done = []
    with open_aws(ctx, args, kinds=("windows",)) as aws, \
            ec2.pushed_host(ctx, aws, windows_machine(args), repo, deps,
                            purpose="windows-build") as (_host, conn):
        for step, purge in zip(steps, recipes.purges(steps)):
            with out.step(f"build {step.label}"):
                # Purge first: each build starts from a clean tree, and an old
                # artifact can never pass for a new one; the installers of one arch
                # share a purge, hence one PyOxidizer build.
                if purge:
                    ec2.run(conn, recipes.update_source_script(node), prefix="  ")
                ec2.run(conn, step.script, prefix=f"  [{step.label}] ")
                done.append(artifacts.fetch(conn, recipes.DIST, step.pattern, local_dist,
                                            step.expected))
    artifacts.report(done, title=f"artifacts in {local_dist}")
    out.emit({"revision": node, "version": version, "artifacts": [
        {"name": a.name, "path": str(a.path), "size": a.size, "sha256": a.sha256,
         "kind": s.artifact.kind, "python": s.artifact.python, "arch": s.artifact.arch}
        for a, s in zip(done, steps)]})
    return 0
