"""`run-tests-windows`: Mercurial's run-tests.py under the MSYS shell on a Windows instance.

The exit status of run-tests.py is the exit status of the command, as on Linux.
"""

from __future__ import annotations

import argparse

from hgautomation import console, hgrepo
from hgautomation.commands import open_aws, windows_machine
from hgautomation.context import Context


def main(ctx: Context, args: argparse.Namespace) -> int:
    from hgautomation.windows import ec2, recipes

    out = console.get()
    # Bad flags fail before any machine starts.
    script = recipes.run_tests_script(args.python_version, args.arch, args.test_flags)
    repo = hgrepo.LocalRepo(ctx.hg_repo)
    node = hgrepo.resolve_revision(repo, args.revision)
    deps = ec2.read_deps_files(repo, node)  # the image needs it: fail before touching AWS
    with open_aws(ctx, args, kinds=("windows",)) as aws, \
            ec2.pushed_host(ctx, aws, windows_machine(args), repo, deps,
                            purpose="windows-tests") as (_host, conn):
        ec2.run(conn, recipes.update_source_script(node), prefix="  ")
        with out.step(f"run-tests.py with Python {args.python_version} {args.arch}"):
            status = ec2.run(conn, script, check=False)
    if status != 0:
        out.warn(f"run-tests.py exited {status}")
    else:
        out.result("tests passed")
    out.emit({"revision": node, "python": args.python_version, "arch": args.arch,
              "status": status, "passed": status == 0})
    return status
