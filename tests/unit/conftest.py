"""The fast tier: in-process unit tests, no root, no network, no servers, no subprocesses
(but ``ssh -G``, which only reads a config file, for ssh.resolve).

AWS calls go through ``botocore.stub.Stubber`` (every response queued by the test, every
request checked); anything that tries to open a network connection fails the test.

Run (any user, no network namespace)::

    build/venv-test/bin/python -m pytest tests/unit -q
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hgautomation import console
from hgautomation.aws.session import AWSSession

from .helpers import CapturedConsole, make_session


class _NoNetwork(AssertionError):
    pass


@pytest.fixture(autouse=True, scope="session")
def one_botocore_loader() -> Iterator[None]:
    """Every botocore session of the tier shares one data loader.

    botocore parses its JSON service models anew for each Session (~0.1 s), and the tier
    makes hundreds (a Stubber session per flow test; moto resets boto3's default session
    at every mock): shared, the models are parsed once. They are read-only data.
    """
    import botocore.loaders
    import botocore.session

    loader = botocore.loaders.create_loader()
    original = botocore.session.Session._register_data_loader

    def shared(self: botocore.session.Session) -> None:
        self._components.lazy_register_component("data_loader", lambda: loader)

    botocore.session.Session._register_data_loader = shared
    try:
        yield
    finally:
        botocore.session.Session._register_data_loader = original


@pytest.fixture(autouse=True)
def empty_home(tmp_path_factory: pytest.TempPathFactory,
               monkeypatch: pytest.MonkeyPatch) -> None:
    """A HOME of its own: the developer's ~/.ssh/config never reaches a test."""
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any attempt to connect a socket: unit tests never talk to anything."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise _NoNetwork(f"unit tests must not use the network: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)  # no DNS either


@pytest.fixture(scope="session")
def _shared_aws_session() -> AWSSession:
    # Building a botocore client costs ~0.1 s (its class, its exception classes): the
    # run shares one session and its clients; each test gets a fresh call counter and
    # fresh Stubbers (see `stub`). A test that changes the session makes its own.
    return make_session()


@pytest.fixture
def aws_session(_shared_aws_session: AWSSession) -> AWSSession:
    """An AWSSession (us-west-2, fake credentials) whose call counter starts at zero."""
    from hgautomation.aws.session import CallCounter

    _shared_aws_session.counter = CallCounter()
    return _shared_aws_session


@pytest.fixture
def stub(aws_session: AWSSession) -> Iterator[Callable[[str], Any]]:
    """``stub("ec2")``: the activated Stubber of the session's client for that service.

    At teardown every queued response must have been consumed.
    """
    from botocore.stub import Stubber

    stubbers: dict[str, Stubber] = {}

    def get(service: str) -> Stubber:
        if service not in stubbers:
            stubber = Stubber(aws_session.client(service))
            stubber.activate()
            stubbers[service] = stubber
        return stubbers[service]

    yield get
    for stubber in stubbers.values():
        stubber.deactivate()
    for stubber in stubbers.values():
        stubber.assert_no_pending_responses()


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> CapturedConsole:
    """Make ``console.get()`` return a capturing, verbose console for this test."""
    con = CapturedConsole()
    monkeypatch.setattr(console, "get", lambda: con)
    return con
