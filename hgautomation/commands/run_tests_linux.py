"""``run-tests-linux``: push a revision to Linux hosts, run Mercurial's tests, report.

Flow: resolve the revision locally -> get hosts (``--host`` or temporary EC2
instances) -> per host/shard: prepare /hgwork, push, check out, build (or reuse the
build of unchanged inputs), run run-tests.py, copy the JSON report back -> merge,
summarize (time to connect and sync, to build, to test), exit 1 if a test failed.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import datetime
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hgautomation import console, errors, hgrepo, hosts, linux, options, platforms
from hgautomation.commands import (
    aws_options,
    host_options,
    open_aws,
    revision,
    static_hosts,
    template,
)
from hgautomation.context import Context
from hgautomation.declare import Command, Option
from hgautomation.options import AWSOptions, StaticHosts
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


@dataclass(frozen=True)
class Machines:
    """Where a run happens: the ``--host`` hosts, else temporary EC2 instances."""

    hosts: StaticHosts
    instances: int | None
    filesystem: str
    distro: str
    instance_type: str
    python_version: str
    aws: AWSOptions
    # False: EC2 instances get no instance profile (no AWS credentials at all), for
    # untrusted code (the Try server's jobs).
    instance_profile: bool = True


@dataclass(frozen=True)
class RunTestsLinuxOptions:
    template: str
    distro: str
    filesystem: str
    instance_type: str
    python_version: str
    revision: str
    hosts: StaticHosts
    instances: int | None
    hg: str
    include_working_copy: bool
    results_dir: str | None
    full_install: bool
    rebuild: bool
    aws: AWSOptions
    test_flags: tuple[str, ...]

    @property
    def machines(self) -> Machines:
        return Machines(hosts=self.hosts, instances=self.instances, filesystem=self.filesystem,
                        distro=self.distro, instance_type=self.instance_type,
                        python_version=self.python_version, aws=self.aws)


def main(ctx: Context, opts: RunTestsLinuxOptions) -> int:
    out = console.get()
    start = time.monotonic()
    repo = hgrepo.LocalRepo(ctx.hg_repo, hg=opts.hg)
    with out.step("resolve revision"):
        node = hgrepo.resolve_revision(repo, opts.revision)
        out.info(f"revision {opts.revision} is {node}")
        diff = hgrepo.working_copy_diff(repo) if opts.include_working_copy else None
        if opts.include_working_copy:
            out.info(f"working copy: {len(diff)} bytes of uncommitted changes"
                     if diff else "working copy: no uncommitted changes")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    results_dir = Path(opts.results_dir).expanduser().absolute() if opts.results_dir \
        else ctx.state.results / f"run-tests-linux-{stamp}-{node[:12]}"
    # Where the report lands is checked now, not after the run (and the host) are gone.
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise errors.ConfigurationError(
            f"cannot create the results directory {results_dir}: {exc.strerror}") from exc
    check_writable(results_dir, "results directory")
    plan = linux.build_plan(opts.test_flags, full_install=opts.full_install)
    if opts.rebuild and not plan.local:
        raise errors.UsageError(f"--rebuild has nothing to rebuild: {plan.why}")
    run = TestRun(repo=repo, node=node, diff=diff,
                  python=linux.python_path(opts.python_version),
                  test_flags=tuple(opts.test_flags), filesystem=opts.filesystem,
                  results_dir=results_dir, plan=plan, rebuild=opts.rebuild)

    check_machines(opts.machines)
    with machines(ctx, opts.machines) as targets:
        shards = run_all(targets, run)
    return _summarize(shards, results_dir, time.monotonic() - start)


def check_machines(wanted: Machines) -> None:
    """Refuse option combinations the hosts cannot serve (before any host is touched)."""
    if wanted.hosts.specs:
        if wanted.filesystem not in STATIC_FILESYSTEMS:
            raise errors.UsageError(
                f"--filesystem {wanted.filesystem} needs a spare block device, which only "
                "EC2 runs attach", hint=f"with --host use {' or '.join(STATIC_FILESYSTEMS)}")
        if wanted.instances is not None and wanted.instances != len(wanted.hosts.specs):
            raise errors.UsageError(
                f"--instances {wanted.instances} with --host needs {wanted.instances} --host "
                f"values (got {len(wanted.hosts.specs)})")
    elif wanted.hosts.accept_new_host_key:
        raise errors.UsageError("--accept-new-host-key applies to --host only "
                                "(EC2 host keys are generated and pinned by the tool)")


@contextlib.contextmanager
def machines(ctx: Context, wanted: Machines) -> Iterator[list[hosts.Host]]:
    """The hosts of one run: the ``--host`` hosts, or temporary EC2 instances (with the
    dead-man switch) terminated when the block ends, whatever happened."""
    if wanted.hosts.specs:
        yield static_hosts(ctx, wanted.hosts)
        return
    from hgautomation.linux import ec2

    with open_aws(ctx, wanted.aws, kinds=("linux",)) as aws:
        if not wanted.instance_profile:
            aws = dataclasses.replace(aws, account=dataclasses.replace(
                aws.state, instance_profile_arn=""))
        with ec2.temporary_hosts(
                ctx, aws, count=wanted.instances or 1, distro=wanted.distro,
                instance_type=wanted.instance_type, python=wanted.python_version,
                needs_disk=wanted.filesystem not in STATIC_FILESYSTEMS) as targets:
            yield targets


def run_all(targets: list[hosts.Host], run: TestRun) -> list[ShardResult]:
    """Run ``run`` on every target (a shard each, in parallel when several)."""
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
    """The run in -T json output (keys: ``COMMAND.json_keys``)."""
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


def merged_report(shards: Sequence[ShardResult], results_dir: Path) -> linux.Report | None:
    """The shards' reports as one (written to ``results_dir/report.json`` when there are
    several shards; one shard's report is there already); None when no shard has one."""
    reports = [s for s in shards if s.report is not None]
    if not reports:
        return None
    merged = linux.Report()
    for shard in reports:
        merged.merge(linux.Report.load(shard.report))
    if len(shards) > 1:
        merged.write(results_dir / "report.json")
    return merged


def _summarize(shards: list[ShardResult], results_dir: Path, total_seconds: float) -> int:
    out = console.get()
    reports = [s for s in shards if s.report is not None]
    merged = merged_report(shards, results_dir) or linux.Report()
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


def linux_machine_options() -> tuple[Option, ...]:
    """The machine a Linux test run uses (run-tests-linux, try-agent)."""
    return (
        Option("--distro", choices=tuple(platforms.LINUX_DISTROS),
               default=platforms.DEFAULT_LINUX_DISTRO, settings=("linux.distro",),
               help="Linux distribution (default: %(default)s)"),
        Option("--filesystem", choices=platforms.FILESYSTEMS, default="default",
               help="filesystem for /hgwork (default: %(default)s)"),
        Option("--instance-type", default="c5.9xlarge", settings=("linux.instance-type",),
               help="EC2 instance type (default: %(default)s)"),
        Option("--python-version", choices=platforms.LINUX_PYTHONS,
               default=platforms.DEFAULT_LINUX_PYTHON,
               help="Python to run the tests with (default: %(default)s)"),
    )


COMMAND = Command(
    "run-tests-linux",
    options=(
        template(),
        *linux_machine_options(),
        revision(),
        *host_options(),
        Option("--instances", validator=options.bounded_int(1, options.MAX_INSTANCES),
               metavar="N",
               help="shard the tests over N hosts in parallel (with --host: one --host per "
                    f"shard; at most {options.MAX_INSTANCES})"),
        Option("--hg", default="hg", metavar="PATH",
               help="local hg used to resolve and push the revision (default: %(default)s)"),
        Option("--include-working-copy", kind="flag",
               help="carry uncommitted changes of tracked files to the host"),
        Option("--results-dir", metavar="DIR",
               help="where the JSON report lands (default: STATE/results/<run>)"),
        Option("--full-install", kind="flag",
               help="let run-tests.py pip-install the revision as it does by default "
                    "(release testing); otherwise the host keeps a build of the work tree, "
                    "reused while C/Rust/setup files and the Python are unchanged, and runs "
                    "the tests with --local"),
        Option("--rebuild", kind="flag",
               help="build the work tree afresh even if a build of the same inputs exists"),
        *aws_options(),
        Option("test_flags", kind="passthrough", metavar="TEST_FLAGS",
               help="arguments for run-tests.py (tests and flags; put flags after --)"),
    ),
    record=RunTestsLinuxOptions,
    flow=main,
    examples=(
        "{prog} run-tests-linux --host hg@buildbox test-commit.t",
        "{prog} run-tests-linux --python-version 3.13 -- -j8 --retest",
        "{prog} run-tests-linux -r . --distro ubuntu24.04 --filesystem tmpfs",
    ),
    json_keys={"": "failed hosts passed report seconds skipped tests",
               "hosts[]": "build build_seconds host status sync_seconds test_seconds"},
)
