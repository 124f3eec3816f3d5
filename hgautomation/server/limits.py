"""The upload function's rate limit: at most N tries an hour per submitter (``user``).

One item per submitter (``model.rate_key(user)``) holds the epoch times of their tries
of the last hour (a sliding window) and a ``version``; a try takes a slot by writing the
list back on the condition that the version is still the one read (an optimistic lock:
of two concurrent uploads, one finds its read stale, reads again, and is refused if the
other took the last slot). A refused try writes nothing.
Standard library and boto3 only: this module is shipped to Lambda with the rest.
"""

from __future__ import annotations

import math
import time
from decimal import Decimal
from typing import Any

from hgautomation.server import model

WINDOW_SECONDS = 3600
# Rounds of read-then-write before giving up: each lost round means another upload of
# the same submitter took a slot meanwhile.
ATTEMPTS = 8


def next_allowed(times: list[float], limit: int, now: float) -> float | None:
    """When the next try is allowed given the window's *times*; None: now."""
    recent = sorted(t for t in times if t > now - WINDOW_SECONDS)
    if len(recent) < limit:
        return None
    # Allowed once all but limit-1 of them have left the window.
    return recent[len(recent) - limit] + WINDOW_SECONDS


def refusal(limit: int, at: float, now: float) -> str:
    """The one line a refused submitter reads: when, in UTC and in minutes."""
    minutes = max(1, math.ceil((at - now) / 60))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(math.ceil(at)))
    return (f"too many tries: at most {limit} an hour per user; the next is allowed at "
            f"{stamp} (in {minutes} minute{'' if minutes == 1 else 's'})")


def take_slot(table: Any, user: str, limit: int, now: float | None = None) -> None:
    """Count one try of *user* at *now*; ValueError (one line, saying when the next is
    allowed) when they already sent *limit* in the last hour, with nothing written."""
    now = time.time() if now is None else now
    key = model.rate_key(user)
    for _ in range(ATTEMPTS):
        item = table.get_item(Key=key, ConsistentRead=True).get("Item")
        times = [float(t) for t in (item or {}).get("times") or ()]
        at = next_allowed(times, limit, now)
        if at is not None:
            raise ValueError(refusal(limit, at, now))
        kept = sorted(t for t in times if t > now - WINDOW_SECONDS) + [now]
        version = int((item or {}).get("version") or 0)
        if item is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {"ConditionExpression": "version = :read",
                         "ExpressionAttributeValues": {":read": version}}
        try:
            table.put_item(Item={**key, "times": [Decimal(str(round(t, 3))) for t in kept],
                                 "version": version + 1,
                                 # Gone (TTL) once no time in it counts any more.
                                 "expires": int(now) + WINDOW_SECONDS + 1},
                           **condition)
            return
        except Exception as exc:  # botocore's ClientError, without importing botocore
            if (getattr(exc, "response", None) or {}).get("Error", {}).get(
                    "Code") != "ConditionalCheckFailedException":
                raise
    raise RuntimeError(f"rate limit: {ATTEMPTS} concurrent updates of this user's count "
                       "in a row; try again")
