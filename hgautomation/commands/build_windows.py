"""Windows builds: wheels, Inno Setup and WiX installers, on a temporary instance.

Flow: plan the matrix cells (version errors before any machine starts) →
resolve the revision → dev image (reused by fingerprint) → one instance →
hg push → per cell: update + purge, build, copy the artifact back → table.
"""

from __future__ import annotations

from hgautomation import console
from hgautomation.windows import recipes


def build_all(ctx, args) -> int:
    recipes.check_version(args.version, "build-all-windows-packages")
    steps = recipes.plan(recipes.KINDS, args.version)
    return _build(ctx, args, steps, "build-all-windows-packages")


def build_inno(ctx, args) -> int:
    recipes.check_version(args.version, "build-inno")
    steps = recipes.plan(["inno"], args.version, [args.python_version], args.arch)
    return _build(ctx, args, steps, "build-inno")


def build_wix(ctx, args) -> int:
    recipes.check_version(args.version, "build-wix")
    steps = recipes.plan(["wix"], args.version, [args.python_version], args.arch)
    return _build(ctx, args, steps, "build-wix")


def build_wheel(ctx, args) -> int:
    steps = recipes.plan(["wheel"], getattr(args, "version", None), args.python_version,
                         args.arch)
    return _build(ctx, args, steps, "build-windows-wheel")


def _build(ctx, args, steps: list[recipes.BuildStep], command: str) -> int:
    from hgautomation import hgrepo
    from hgautomation.windows import artifacts, ec2

    out = console.get()
    repo = hgrepo.LocalRepo(ctx.hg_repo)
    node = hgrepo.resolve_revision(repo, args.revision)
    out.info(f"{command}: {len(steps)} artifact(s) of {node[:12]}: "
             + ", ".join(s.label for s in steps))
    local_dist = ctx.hg_repo / "dist"
    done: list[artifacts.Artifact] = []
    with ec2.pushed_host(ctx, args, repo, node, purpose="windows-build") as (_host, conn):
        for step in steps:
            with out.step(f"build {step.label}"):
                # Purge first: each build starts from a clean tree, and an old
                # artifact can never pass for a new one.
                ec2.run(conn, recipes.update_source_script(node), prefix="  ")
                ec2.run(conn, step.script, prefix=f"  [{step.label}] ")
                done.append(artifacts.fetch(conn, recipes.DIST, step.pattern, local_dist,
                                            step.expected))
    artifacts.report(done, title=f"artifacts in {local_dist}")
    return 0



