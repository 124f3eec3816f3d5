"""``check-host``: connect to Linux hosts and report, item by item, what of the contract holds,
then which of the test suite's features each host has and what their absence skips."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hgautomation import console, errors, linux, platforms
from hgautomation.commands import host_options, static_hosts
from hgautomation.context import Context
from hgautomation.declare import Command, Option
from hgautomation.linux import features
from hgautomation.options import StaticHosts


@dataclass(frozen=True)
class CheckHostOptions:
    hosts: StaticHosts
    python_version: str
    no_features: bool


def main(ctx: Context, opts: CheckHostOptions) -> int:
    if not opts.hosts.specs:
        raise errors.UsageError("check-host needs --host [USER@]ADDRESS[:PORT]")
    out = console.get()
    targets = static_hosts(ctx, opts.hosts)
    checkout = None if opts.no_features else _checkout(ctx)
    python = linux.python_path(opts.python_version)
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


def _checkout(ctx: Context) -> Path | None:
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


COMMAND = Command(
    "check-host",
    options=(
        *host_options(),
        Option("--python-version", choices=platforms.LINUX_PYTHONS,
               default=platforms.DEFAULT_LINUX_PYTHON,
               help="Python whose test features are checked (default: %(default)s)"),
        Option("--no-features", kind="flag",
               help="skip the report of the test suite's features (tests/hghave.py of the "
                    "local checkout) on the host"),
    ),
    record=CheckHostOptions,
    flow=main,
    examples=("{prog} check-host --host hg@buildbox",),
)
