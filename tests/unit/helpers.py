"""Helpers shared by the unit tests: stubbed AWS sessions and a capturing console."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import Any

from hgautomation import console
from hgautomation.aws.session import AWSSession

REGION = "us-west-2"

def make_session(region: str = REGION) -> AWSSession:
    """An AWSSession over a fresh boto3 session with fake static credentials (its
    service models parsed once for the tier: conftest.one_botocore_loader)."""
    import boto3

    boto = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                 region_name=region)
    return AWSSession(region, boto_session=boto)


class CapturedConsole(console.Console):
    """A Console writing into StringIOs, with the texts at hand."""

    def __init__(self, verbosity: int = console.VERBOSE):
        super().__init__(verbosity, err=io.StringIO(), out=io.StringIO())

    @property
    def err_text(self) -> str:
        return self.err.getvalue()

    @property
    def out_text(self) -> str:
        return self.out.getvalue()


# -- a checkout's Windows declaration, in the form Mercurial 7.2's files have it -----------

def install_script(pythons=("3.9", "3.10", "3.11", "3.12", "3.13", "3.14"),
                   cibuildwheel: str | None = "cibuildwheel==3.3.0") -> str:
    """contrib/install-windows-dependencies.ps1 reduced to what is read from it."""
    lines = []
    for py in pythons:
        xy = py.replace(".", "")
        for arch, bits in (("x86", "32"), ("x64", "64")):
            lines.append(f'    Install-Python3 "Python {py} {bits}-bit" '
                         f'${{prefix}}\\assets\\python{xy}-{arch}.exe '
                         f'${{prefix}}\\python{xy}-{arch} ${{pip}}')
    if cibuildwheel:
        lines.append(f'    Invoke-Process ${{prefix}}\\python313-x64\\python.exe '
                     f'"-m pipx install {cibuildwheel}"')
    return "function Install-Dependencies($prefix) {\n" + "\n".join(lines) + "\n}\n"


PYPROJECT_CIBUILDWHEEL = """\
[tool.cibuildwheel]
build = ["cp39-*", "cp310-*", "cp311-*", "cp312-*", "cp313-*", "cp314-*"]
skip = "pp*"

[tool.cibuildwheel.macos]
archs = ["universal2"]

[tool.cibuildwheel.windows]
archs = ["x86", "AMD64", "ARM64"]
"""


# contrib/heptapod-ci.yml reduced to 7.2.4's Windows wheel job and what it extends
# (Mercurial's CI builds ARM64 wheels for 3.11 and later only).
CI_WINDOWS_WHEELS = """\
variables:
    PYTHON: python

.all:
  when: on_success
  needs: []

.windows:
    extends: .all
    when: manual  # we don't have any Windows runners anymore at the moment
    tags:
      - windows
    variables:
        PYTHON: C:/hgdev/python39-x64/python.exe

build-c-wheel-windows:
    extends: .windows
    tags:
      - $WHEEL_WINDOWS_TAG
    stage: build
    script:
        - echo "python used, $Env:PYTHON"
        - "cibuildwheel.exe --output-dir wheels/win32"
    parallel:
      matrix:
        # "cp39" is first as it unlock the tests
        - CIBW_BUILD:
          - "cp39-*"
          - "cp310-*"
          - "cp311-*"
          - "cp312-*"
          - "cp313-*"
          - "cp314-*"
          CIBW_ARCHS:
          - "AMD64"
          - "x86"
        - CIBW_BUILD:
          - "cp311-*"
          - "cp312-*"
          - "cp313-*"
          - "cp314-*"
          CIBW_ARCHS:
          - "ARM64"

build-c-wheel-macos:
    extends: .all
    tags:
      - $WHEEL_MACOS_TAG
    script:
      - cibuildwheel --output-dir tmp-wheels/
"""


def release_builds():
    """The declaration of a 7.2.4-like checkout: its CI's 16 cibuildwheel wheels."""
    from hgautomation.windows import declared

    return declared.parse(install_script(), PYPROJECT_CIBUILDWHEEL, CI_WINDOWS_WHEELS)


def cibuildwheel_builds():
    """A checkout whose CI builds no Windows wheels: pyproject's 18 cibuildwheel wheels."""
    from hgautomation.windows import declared

    return declared.parse(install_script(), PYPROJECT_CIBUILDWHEEL)


def pip_builds():
    """The declaration of an older checkout: one pip wheel per installed interpreter."""
    from hgautomation.windows import declared

    return declared.parse(install_script(cibuildwheel=None), None)


@contextlib.contextmanager
def try_table(monkeypatch: Any, try_id: str, jobs: tuple[str, ...],
              region: str = REGION) -> Iterator[Any]:
    """moto's in-process DynamoDB with the Try server's table, holding try ``try_id`` and
    its ``jobs``, queued: the Table resource."""
    import boto3
    from moto import mock_aws

    from hgautomation.server import model, store

    # Fake credentials: without them botocore first asks the instance metadata
    # service, a one-second time-out per test.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # The suite's moto loads every IAM managed policy (tests/harness/aws.py): a second
    # per mock, and no test here needs IAM.
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "false")
    with mock_aws():
        resource = boto3.resource("dynamodb", region_name=region)
        resource.create_table(**store.table_definition())
        table = resource.Table(model.TABLE)
        table.put_item(Item={**model.try_key(try_id), "kind": "try", "id": try_id,
                             "node": "a" * 40, "user": "Dev", "branch": "default",
                             "description": "d", "created": "2026-12-07T19:13:00Z",
                             "jobs": list(jobs), "state": model.QUEUED})
        for name in jobs:
            table.put_item(Item={**model.job_key(try_id, name), "try_id": try_id,
                                 "name": name, "state": model.QUEUED, "attempt": 0})
        yield table
