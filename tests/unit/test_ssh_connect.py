"""ssh.connect's bounded retries on a fake clock: attempt counts, pauses, messages.

The wait goes through poll.until; these pin what it did when it had a loop of its
own (a changed attempt count, pause or message fails here).
"""

from __future__ import annotations

import time

import paramiko
import pytest

from hgautomation import console, errors, ssh
from hgautomation.ssh import connection


@pytest.fixture
def clock(monkeypatch):
    """A fake monotonic clock that only moves when the code sleeps; the sleeps kept."""
    now = [1000.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(round(seconds, 3))
        now[0] += seconds

    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    monkeypatch.setattr(time, "sleep", sleep)
    return sleeps


@pytest.fixture
def refused(monkeypatch):
    """Every connection attempt is refused; the attempts are counted."""
    calls = []

    def open_socket(target):
        calls.append(target)
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(connection, "_open_socket", open_socket)
    return calls


def _target(attempts: int = 1) -> ssh.Target:
    return ssh.Target(name="box", hostname="192.0.2.5", port=2222, user="hg",
                      connection_attempts=attempts, identities_only=False)


def test_wait_retries_until_the_deadline(clock, refused, captured, monkeypatch, tmp_path):
    monkeypatch.setattr(console, "WAIT_REPORT_EVERY", 0.5)
    with pytest.raises(errors.HostConnectionError) as failure:
        ssh.connect(_target(), known_hosts=tmp_path / "kh", wait=5)
    # The host as the user named it ("box"), then where that led.
    assert str(failure.value) == ("cannot connect to hg@box (192.0.2.5:2222): connection "
                                  "refused (gave up after 4 attempts)")
    assert len(refused) == 4
    assert clock == [2.0, 2.0, 1.0]  # 2 s apart, the last pause cut to the deadline
    assert "still waiting: hg@box:2222 to answer SSH (connection refused)" \
        in captured.err_text


def test_connection_attempts_without_wait_are_one_second_apart_and_quiet(
        clock, refused, captured, monkeypatch, tmp_path):
    monkeypatch.setattr(console, "WAIT_REPORT_EVERY", 0.5)
    with pytest.raises(errors.HostConnectionError, match=r"\(gave up after 3 attempts\)$"):
        ssh.connect(_target(attempts=3), known_hosts=tmp_path / "kh", wait=0)
    assert len(refused) == 3 and clock == [1.0, 1.0]
    assert "still waiting" not in captured.err_text


def test_attempts_beyond_the_wait_pause_briefly(clock, refused, captured, tmp_path):
    with pytest.raises(errors.HostConnectionError, match="gave up after 5 attempts"):
        ssh.connect(_target(attempts=5), known_hosts=tmp_path / "kh", wait=1)
    assert len(refused) == 5 and clock == [1.0, 0.2, 0.2, 0.2]


def test_one_attempt_names_no_count(clock, refused, captured, tmp_path):
    with pytest.raises(errors.HostConnectionError) as failure:
        ssh.connect(_target(), known_hosts=tmp_path / "kh")
    assert str(failure.value) == "cannot connect to hg@box (192.0.2.5:2222): connection refused"
    assert len(refused) == 1 and clock == []


def test_refused_then_answered_returns_the_connection(clock, captured, monkeypatch, tmp_path):
    answers = [ConnectionRefusedError(111, "Connection refused"), TimeoutError(), object()]

    def open_socket(target):
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(connection, "_open_socket", open_socket)
    monkeypatch.setattr(paramiko.SSHClient, "connect", lambda self, *a, **kw: None)
    conn = ssh.connect(_target(), known_hosts=tmp_path / "kh", wait=60)
    assert isinstance(conn, ssh.Connection) and answers == [] and clock == [2.0, 2.0]


def test_authentication_failure_is_not_retried(clock, captured, monkeypatch, tmp_path):
    def refuse_auth(self, *args, **kwargs):
        raise paramiko.AuthenticationException("no way")

    monkeypatch.setattr(connection, "_open_socket", lambda target: object())
    monkeypatch.setattr(paramiko.SSHClient, "connect", refuse_auth)
    with pytest.raises(errors.HostConnectionError, match="authentication failed"):
        ssh.connect(_target(attempts=3), known_hosts=tmp_path / "kh", wait=60)
    assert clock == []
