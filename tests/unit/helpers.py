"""Helpers shared by the unit tests: stubbed AWS sessions and a capturing console."""

from __future__ import annotations

import io
from typing import Any

from hgautomation import console
from hgautomation.aws.session import AWSSession

REGION = "us-west-2"

# One botocore data loader for the whole run: parsing a service model (EC2's is
# megabytes of JSON) per test would cost ~0.3 s each time.
_LOADER: Any = None


def _shared_loader() -> Any:
    global _LOADER
    if _LOADER is None:
        import botocore.loaders

        _LOADER = botocore.loaders.create_loader()
    return _LOADER


def make_session(region: str = REGION) -> AWSSession:
    """An AWSSession over a fresh boto3 session with fake static credentials."""
    import boto3
    import botocore.session

    core = botocore.session.get_session()
    core.register_component("data_loader", _shared_loader())
    boto = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                 region_name=region, botocore_session=core)
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
