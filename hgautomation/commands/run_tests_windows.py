"""`run-tests-windows`: Mercurial's run-tests.py under the MSYS shell on a Windows instance.

The exit status of run-tests.py is the exit status of the command, as on Linux.
"""

from __future__ import annotations

from hgautomation import console


def main(ctx, args) -> int:
    from hgautomation import hgrepo
    from hgautomation.windows import ec2, recipes

    out = console.get()
    # Bad flags fail before any machine starts.
    script = recipes.run_tests_script(args.python_version, args.arch, args.test_flags)
    repo = hgrepo.LocalRepo(ctx.hg_repo)
    node = hgrepo.resolve_revision(repo, args.revision)
    aws = ec2.open_aws(ctx, args)
    ssh_config = ec2.ssh_config_of(ctx, args)
    image = ec2.ensure_image(ctx, aws.session, aws.account, repo=repo, node=node,
                             base_image_name=args.base_image_name, ssh_config=ssh_config,
                             spot=getattr(args, "spot", False))
    with ec2.windows_host(ctx, aws.session, aws.account, image_id=image.id,
                          instance_type=args.instance_type, ssh_config=ssh_config,
                          purpose="windows-tests", spot=getattr(args, "spot", False)) as host, \
            ec2.connect(host) as conn:
        with out.step(f"push {node[:12]} to {recipes.SOURCE}"):
            hgrepo.push(repo, node, conn.target, host.known_hosts,
                        remote_path=recipes.REMOTE_SOURCE_URL_PATH,
                        remote_hg=recipes.REMOTE_HG_CMD, label=f"[{host.label}] ")
        ec2.run(conn, recipes.update_source_script(node), prefix="  ")
        with out.step(f"run-tests.py with Python {args.python_version} {args.arch}"):
            status = ec2.run(conn, script, check=False)
    if status != 0:
        out.warn(f"run-tests.py exited {status}")
    else:
        out.result("tests passed")
    return status
