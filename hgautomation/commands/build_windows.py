"""Windows builds: wheels, Inno Setup and WiX installers, on a temporary instance.

Flow: resolve the revision, read its dependency installer and its declared
builds (install script + pyproject.toml), plan the matrix cells (every error
before any machine starts) → dev image (reused by
fingerprint) → one instance → hg push → per cell: update + purge, build, copy
the artifact back → table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hgautomation import console, hgrepo, platforms
from hgautomation.commands import (
    aws_options,
    base_image,
    open_aws,
    revision,
    template,
    version,
    windows_arches,
    windows_instance_type,
    windows_pythons,
)
from hgautomation.context import Context
from hgautomation.declare import Command, Option
from hgautomation.options import AWSOptions
from hgautomation.windows import declared, recipes

if TYPE_CHECKING:
    from hgautomation.windows.ec2 import MachineOptions


@dataclass(frozen=True)
class BuildOptions:
    """What every Windows build takes; which Pythons, arches and version depend on the
    command (build-all builds what the revision declares)."""

    template: str
    revision: str
    machine: MachineOptions
    aws: AWSOptions
    version: str | None = None
    python_version: str | tuple[str, ...] | None = None
    arch: str | tuple[str, ...] | None = None


def build_all(ctx: Context, opts: BuildOptions) -> int:
    recipes.check_version(opts.version, "build-all-windows-packages")
    return _build(ctx, opts, "build-all-windows-packages", recipes.KINDS, opts.version)


def build_inno(ctx: Context, opts: BuildOptions) -> int:
    recipes.check_version(opts.version, "build-inno")
    return _build(ctx, opts, "build-inno", ["inno"], opts.version, [opts.python_version],
                  opts.arch)


def build_wix(ctx: Context, opts: BuildOptions) -> int:
    recipes.check_version(opts.version, "build-wix")
    return _build(ctx, opts, "build-wix", ["wix"], opts.version, [opts.python_version],
                  opts.arch)


def build_wheel(ctx: Context, opts: BuildOptions) -> int:
    return _build(ctx, opts, "build-windows-wheel", ["wheel"], None, opts.python_version,
                  opts.arch)


def _build(ctx: Context, opts: BuildOptions, command: str, kinds: Sequence[str],
           version: str | None, pythons: Sequence[str] | None = None,
           arches: Sequence[str] | None = None) -> int:
    from hgautomation.windows import artifacts, ec2

    out = console.get()
    repo = hgrepo.LocalRepo(ctx.hg_repo)
    node = hgrepo.resolve_revision(repo, opts.revision)
    deps = ec2.read_deps_files(repo, node)  # the image needs it: fail before touching AWS
    builds = declared.read(repo, node, deps.script)  # what it builds, checked up front too
    steps = recipes.plan(builds, kinds, version, pythons, arches)
    out.info(f"{command}: {console.plural(len(steps), 'artifact')} of {node[:12]}; "
             f"the revision declares {builds.describe()}")
    out.info(", ".join(s.label for s in steps))
    local_dist = ctx.hg_repo / "dist"
    done = []
    with open_aws(ctx, opts.aws, kinds=("windows",)) as aws, \
            ec2.pushed_host(ctx, aws, opts.machine, repo, deps,
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


_ARTIFACTS = {"": "artifacts revision version",
              "artifacts[]": "arch kind name path python sha256 size"}


def _installer(name: str, flow, example: str) -> Command:
    return Command(
        name,
        options=(template(), windows_pythons(many=False),
                 windows_arches(many=True, choices=platforms.INSTALLER_ARCHES),
                 revision(), version(), base_image(), windows_instance_type("build"),
                 *aws_options()),
        record=BuildOptions, flow=flow, examples=(example,), json_keys=_ARTIFACTS)


BUILD_ALL = Command(
    "build-all-windows-packages",
    options=(template(), revision(), version(), base_image(), windows_instance_type("build"),
             *aws_options()),
    record=BuildOptions,
    flow=build_all,
    examples=("{prog} build-all-windows-packages -r 7.2.4 --version 7.2.4",),
    json_keys=_ARTIFACTS,
)
BUILD_INNO = _installer("build-inno", build_inno,
                        "{prog} build-inno -r 7.2.4 --version 7.2.4 --arch x64")
BUILD_WIX = _installer("build-wix", build_wix, "{prog} build-wix -r 7.2.4 --version 7.2.4")
BUILD_WHEEL = Command(
    "build-windows-wheel",
    options=(
        template(),
        windows_pythons(many=True),
        Option("--arch", kind="list", choices=platforms.WINDOWS_WHEEL_ARCHES,
               help="architecture(s) (default: every one the revision declares for the "
                    "Python; arm64 where it declares it)"),
        revision(), base_image(), windows_instance_type("build"), *aws_options(),
    ),
    record=BuildOptions,
    flow=build_wheel,
    examples=("{prog} build-windows-wheel --python-version 3.12 3.13 --arch x64 arm64",),
    json_keys=_ARTIFACTS,
)
