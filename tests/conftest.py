"""Session-wide isolation and the real loopback servers as pytest fixtures.

Fixtures: `cli` (the real CLI in a subprocess), `aws` / `aws_fresh` (moto),
`lambda_runtime` (runs deployed Lambda functions beside moto), `ssh_host`
(sshd), `sshd_workdir` (for more sshds), `hg_source` (Mercurial's source as a repo),
`pypi` (pypiserver). See tests/harness/.

With ``CI=true`` a skipped test fails the run unless tests/skip-allowlist.txt lists it.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from harness import aws as aws_harness
from harness import hgsource, sshd
from harness import lambda_runtime as lambda_harness
from harness import pypi as pypi_harness
from harness.cli import CLI, PROJECT
from harness.net import endpoint_guard_error

# moto reads MOTO_AMIS_PATH when moto.ec2 is first imported, which a test module
# may do at import time: set it while conftest loads, before any test module.
aws_harness.configure_moto_environment()

_ENVDIR = pytest.StashKey[Path]()

# Ambient credentials and profiles a developer may have exported.
_AWS_IDENTITY_VARS = (
    "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME", "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
)


def isolate_environment(envdir: Path) -> None:
    """Point AWS and Mercurial config at empty files in `envdir`; drop ambient identities."""
    for name in _AWS_IDENTITY_VARS:
        os.environ.pop(name, None)
    for name, filename in [("AWS_CONFIG_FILE", "aws-config"),
                           ("AWS_SHARED_CREDENTIALS_FILE", "aws-credentials"),
                           ("HGRCPATH", "hgrc")]:
        path = envdir / filename
        path.write_text("")
        os.environ[name] = str(path)
    # A HOME of its own: the machine's ~/.ssh/config and known_hosts never reach a run.
    home = envdir / "home"
    home.mkdir()
    os.environ["HOME"] = str(home)
    # Fake keys, so botocore never searches further (e.g. the metadata service).
    os.environ["AWS_ACCESS_KEY_ID"] = aws_harness.ACCESS_KEY
    os.environ["AWS_SECRET_ACCESS_KEY"] = aws_harness.SECRET_KEY
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


def pytest_configure(config: pytest.Config) -> None:
    envdir = Path(tempfile.mkdtemp(prefix="hgauto-test-env-"))
    config.stash[_ENVDIR] = envdir
    isolate_environment(envdir)
    config.stash[_SKIP_ALLOWLIST] = _read_skip_allowlist(config)


# --- no silent skips in CI -----------------------------------------------------------------
# A skip hides a test: in CI (CI=true, as CI services set it) an unlisted one fails the
# run, so the suite cannot shrink while staying green. A developer's run may still skip.

_SKIP_ALLOWLIST = pytest.StashKey[tuple[Path, list[str]] | None]()
DEFAULT_SKIP_ALLOWLIST = Path(__file__).parent / "skip-allowlist.txt"


def in_ci(environ: Mapping[str, str]) -> bool:
    """Whether ``CI`` is set the way CI services set it (``true``; ``1``/``yes`` too)."""
    return environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("skip_allowlist", "file of the tests that may skip when CI=true "
                  "(default: tests/skip-allowlist.txt)", default="")


def _read_skip_allowlist(config: pytest.Config) -> tuple[Path, list[str]] | None:
    """(file, its patterns) when CI=true, else None. Every entry needs its reason: a
    ``# why it cannot run in CI`` comment on its line."""
    if not in_ci(os.environ):
        return None
    value = config.getini("skip_allowlist")
    path = (config.inipath.parent if config.inipath else config.rootpath) / value \
        if value else DEFAULT_SKIP_ALLOWLIST
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise pytest.UsageError(f"CI=true: cannot read the skip allow-list {path}: {e}") from e
    patterns = []
    for number, line in enumerate(text.splitlines(), 1):
        entry, _, reason = line.partition("#")
        if not entry.strip():
            continue
        if not reason.strip():
            raise pytest.UsageError(f"{path}, line {number}: {entry.strip()!r} has no reason "
                                    "(add '# why it cannot run in CI')")
        patterns.append(entry.strip())
    return path, patterns


def _unlisted_skip(config: pytest.Config, report: pytest.TestReport | pytest.CollectReport
                   ) -> None:
    """Under CI=true, turn a skip (not an xfail) that the allow-list does not name into a
    failure that names the test and its skip reason."""
    allowlist = config.stash.get(_SKIP_ALLOWLIST, None)
    if allowlist is None or not report.skipped or hasattr(report, "wasxfail"):
        return
    path, patterns = allowlist
    if any(report.nodeid == p or fnmatch.fnmatchcase(report.nodeid, p) for p in patterns):
        return
    where, reason = "", str(report.longrepr)
    if isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        filename, lineno, reason = report.longrepr
        where = f" ({filename}:{lineno})"
    report.outcome = "failed"
    report.longrepr = (f"CI=true and {report.nodeid} skipped{where}, but {path} does not "
                       f"list it: {reason}")


@pytest.hookimpl(wrapper=True, tryfirst=True)  # outermost: sees xfail already decided
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo
                              ) -> Iterator[pytest.TestReport]:
    report = yield
    _unlisted_skip(item.config, report)
    return report


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_make_collect_report(collector: pytest.Collector
                               ) -> Iterator[pytest.CollectReport]:
    report = yield
    _unlisted_skip(collector.config, report)
    return report


def pytest_report_header(config: pytest.Config) -> str | None:
    allowlist = config.stash.get(_SKIP_ALLOWLIST, None)
    if allowlist is None:
        return None
    return f"CI=true: a skip not listed in {allowlist[0]} fails the run"


def pytest_unconfigure(config: pytest.Config) -> None:
    envdir = config.stash.get(_ENVDIR, None)
    if envdir:
        shutil.rmtree(envdir, ignore_errors=True)


@pytest.hookimpl(tryfirst=True)  # before any fixture of the test is set up
def pytest_runtest_setup(item: pytest.Item) -> None:
    error = endpoint_guard_error(os.environ)
    if error:
        pytest.exit(error, returncode=3)



def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (creates a user and runs sshd): use tests/run")


@pytest.fixture(scope="session")
def cli() -> CLI:
    """Runs `python -m hgautomation`: .run(*args, cwd=, env=, aws=, state=, input=, timeout=)
    -> CompletedProcess, and .popen(...) as a context manager for signal tests.
    See tests/harness/cli.py."""
    return CLI()


@pytest.fixture(scope="session")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[aws_harness.MotoServer]:
    """moto on 127.0.0.1: .endpoint_url, .region, .env (for subprocesses), .client(), .reset()."""
    server = aws_harness.start_moto(tmp_path_factory.mktemp("aws"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def aws_fresh(aws: aws_harness.MotoServer) -> aws_harness.MotoServer:
    """The session's moto server, reset to its base images before this test."""
    aws.reset()
    return aws


@pytest.fixture(scope="session")
def lambda_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An interpreter with boto3 and nothing else (what the stock Lambda runtime offers),
    built once per session from the wheels tests/run caches."""
    wheels = PROJECT / "build" / "cache" / "wheels"
    if not any(wheels.glob("boto3-*.whl")):
        pytest.skip(f"no boto3 wheel in {wheels}: tests/run downloads it")
    return lambda_harness.build_python(tmp_path_factory.mktemp("lambda-python") / "venv",
                                       wheels)


@pytest.fixture(scope="session")
def lambda_runtime(aws: aws_harness.MotoServer, lambda_python: Path,
                   tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[lambda_harness.LambdaRuntime]:
    """The local Lambda runtime in front of `aws`: .env (AWS_ENDPOINT_URL_LAMBDA, for
    `cli.run(env=...)`), .local_url(function URL), .invocations. Functions deployed
    through it run from their zip in `lambda_python`; see tests/harness/lambda_runtime.py."""
    runtime = lambda_harness.start(aws.endpoint_url, lambda_python,
                                   tmp_path_factory.mktemp("lambda"), aws.region)
    try:
        yield runtime
    finally:
        runtime.stop()


@pytest.fixture(scope="session")
def ssh_host() -> Iterator[sshd.SSHHost]:
    """An sshd on 127.0.0.1 for user `hgtest`, key login only, SFTP enabled."""
    _require_root()
    workdir = sshd.make_workdir()
    try:
        with sshd.running_sshd(workdir) as host:
            yield host
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def sshd_workdir() -> Iterator[Path]:
    """A directory fit for `sshd.start_sshd`/`running_sshd` (e.g. a second daemon)."""
    _require_root()
    workdir = sshd.make_workdir()
    try:
        yield workdir
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def hg_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local clone of a one-commit repo holding Mercurial's source (from its sdist)."""
    sdist = hgsource.find_sdist()
    if sdist is None:
        pytest.skip(f"no mercurial-*.tar.gz in {hgsource.SDIST_DIR}: "
                    "tests/run downloads it before going offline")
    cached = hgsource.build_cached_repo(sdist)
    return hgsource.clone(cached, tmp_path_factory.mktemp("hg-source") / "mercurial")


@pytest.fixture(scope="session")
def pypi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pypi_harness.PyPIServer]:
    """pypiserver on 127.0.0.1: .url, .simple_url, .username, .password, .packages_dir."""
    daemon = pypi_harness.start_pypi(tmp_path_factory.mktemp("pypi"))
    try:
        yield daemon.server
    finally:
        daemon.stop()
