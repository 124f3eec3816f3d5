"""`check-host`: connect to Linux hosts and report, item by item, what of the contract holds,
then which of the test suite's features each host has and what their absence skips."""

from __future__ import annotations

import argparse
from pathlib import Path

from hgautomation import console, errors, hosts, linux
from hgautomation.commands import static_hosts
from hgautomation.context import Context
from hgautomation.linux import features


def main(ctx: Context, args: argparse.Namespace) -> int:
    if not args.host:
        raise errors.UsageError("check-host needs --host [USER@]ADDRESS[:PORT]")
    out = console.get()
    wanted = static_hosts(args)
    targets = hosts.static_hosts(
        wanted.specs, known_hosts=ctx.state.known_hosts, ssh_config=ctx.ssh_config,
        identity=ctx.identity,
        accept_new_host_key=wanted.accept_new_host_key,
        fallback_identity=hosts.tool_key(ctx.state.root / "keys"))
    checkout = None if args.no_features else _checkout(ctx, args)
    python = linux.python_path(args.python_version)
    failing = []
    for host in targets:
        with out.step(f"check {host.target}"), host.connect() as conn:
            items = linux.check(conn)
            report = None
            if checkout is not None:
                with out.step(f"test features ({python}, {checkout / 'tests' / 'hghave.py'})"):
                    results = features.check_features(conn, python, checkout)
                    report = features.build_report(
                        results, features.test_requirements(checkout / "tests"),
                        features.host_distro(conn))
        out.table(["item", "status", "needed", "detail"],
                  [(i.item, i.status, "required" if i.required else "optional", i.detail)
                   for i in items], title=f"{host.target}")
        if report is not None:
            _show_features(report)
        missing = [i.item for i in items if i.required and i.status == "missing"]
        if missing:
            failing.append(f"{host.label}: {', '.join(missing)}")
    if failing:
        raise errors.HostContractError(
            "contract not met: " + "; ".join(failing),
            hint="run bootstrap-linux-dev --host root@HOST")
    out.result(f"{len(targets)} host{' meets' if len(targets) == 1 else 's meet'} the contract")
    return 0


def _checkout(ctx: Context, args: argparse.Namespace) -> Path | None:
    """The local checkout whose tests/hghave.py and tests are checked against the host."""
    try:
        root = Path(ctx.hg_repo)
    except errors.LocalRepoError:
        root = None
    if root is None or not (root / "tests" / "hghave.py").is_file():
        console.get().warn("no Mercurial checkout with tests/hghave.py here: no feature report "
                           "(run check-host from a Mercurial checkout, or --no-features)")
        return None
    return root


def _show_features(report: features.FeatureReport) -> None:
    out = console.get()
    present = [r.feature for r in report.rows if r.present]
    out.result(f"test features present ({len(present)} of {len(report.rows)}): "
               + " ".join(present))
    if report.missing:
        out.table(["missing feature", "tests skipped", "why"],
                  [(r.feature, r.skipped_tests,
                    out.clip(r.why or "not installed", features.WHY_WIDTH))
                   for r in sorted(report.missing, key=lambda r: (-r.skipped_tests, r.feature))],
                  title="test features missing")
    out.result(f"{report.skipped} of {report.tests} tests would be skipped for a missing "
               "host feature")
