"""Windows builds: wheels, Inno Setup and WiX installers, on a temporary instance.

Flow: plan the matrix cells (version errors before any machine starts) →
resolve the revision and read its dependency installer → dev image (reused by
fingerprint) → one instance → hg push → per cell: update + purge, build, copy
the artifact back → table.
"""

from __future__ import annotations

import argparse

from hgautomation import console, hgrepo
from hgautomation.commands import open_aws, windows_machine
from hgautomation.context import Context
from hgautomation.windows import recipes


def build_all(ctx: Context, args: argparse.Namespace) -> int:
    recipes.check_version(args.version, "build-all-windows-packages")
    steps = recipes.plan(recipes.KINDS, args.version)
    return _build(ctx, args, steps, "build-all-windows-packages")


def build_inno(ctx: Context, args: argparse.Namespace) -> int:
    recipes.check_version(args.version, "build-inno")
    steps = recipes.plan(["inno"], args.version, [args.python_version], args.arch)
    return _build(ctx, args, steps, "build-inno")


def build_wix(ctx: Context, args: argparse.Namespace) -> int:
    recipes.check_version(args.version, "build-wix")
    steps = recipes.plan(["wix"], args.version, [args.python_version], args.arch)
    return _build(ctx, args, steps, "build-wix")


def build_wheel(ctx: Context, args: argparse.Namespace) -> int:
    steps = recipes.plan(["wheel"], None, args.python_version, args.arch)
    return _build(ctx, args, steps, "build-windows-wheel")


def _build(ctx: Context, args: argparse.Namespace, steps: list[recipes.BuildStep],
           command: str) -> int:
    from hgautomation.windows import artifacts, ec2

    out = console.get()
    repo = hgrepo.LocalRepo(ctx.hg_repo)
    node = hgrepo.resolve_revision(repo, args.revision)
    ec2.read_deps_files(repo, node)  # the image needs it: fail before touching AWS
    out.info(f"{command}: {len(steps)} artifact(s) of {node[:12]}: "
             + ", ".join(s.label for s in steps))
    local_dist = ctx.hg_repo / "dist"
    done = []
    with open_aws(ctx, args, kinds=("windows",)) as aws, \
            ec2.pushed_host(ctx, aws, windows_machine(args), repo, node,
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
    return 0
