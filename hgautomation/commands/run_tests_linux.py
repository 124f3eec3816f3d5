"""`run-tests-linux`: push a revision to Linux hosts, run Mercurial's tests, report.

Flow: resolve the revision locally -> get hosts (``--host`` or temporary EC2
instances) -> per host/shard: prepare /hgwork, push, check out, build (or reuse the
build of unchanged inputs), run run-tests.py, copy the JSON report back -> merge,
summarize (time to connect and sync, to build, to test), exit 1 if a test failed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hgautomation import console, errors, hgrepo, hosts, linux
from hgautomation.commands import open_aws, static_hosts
from hgautomation.context import Context
from hgautomation.state import check_writable

STATIC_FILESYSTEMS = ("default", "tmpfs")


@dataclass(frozen=True)
class TestRun:
    """What every shard of one run does: the same revision, Python and flags."""

    __test__ = False  # not a pytest test class

    repo: hgrepo.LocalRepo
    node: str
    diff: bytes | None  # --include-working-copy
    python: str  # interpreter path on the host
    test_flags: Sequence[str]
    filesystem: str
    results_dir: Path
    plan: linux.BuildPlan
    rebuild: bool = False


@dataclass
class ShardResult:
    label: str
    status: int | None = None  # run-tests.py exit status
    report: Path | None = None
    sync_seconds: float = 0.0  # connect, prepare /hgwork, push, check out
    build_seconds: float = 0.0
    build: linux.BuildOutcome | None = None
    test_seconds: float = 0.0
    connections: list = field(default_factory=list)


def main(ctx: Context, args: argparse.Namespace) -> int:
    out = console.get()
    start = time.monotonic()
    repo = hgrepo.LocalRepo(ctx.hg_repo, hg=args.hg)
    with out.step("resolve revision"):
        node = hgrepo.resolve_revision(repo, args.revision)
        out.info(f"revision {args.revision} is {node}")
        diff = hgrepo.working_copy_diff(repo) if args.include_working_copy else None
        if args.include_working_copy:
            out.info(f"working copy: {len(diff)} bytes of uncommitted changes"
                     if diff else "working copy: no uncommitted changes")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    results_dir = Path(args.results_dir).expanduser().absolute() if args.results_dir \
        else ctx.state.results / f"run-tests-linux-{stamp}-{node[:12]}"
    # Where the report lands is checked now, not after the run (and the host) are gone.
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise errors.ConfigurationError(
            f"cannot create the results directory {results_dir}: {exc.strerror}") from exc
    check_writable(results_dir, "results directory")
    plan = linux.build_plan(args.test_flags, full_install=args.full_install)
    if args.rebuild and not plan.local:
        raise errors.UsageError(f"--rebuild has nothing to rebuild: {plan.why}")
    run = TestRun(repo=repo, node=node, diff=diff,
                  python=linux.python_path(args.python_version),
                  test_flags=tuple(args.test_flags), filesystem=args.filesystem,
                  results_dir=results_dir, plan=plan, rebuild=args.rebuild)

    if args.host:
        if args.filesystem not in STATIC_FILESYSTEMS:
            raise errors.UsageError(
                f"--filesystem {args.filesystem} needs a spare block device, which only "
                "EC2 runs attach", hint=f"with --host use {' or '.join(STATIC_FILESYSTEMS)}")
        if args.instances is not None and args.instances != len(args.host):
            raise errors.UsageError(
                f"--instances {args.instances} with --host needs {args.instances} --host "
                f"values (got {len(args.host)})")
        wanted = static_hosts(args)
        targets = hosts.static_hosts(
            wanted.specs, known_hosts=ctx.state.known_hosts, ssh_config=ctx.ssh_config,
            identity=ctx.identity,
            accept_new_host_key=wanted.accept_new_host_key,
            fallback_identity=hosts.tool_key(ctx.state.root / "keys"))
        shards = _run_all(targets, run)
    else:
        if args.accept_new_host_key:
            raise errors.UsageError("--accept-new-host-key applies to --host only "
                                    "(EC2 host keys are generated and pinned by the tool)")
        from hgautomation.linux import ec2

        with open_aws(ctx, args, kinds=("linux",)) as aws, ec2.temporary_hosts(
                ctx, aws, count=args.instances or 1, distro=args.distro,
                instance_type=args.instance_type, python=args.python_version,
                needs_disk=args.filesystem not in STATIC_FILESYSTEMS) as targets:
            shards = _run_all(targets, run)
    return _summarize(shards, results_dir, time.monotonic() - start)


def _run_all(targets: list[hosts.Host], run: TestRun) -> list[ShardResult]:
    total = len(targets)
    shards = [ShardResult(label=t.label) for t in targets]
    prefixes = [f"[{t.label}] " if total > 1 else "" for t in targets]
    if total == 1:
        _run_one(targets[0], 1, 1, shards[0], prefixes[0], run)
        return shards
    with concurrent.futures.ThreadPoolExecutor(max_workers=total) as pool:
        futures = [pool.submit(_run_one, t, i + 1, total, shards[i], prefixes[i], run)
                   for i, t in enumerate(targets)]
        try:
            for future in futures:
                future.result()
        except BaseException:
            # Ctrl-C or a shard's failure: closing the connections stops the others.
            for shard in shards:
                for conn in list(shard.connections):
                    conn.close()
            raise
    return shards


def _run_one(host: hosts.Host, index: int, total: int, shard: ShardResult, prefix: str,
             run: TestRun) -> None:
    out = console.get()
    start = time.monotonic()
    shard_arg = (index, total) if total > 1 else None
    with out.step(f"{prefix}connect to {host.target}"):
        conn = host.connect()
    shard.connections.append(conn)
    try:
        node = run.node
        with out.step(f"{prefix}prepare /hgwork ({run.filesystem})"):
            has_node = linux.prepare(conn, run.filesystem, host.block_device, prefix=prefix,
                                     node=node)
        if has_node:
            out.info(f"{prefix}host already has {node[:12]}: nothing to push")
        else:
            with out.step(f"{prefix}push {node[:12]}"):
                result = hgrepo.push(run.repo, node, conn.target, host.known_hosts,
                                     extra_known_hosts=host.extra_known_hosts, label=prefix)
                out.info(f"{prefix}pushed {result.changesets} changeset"
                         f"{'' if result.changesets == 1 else 's'}" if result.pushed
                         else f"{prefix}host already has {node[:12]}: nothing to push")
        with out.step(f"{prefix}check out {node[:12]}"):
            linux.checkout(conn, node, run.diff, prefix=prefix)
        shard.sync_seconds = time.monotonic() - start
        if run.plan.local:
            build_start = time.monotonic()
            with out.step(f"{prefix}build ({run.plan.mode}"
                          + "".join(f"+{e}" for e in run.plan.extras) + ")"):
                shard.build = linux.build(conn, run.python, run.plan, rebuild=run.rebuild,
                                          prefix=prefix)
            shard.build_seconds = time.monotonic() - build_start
        tests_start = time.monotonic()
        with out.step(f"{prefix}run tests" + (f" (shard {index}/{total})" if shard_arg else "")):
            shard.status = linux.run_tests(conn, run.python, run.test_flags, shard_arg,
                                           prefix=prefix, local=run.plan.local)
        shard.test_seconds = time.monotonic() - tests_start
        name = "report.json" if total == 1 else f"report-{index}-{_safe(host.label)}.json"
        if linux.fetch_report(conn, run.results_dir / name):
            shard.report = run.results_dir / name
    finally:
        conn.close()


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-._" else "_" for c in label)


def timing_line(shards: Sequence[ShardResult], total_seconds: float) -> str:
    """Where the time went: each phase as its slowest shard spent it, and the whole run.

    "build" says whether the build was reused, restored from the host's cache or made;
    "other" is the rest of the wall time (resolving, EC2, reports).
    """
    sync = max((s.sync_seconds for s in shards), default=0.0)
    build = max((s.build_seconds for s in shards), default=0.0)
    tests = max((s.test_seconds for s in shards), default=0.0)
    hows = sorted({s.build.how for s in shards if s.build is not None})
    build_text = (f"build {build:.1f}s ({', '.join(hows)})" if hows
                  else "build - (run-tests.py installs)")
    other = max(total_seconds - sync - build - tests, 0.0)
    return (f"timing: connect/sync {sync:.1f}s, {build_text}, tests {tests:.1f}s, "
            f"other {other:.1f}s, total {total_seconds:.1f}s")


def _summary_json(shards: Sequence[ShardResult], report, results_dir: Path,
                  total_seconds: float) -> dict:
    """The run in -T json output (README: "Machine-readable output")."""
    return {
        "passed": len(report.passed) if report else None,
        "failed": list(report.failed) if report else None,
        "skipped": len(report.skipped) if report else None,
        "tests": len(report.results) if report else None,
        "report": str(results_dir / "report.json") if report else None,
        "seconds": round(total_seconds, 1),
        "hosts": [{"host": s.label, "status": s.status,
                   "build": s.build.how if s.build is not None else None,
                   "sync_seconds": round(s.sync_seconds, 1),
                   "build_seconds": round(s.build_seconds, 1),
                   "test_seconds": round(s.test_seconds, 1)} for s in shards],
    }


def _summarize(shards: list[ShardResult], results_dir: Path, total_seconds: float) -> int:
    out = console.get()
    reports = [s for s in shards if s.report is not None]
    merged = linux.Report()
    for shard in reports:
        merged.merge(linux.Report.load(shard.report))
    if len(shards) > 1 and reports:
        merged.write(results_dir / "report.json")
    passed, failed, skipped = merged.passed, merged.failed, merged.skipped
    if reports:
        out.result(f"passed {len(passed)}, failed {len(failed)}, skipped {len(skipped)} "
                   f"({len(merged.results)} tests"
                   + (f" on {len(shards)} hosts)" if len(shards) > 1 else ")"))
        for name in failed:
            out.result(f"failed: {name}")
    out.result(timing_line(shards, total_seconds))
    if reports:
        out.result(f"report: {results_dir / 'report.json'}")
    out.emit(_summary_json(shards, merged if reports else None, results_dir, total_seconds))
    if failed:
        shown = ", ".join(failed[:10]) + (f" and {len(failed) - 10} more" if len(failed) > 10
                                           else "")
        raise errors.TestsFailed(f"{len(failed)} of {len(merged.results)} tests failed: {shown}")
    broken = [s for s in shards if s.status not in (0, None) or s.report is None]
    if broken:
        s = broken[0]
        raise errors.RemoteCommandError(
            f"run-tests.py on {s.label} exited {s.status} "
            + ("without a report" if s.report is None else "with no failing test reported"),
            hint="see its output above", status=s.status)
    return 0
