"""Cancel and rerun: the upload function's control requests, told from a submission by
their ``action`` key. Only who may invoke the upload function (the submitters' group)
can send them.

- ``{"action": "cancel", "try": ID}``: queued jobs end ``cancelled`` at once (a write
  conditional on ``state = queued``); running ones get ``cancel_requested``, which their
  agent reads at its next lease renewal: it stops the run and ends the job ``cancelled``.
- ``{"action": "rerun", "try": ID, "failed": bool}``: a new try with the same bundle
  (copied in S3), ``rerun_of = ID``, of all the try's jobs or (``failed``) only those
  that did not pass; queued and answered as a submission is.

A bad request raises ValueError with one line; nothing is changed.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hgautomation.server import limits, model, notify, store

ACTIONS = ("cancel", "rerun")
FIELDS = {"cancel": ("action", "try"), "rerun": ("action", "try", "failed")}
# Reads and writes of one job while it changes state under the cancel (claimed by an
# agent, put back by one) before giving up.
CANCEL_ROUNDS = 5

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    """A checked control request."""

    action: str
    try_id: str
    failed: bool = False


def is_control(event: Any) -> bool:
    """Whether *event* is a control request (a submission has no ``action``)."""
    return isinstance(event, dict) and "action" in event


def check_request(event: Mapping[str, Any]) -> Request:
    """The control request *event* makes; ValueError (one line) if anything is wrong."""
    action = event.get("action")
    if action not in ACTIONS:
        got = f", got {action[:40]!r}" if isinstance(action, str) else ""
        raise ValueError(f"action: expected {' or '.join(map(repr, ACTIONS))}{got}")
    fields = FIELDS[action]
    unknown = sorted(str(k) for k in event if k not in fields)
    if unknown:
        raise ValueError(f"request: unknown key {', '.join(map(repr, unknown))} for "
                         f"{action} (expected {', '.join(fields)})")
    if "try" not in event:
        raise ValueError("request: missing try")
    try_id = event["try"]
    if not (isinstance(try_id, str) and model.TRY_ID_RE.match(try_id)):
        raise ValueError("try: expected a try id (a string like 20261207T191300Z-1a2b3c4d)")
    failed = event.get("failed", False)
    if not isinstance(failed, bool):
        raise ValueError("failed: expected true or false")
    return Request(action=action, try_id=try_id, failed=failed)


def _read(table: Any, try_id: str) -> store.Try:
    record = store.read_try(table, try_id)
    if record is None:
        raise ValueError(f"try {try_id}: no such try (expired, or never submitted here)")
    return record


# -- cancel ------------------------------------------------------------------------------

CANCELLED, STOPPING, ENDED = "cancelled", "stopping", "already ended"


def cancel(table: Any, try_id: str, web_url: str = "", now: float | None = None
           ) -> list[str]:
    """Cancel the try's jobs that have not ended; the lines the client prints:
    ``try ID: 1 job cancelled (linux), 1 stopping (windows)`` and the page."""
    record = _read(table, try_id)
    page = web_url + model.page_path(try_id)
    now = time.time() if now is None else now
    done: dict[str, list[str]] = {CANCELLED: [], STOPPING: [], ENDED: []}
    if all(j.state in model.FINAL for j in record.jobs):
        return [f"try {try_id}: already ended ({record.state}): nothing to cancel", page]
    for job in record.jobs:
        done[_cancel_job(table, try_id, job.name, job.state, now)].append(job.name)
    if not (done[CANCELLED] or done[STOPPING]):  # every job ended meanwhile
        return [f"try {try_id}: already ended ({_read(table, try_id).state}): nothing to "
                "cancel", page]
    store.refresh_try_state(table, try_id)
    parts = []
    for what, names in done.items():
        if names:
            count = (f"{len(names)} job{'' if len(names) == 1 else 's'}" if not parts
                     else str(len(names)))
            parts.append(f"{count} {what} ({', '.join(names)})")
    return [f"try {try_id}: {', '.join(parts)}", page]


def _cancel_job(table: Any, try_id: str, job: str, state: str, now: float) -> str:
    """Cancel one job seen in *state*: CANCELLED, STOPPING (its agent stops it) or ENDED."""
    key = model.job_key(try_id, job)
    for _ in range(CANCEL_ROUNDS):
        if state in model.FINAL:
            return ENDED
        if state == model.QUEUED:
            # Its message stays in the queue: the agent that receives it finds the job
            # ended and deletes it.
            if _update(table, key, "SET #state = :cancelled, ended = :ended "
                                   "REMOVE lease_owner, lease_until",
                       "#state = :queued", {":queued": model.QUEUED}, now):
                return CANCELLED
        elif state == model.RUNNING:
            # A lease run out: its agent is lost and nothing runs the job; else the agent
            # reads the request at its next renewal.
            if _update(table, key, "SET #state = :cancelled, ended = :ended "
                                   "REMOVE lease_owner, lease_until",
                       "#state = :running AND lease_until < :now",
                       {":running": model.RUNNING, ":now": Decimal(str(round(now, 3)))}, now):
                return CANCELLED
            if _update(table, key, "SET cancel_requested = :yes", "#state = :running",
                       {":running": model.RUNNING, ":yes": True}, None):
                return STOPPING
        state = _job_state(table, key)
    raise RuntimeError(f"job {job} of try {try_id} changed state {CANCEL_ROUNDS} times "
                       "while being cancelled: cancel again")


def _job_state(table: Any, key: dict) -> str:
    """The job's state as stored now (a missing item: ended, there is nothing to stop)."""
    from boto3.dynamodb.conditions import Key

    items = table.query(KeyConditionExpression=Key("pk").eq(key["pk"]) & Key("sk").eq(key["sk"]),
                        ConsistentRead=True).get("Items", [])
    return str(items[0].get("state")) if items else model.CANCELLED


def _update(table: Any, key: dict, expression: str, condition: str, values: dict,
            now: float | None) -> bool:
    """A conditional UpdateItem of a job item; False when the condition did not hold."""
    if now is not None:
        values = {**values, ":cancelled": model.CANCELLED, ":ended": store.iso_time(now)}
    try:
        table.update_item(Key=key, UpdateExpression=expression,
                          ConditionExpression=f"attribute_exists(pk) AND {condition}",
                          ExpressionAttributeNames={"#state": "state"},
                          ExpressionAttributeValues=values)
    except table.meta.client.exceptions.ConditionalCheckFailedException:
        return False
    return True


# -- rerun -------------------------------------------------------------------------------

def rerun(clients: store.Clients, config: store.Config, try_id: str, failed: bool = False,
          now: float | None = None) -> store.Try:
    """A new try of *try_id*'s bundle, with all its jobs or (*failed*) only those that
    did not pass; stored and queued as a submission is."""
    record = _read(clients.table, try_id)
    if failed:
        unended = [f"{j.name} {j.state}" for j in record.jobs if j.state not in model.FINAL]
        if unended:
            raise ValueError(f"try {try_id} has not ended ({', '.join(unended)}): its "
                             "failed jobs can be rerun once every job has ended")
        names = [j.name for j in record.jobs if j.state != model.PASSED]
        if not names:
            raise ValueError(f"try {try_id}: every job passed: no failed job to rerun")
    else:
        names = [j.name for j in record.jobs]
        if not names:
            raise ValueError(f"try {try_id} has no job to rerun")
    gone = [n for n in names if n not in config.jobs]
    if gone:
        raise ValueError(f"try {try_id}: job {gone[0]} is not deployed here any more "
                         f"(jobs: {', '.join(config.jobs) or 'none'}): nothing rerun")
    if not _bundle_kept(clients, config, try_id):
        raise ValueError(f"try {try_id}: its bundle is gone (expired): nothing to rerun")
    # A rerun is a try like any other: it counts towards its user's hourly limit.
    limits.take_slot(clients.table, record.user, config.max_tries_per_hour, now)
    submission = store.Submission(
        node=record.node, branch=record.branch, user=record.user, message=record.description,
        bundle=b"", rerun_of=try_id, copy_bundle=model.bundle_key(try_id))
    try:
        # The copy comes first: when it fails, nothing has been stored.
        return store.create_try(clients, dataclasses.replace(config, jobs=tuple(names)),
                                submission, now=now)
    except Exception as exc:
        code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code")
        if code in ("NoSuchKey", "404"):
            raise ValueError(f"try {try_id}: its bundle is gone (expired): nothing to "
                             "rerun") from None
        raise


def _bundle_kept(clients: store.Clients, config: store.Config, try_id: str) -> bool:
    """Whether the try's bundle is still in the bucket (checked before anything is
    written; the copy can still find it gone, as it expires meanwhile)."""
    try:
        clients.s3.head_object(Bucket=config.bucket, Key=model.bundle_key(try_id))
    except Exception as exc:
        code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code")
        if code in ("NoSuchKey", "404"):
            return False
        raise
    return True


# -- the entry -------------------------------------------------------------------------

def handle(event: Mapping[str, Any], environ: Mapping[str, str],
           reply: Callable[[store.Try, str], list[str]],
           clients: store.Clients | None = None, now: float | None = None) -> list[str]:
    """Check the control request *event*, then do it in the deployment *environ* names;
    the lines the client prints (a rerun's: *reply*, the upload function's for a
    submission)."""
    request = check_request(event)
    config = store.Config.from_environ(environ)
    clients = clients or store.warm_clients(config)
    if request.action == "cancel":
        lines = cancel(clients.table, request.try_id, config.web_url, now)
        _announce(clients.table, config, request.try_id)
        return lines
    return reply(rerun(clients, config, request.try_id, request.failed, now), config.web_url)


def _announce(table: Any, config: store.Config, try_id: str) -> None:
    """The try's message when the cancel ended it (every job cancelled at once); a
    failure is logged: the cancel itself is done."""
    if not config.topic:
        return
    try:
        import boto3

        notify.try_ended(table, boto3.client("sns"), config.topic, try_id)
    except Exception:
        log.exception("try %s: its end was not announced", try_id)
