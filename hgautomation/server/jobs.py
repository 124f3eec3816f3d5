"""A job's life in the table, as agents live it: claim, renew, record, requeue, give up.

Every write is a conditional UpdateItem, so two agents never run the same attempt and
only the lease owner (of that attempt) may renew, record or put the job back:

- :func:`claim`: ``state = queued``, or ``running`` with ``lease_until < now`` (its agent
  was lost) -> ``running``, ``attempt + 1``, a fresh lease. An attempt beyond
  ``model.MAX_ATTEMPTS`` is not run: the job ends in ``error``.
- :func:`renew`, :func:`record`, :func:`end_cancelled`, :func:`requeue`:
  ``lease_owner = me`` and the attempt is still mine (a renewal also says whether a
  cancel was asked for: ``cancel_requested``, set by the upload function's cancel).
- :func:`give_up`: a job whose message reached the dead-letter queue ends in ``error``
  unless an agent holds a live lease.

``table`` is a boto3 DynamoDB ``Table`` resource; ``now`` is epoch seconds (callers
pass it, tests choose it). After a job ends, the try's stored ``state`` is refreshed.
Standard library and boto3 only: this module is shipped to Lambda with the rest.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hgautomation.server import model, store

OUTPUT_LIMIT = 64 * 1024  # bytes of one failed test's output kept in the table
# A DynamoDB item holds at most 400 KB: the outputs of all failures together stay
# below this; the rest are in the report and the log.
OUTPUTS_BUDGET = 256 * 1024
MAX_ERROR_CHARS = 4096


@dataclass(frozen=True)
class JobResult:
    """What an attempt ended with (``state``: passed, failed or error). ``failed``: the
    new failures (they fail the job); ``flaky``: failed, then passed when re-run;
    ``preexisting``: fail on the try's base too."""

    state: str
    passed: int = 0
    failed: tuple[str, ...] = ()
    flaky: tuple[str, ...] = ()
    preexisting: tuple[str, ...] = ()
    skipped: int = 0
    failures: tuple[dict, ...] = ()  # {"name", "output"}, as cut_failures makes them
    duration: float = 0.0
    log_key: str | None = None
    report_key: str | None = None
    error: str = ""


def iso(now: float) -> str:
    """``2026-12-07T19:13:00Z``."""
    return datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def _number(value: float) -> Decimal:
    return Decimal(str(round(value, 3)))


def _conditional_failure(exc: Exception) -> bool:
    response = getattr(exc, "response", None) or {}
    return response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _update(table: Any, key: dict, **kwargs: Any) -> dict | None:
    """UpdateItem; the new item, or None when the condition did not hold."""
    try:
        return table.update_item(Key=key, ReturnValues="ALL_NEW", **kwargs).get(
            "Attributes", {})
    except Exception as exc:  # botocore's ClientError, without importing botocore here
        if _conditional_failure(exc):
            return None
        raise


def claim(table: Any, try_id: str, job: str, owner: str, lease_seconds: float,
          now: float) -> int | None:
    """Take the job for ``owner``: the new attempt, or None when it is not free (another
    agent holds a live lease, or it has ended or does not exist). A claim beyond
    ``MAX_ATTEMPTS`` ends the job in ``error`` and returns None."""
    item = _update(
        table, model.job_key(try_id, job),
        UpdateExpression=("SET #state = :running, attempt = if_not_exists(attempt, :zero) "
                          "+ :one, lease_owner = :me, lease_until = :until, started = :started"
                          " REMOVE ended, #error"),
        ConditionExpression=("attribute_exists(pk) AND (#state = :queued OR "
                             "(#state = :running AND lease_until < :now))"),
        ExpressionAttributeNames={"#state": "state", "#error": "error"},
        ExpressionAttributeValues={
            ":running": model.RUNNING, ":queued": model.QUEUED, ":zero": 0, ":one": 1,
            ":me": owner, ":until": _number(now + lease_seconds), ":now": _number(now),
            ":started": iso(now)})
    if item is None:
        return None
    attempt = int(item["attempt"])
    if attempt > model.MAX_ATTEMPTS:
        _end(table, try_id, job, owner, attempt, now, {
            "error": f"gave up: {model.MAX_ATTEMPTS} attempts ended without a result "
                     "(their agents were stopped or lost)"},
             state=model.ERROR, attempt_shown=model.MAX_ATTEMPTS)
        return None
    return attempt


def _mine(owner: str, attempt: int) -> tuple[str, dict]:
    return ("lease_owner = :me AND attempt = :attempt AND #state = :running",
            {":me": owner, ":attempt": attempt, ":running": model.RUNNING})


@dataclass(frozen=True)
class Renewal:
    """A renewed lease, and whether a cancel of the job was asked for meanwhile."""

    cancel_requested: bool = False


def renew(table: Any, try_id: str, job: str, owner: str, attempt: int,
          lease_seconds: float, now: float) -> Renewal | None:
    """Extend ``owner``'s lease to ``now + lease_seconds``; None when it is not theirs.
    The renewal says whether the job's ``cancel_requested`` is set (``try --cancel``)."""
    condition, values = _mine(owner, attempt)
    item = _update(table, model.job_key(try_id, job),
                   UpdateExpression="SET lease_until = :until",
                   ConditionExpression=condition,
                   ExpressionAttributeNames={"#state": "state"},
                   ExpressionAttributeValues={**values,
                                              ":until": _number(now + lease_seconds)})
    return None if item is None else Renewal(bool(item.get("cancel_requested")))


def cut_output(text: str, limit: int = OUTPUT_LIMIT) -> str:
    """``text`` within ``limit`` UTF-8 bytes, with a note of what was cut."""
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return text
    kept = data[:limit].decode("utf-8", "ignore")
    return kept + f"\n[... {len(data) - limit:,} more bytes cut; the full output is in the log]"


def cut_failures(failures: list[tuple[str, str]], limit: int = OUTPUT_LIMIT,
                 budget: int = OUTPUTS_BUDGET) -> tuple[dict, ...]:
    """``[{"name", "output"}]``: each output cut at ``limit`` bytes, all of them within
    ``budget`` (a DynamoDB item's size is bounded); later ones beyond it get a note."""
    found, used = [], 0
    for name, output in failures:
        text = cut_output(output or "", limit)
        size = len(text.encode("utf-8", "replace"))
        if used + size > budget:
            text = "[output not stored: too much output in this job; see the log]"
            size = len(text)
        used += size
        found.append({"name": name, "output": text})
    return tuple(found)


def record(table: Any, try_id: str, job: str, owner: str, attempt: int,
           result: JobResult, now: float) -> bool:
    """Store the attempt's result and end the job; False when the lease is not
    ``owner``'s any more (another agent took the job over: nothing is written)."""
    if result.state not in (model.PASSED, model.FAILED, model.ERROR):
        raise ValueError(f"an attempt ends passed, failed or error, not {result.state!r}")
    values = {
        "passed": result.passed,
        "failed": list(result.failed),
        "flaky": list(result.flaky),
        "preexisting": list(result.preexisting),
        "skipped": result.skipped,
        "failures": [dict(f) for f in result.failures],
        "duration": _number(result.duration),
    }
    if result.log_key:
        values["log_key"] = result.log_key
    if result.report_key:
        values["report_key"] = result.report_key
    if result.error:
        values["error"] = result.error[:MAX_ERROR_CHARS]
    return _end(table, try_id, job, owner, attempt, now, values, state=result.state)


def record_history(table: Any, try_id: str, job: str, results: dict[str, str],
                   expires: int, created: str) -> int:
    """One history item per test of ``results`` (name -> one of ``HISTORY_RESULTS``);
    returns how many were written."""
    written = 0
    with table.batch_writer() as batch:
        for name, result in sorted(results.items()):
            if result not in model.HISTORY_RESULTS or not model.TEST_NAME_RE.match(name):
                continue
            batch.put_item(Item={**model.history_key(name, try_id, job), "test": name,
                                 "try_id": try_id, "job": job, "result": result,
                                 "created": created, "expires": int(expires)})
            written += 1
    return written


def _end(table: Any, try_id: str, job: str, owner: str, attempt: int, now: float,
         values: dict, *, state: str, attempt_shown: int | None = None) -> bool:
    condition, condition_values = _mine(owner, attempt)
    names = {"#state": "state"}
    sets = ["#state = :state", "ended = :ended"]
    expression_values = {**condition_values, ":state": state, ":ended": iso(now)}
    for i, (name, value) in enumerate(sorted(values.items())):
        names[f"#f{i}"] = name
        expression_values[f":f{i}"] = value
        sets.append(f"#f{i} = :f{i}")
    if attempt_shown is not None:
        sets.append("attempt = :shown")
        expression_values[":shown"] = attempt_shown
    done = _update(table, model.job_key(try_id, job),
                   UpdateExpression="SET " + ", ".join(sets) + " REMOVE lease_until",
                   ConditionExpression=condition, ExpressionAttributeNames=names,
                   ExpressionAttributeValues=expression_values) is not None
    if done:
        store.refresh_try_state(table, try_id)
    return done


def end_cancelled(table: Any, try_id: str, job: str, owner: str, attempt: int,
                  now: float) -> bool:
    """End ``owner``'s running attempt ``cancelled`` (its run was stopped: no result is
    stored); False when it is not theirs any more (nothing is written)."""
    return _end(table, try_id, job, owner, attempt, now, {}, state=model.CANCELLED)


def requeue(table: Any, try_id: str, job: str, owner: str, attempt: int) -> bool:
    """Put the job back (``queued``, no lease) for another agent, taking the attempt back
    (a stopped agent is not a lost one: it does not count towards ``MAX_ATTEMPTS``);
    False when it is not ``owner``'s running attempt (it ended, or another agent took it
    over)."""
    condition, values = _mine(owner, attempt)
    return _update(table, model.job_key(try_id, job),
                   UpdateExpression=("SET #state = :queued, attempt = attempt - :one "
                                     "REMOVE lease_owner, lease_until"),
                   ConditionExpression=condition,
                   ExpressionAttributeNames={"#state": "state"},
                   ExpressionAttributeValues={**values, ":queued": model.QUEUED, ":one": 1}
                   ) is not None


def give_up(table: Any, try_id: str, job: str, now: float, reason: str) -> bool:
    """End a job that will not be run again (its message is in the dead-letter queue)
    in ``error``, unless it has ended or an agent holds a live lease on it."""
    done = _update(
        table, model.job_key(try_id, job),
        UpdateExpression=("SET #state = :error, #error = :reason, ended = :ended "
                          "REMOVE lease_owner, lease_until"),
        ConditionExpression=("attribute_exists(pk) AND (#state = :queued OR "
                             "(#state = :running AND lease_until < :now))"),
        ExpressionAttributeNames={"#state": "state", "#error": "error"},
        ExpressionAttributeValues={":error": model.ERROR, ":reason": reason[:MAX_ERROR_CHARS],
                                   ":ended": iso(now), ":queued": model.QUEUED,
                                   ":running": model.RUNNING, ":now": _number(now)}) is not None
    if done:
        store.refresh_try_state(table, try_id)
    return done


# -- reads -------------------------------------------------------------------------

def _plain(value: Any) -> Any:
    """DynamoDB's Decimals as int/float, recursively."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def get_job(table: Any, try_id: str, job: str) -> dict | None:
    """The job's item (consistent read), or None."""
    item = table.get_item(Key=model.job_key(try_id, job), ConsistentRead=True).get("Item")
    return _plain(item) if item else None


def get_try(table: Any, try_id: str) -> dict | None:
    """The try's item (consistent read), or None."""
    item = table.get_item(Key=model.try_key(try_id), ConsistentRead=True).get("Item")
    return _plain(item) if item else None


def job_items(table: Any, try_id: str) -> list[dict]:
    """Every job item of the try, by name."""
    from boto3.dynamodb.conditions import Key

    items, start = [], None
    while True:
        kwargs = {"ExclusiveStartKey": start} if start else {}
        page = table.query(
            KeyConditionExpression=Key("pk").eq(model.try_key(try_id)["pk"])
            & Key("sk").begins_with("JOB#"), ConsistentRead=True, **kwargs)
        items += [_plain(i) for i in page.get("Items", [])]
        start = page.get("LastEvaluatedKey")
        if not start:
            return sorted(items, key=lambda i: i.get("name", ""))
