"""`check-host`: connect to Linux hosts and report, item by item, what of the contract holds."""

from __future__ import annotations

import argparse

from hgautomation import console, errors, hosts, linux
from hgautomation.commands import static_hosts
from hgautomation.context import Context


def main(ctx: Context, args: argparse.Namespace) -> int:
    if not args.host:
        raise errors.UsageError("check-host needs --host [USER@]ADDRESS[:PORT]")
    out = console.get()
    wanted = static_hosts(args)
    targets = hosts.static_hosts(
        wanted.specs, known_hosts=ctx.state.known_hosts, ssh_config=ctx.ssh_config,
        accept_new_host_key=wanted.accept_new_host_key,
        fallback_identity=hosts.tool_key(ctx.state.root / "keys"))
    failing = []
    for host in targets:
        with out.step(f"check {host.target}"), host.connect() as conn:
            items = linux.check(conn)
        out.table(["item", "status", "needed", "detail"],
                  [(i.item, i.status, "required" if i.required else "optional", i.detail)
                   for i in items], title=f"{host.target}")
        missing = [i.item for i in items if i.required and i.status == "missing"]
        if missing:
            failing.append(f"{host.label}: {', '.join(missing)}")
    if failing:
        raise errors.HostContractError(
            "contract not met: " + "; ".join(failing),
            hint="run bootstrap-linux-dev --host root@HOST")
    out.result(f"{len(targets)} host{' meets' if len(targets) == 1 else 's meet'} the contract")
    return 0
