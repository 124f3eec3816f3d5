"""``run-tests-windows``: Mercurial's run-tests.py under the MSYS shell on a Windows instance.

The exit status of run-tests.py is the exit status of the command, as on Linux.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hgautomation import console, hgrepo
from hgautomation.commands import (
    aws_options,
    base_image,
    open_aws,
    revision,
    template,
    windows_arches,
    windows_instance_type,
    windows_pythons,
)
from hgautomation.context import Context
from hgautomation.declare import Command, Option
from hgautomation.options import AWSOptions

if TYPE_CHECKING:
    from hgautomation.windows.ec2 import MachineOptions


@dataclass(frozen=True)
class RunTestsWindowsOptions:
    template: str
    machine: MachineOptions
    python_version: str
    arch: str
    test_flags: str
    revision: str
    aws: AWSOptions


def main(ctx: Context, opts: RunTestsWindowsOptions) -> int:
    from hgautomation.windows import ec2, recipes

    out = console.get()
    # Bad flags fail before any machine starts.
    script = recipes.run_tests_script(opts.python_version, opts.arch, opts.test_flags)
    repo = hgrepo.LocalRepo(ctx.hg_repo)
    node = hgrepo.resolve_revision(repo, opts.revision)
    deps = ec2.read_deps_files(repo, node)  # the image needs it: fail before touching AWS
    with open_aws(ctx, opts.aws, kinds=("windows",)) as aws, \
            ec2.pushed_host(ctx, aws, opts.machine, repo, deps,
                            purpose="windows-tests") as (_host, conn):
        ec2.run(conn, recipes.update_source_script(node), prefix="  ")
        with out.step(f"run-tests.py with Python {opts.python_version} {opts.arch}"):
            status = ec2.run(conn, script, check=False)
    if status != 0:
        out.warn(f"run-tests.py exited {status}")
    else:
        out.result("tests passed")
    out.emit({"revision": node, "python": opts.python_version, "arch": opts.arch,
              "status": status, "passed": status == 0})
    return status


COMMAND = Command(
    "run-tests-windows",
    options=(
        template(),
        windows_instance_type("tests"),
        windows_pythons(many=False),
        windows_arches(many=False),
        Option("--test-flags", default="",
               help="extra arguments for run-tests.py (one string)"),
        revision(),
        base_image(),
        *aws_options(),
    ),
    record=RunTestsWindowsOptions,
    flow=main,
    examples=("{prog} run-tests-windows --python-version 3.12 --arch x64 "
              "--test-flags '-j8 test-commit.t'",),
    json_keys={"": "arch passed python revision status"},
)
