"""The upload function's rate limit (hgautomation.server.limits) against moto: the
(N+1)th try of a user within an hour is refused with nothing stored, saying when the
next is allowed; two concurrent uploads cannot both take the last slot."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hgautomation.server import limits, model, upload

from .test_server_store import JOBS, NOW, MotoDeployment, moto_deployment, request

ALICE = "Alice <alice@example.org>"


@pytest.fixture
def deployment() -> Iterator[MotoDeployment]:
    with moto_deployment() as d:
        yield d


def _tries(deployment: MotoDeployment) -> list[dict]:
    return [i for i in deployment.items() if i["sk"] == "META"]


def test_next_allowed_is_when_the_oldest_counted_try_leaves_the_window():
    assert limits.next_allowed([], 2, NOW) is None
    assert limits.next_allowed([NOW - 100], 2, NOW) is None
    assert limits.next_allowed([NOW - 100, NOW - 50], 2, NOW) == NOW - 100 + 3600
    # Older than an hour: not counted.
    assert limits.next_allowed([NOW - 3600, NOW - 50], 2, NOW) is None
    # More than the limit (it was lowered): all but limit-1 must leave.
    assert limits.next_allowed([NOW - 300, NOW - 200, NOW - 100], 2, NOW) == NOW - 200 + 3600


def test_the_refusal_is_one_line_with_the_utc_time_and_the_minutes():
    text = limits.refusal(20, NOW + 37 * 60 - 5, NOW)
    assert text == ("too many tries: at most 20 an hour per user; the next is allowed at "
                    "2026-12-07T19:49:55Z (in 37 minutes)")
    assert limits.refusal(2, NOW + 10, NOW).endswith("(in 1 minute)")


def test_the_third_try_within_an_hour_is_refused_with_nothing_stored(deployment):
    """Breaking: a third try stored and queued although the limit is 2."""
    env = dict(deployment.environ, TRY_MAX_TRIES_PER_HOUR="2")
    upload.submit(request(user=ALICE), env, deployment.clients, now=NOW)
    upload.submit(request(user=ALICE), env, deployment.clients, now=NOW + 600)
    objects, items = deployment.objects(), deployment.items()
    with pytest.raises(ValueError) as refused:
        upload.submit(request(user=ALICE), env, deployment.clients, now=NOW + 1200)
    message = str(refused.value)
    assert "\n" not in message
    # The first try leaves the window an hour after it was sent: 40 minutes from now.
    assert message.endswith("the next is allowed at 2026-12-07T20:13:00Z (in 40 minutes)")
    assert deployment.objects() == objects and deployment.items() == items
    for job in JOBS:
        assert len(deployment.messages(job)) == 2
    # Someone else is not held up; Alice is again once her first try is an hour old.
    upload.submit(request(user="Bob <bob@example.org>"), env, deployment.clients,
                  now=NOW + 1200)
    upload.submit(request(user=ALICE), env, deployment.clients, now=NOW + 3601)
    assert len(_tries(deployment)) == 4


def test_the_window_item_keeps_the_last_hour_and_expires(deployment):
    table = deployment.clients.table
    limits.take_slot(table, ALICE, 5, NOW)
    limits.take_slot(table, ALICE, 5, NOW + 3000)
    limits.take_slot(table, ALICE, 5, NOW + 3700)
    item = table.get_item(Key=model.rate_key(ALICE))["Item"]
    assert [float(t) for t in item["times"]] == [NOW + 3000, NOW + 3700]
    assert int(item["version"]) == 3
    assert int(item["expires"]) == int(NOW + 3700) + 3601


def test_the_default_limit_is_twenty(deployment):
    for i in range(20):
        upload.submit(request(), deployment.environ, deployment.clients, now=NOW + i)
    with pytest.raises(ValueError, match="at most 20 an hour"):
        upload.submit(request(), deployment.environ, deployment.clients, now=NOW + 20)


class _Racing:
    """A table on which, once, another upload takes a slot between this one's read and
    its write (what two concurrent Lambda invocations may do)."""

    def __init__(self, table: Any, other: Any):
        self._table, self._other = table, other
        self.raced = False

    def get_item(self, **kwargs: Any) -> dict:
        return self._table.get_item(**kwargs)

    def put_item(self, **kwargs: Any) -> dict:
        if not self.raced:
            self.raced = True
            self._other()
        return self._table.put_item(**kwargs)


def test_two_concurrent_uploads_cannot_both_take_the_last_slot(deployment):
    """Breaking: a plain put (no condition on what was read): both pass, 3 tries of 2."""
    table = deployment.clients.table
    limits.take_slot(table, ALICE, 2, NOW)
    outcomes = []

    def other() -> None:
        limits.take_slot(table, ALICE, 2, NOW + 1)
        outcomes.append("other passed")

    with pytest.raises(ValueError, match="too many tries"):
        limits.take_slot(_Racing(table, other), ALICE, 2, NOW + 2)
    assert outcomes == ["other passed"]
    item = table.get_item(Key=model.rate_key(ALICE))["Item"]
    assert [float(t) for t in item["times"]] == [NOW, NOW + 1]


def test_a_lost_race_with_room_left_reads_again_and_passes(deployment):
    table = deployment.clients.table
    limits.take_slot(_Racing(table, lambda: limits.take_slot(table, ALICE, 3, NOW + 1)),
                     ALICE, 3, NOW + 2)
    item = table.get_item(Key=model.rate_key(ALICE))["Item"]
    assert [float(t) for t in item["times"]] == [NOW + 1, NOW + 2]
