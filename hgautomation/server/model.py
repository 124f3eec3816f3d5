"""The Try server's data model: names, states, keys and records, shared by everything
that reads or writes a try (the Lambda functions, the agent, the client, deploy).

Standard library only: this package is zipped and run by the stock Lambda Python
runtime, where boto3 is the only package there is.

Where things live (one deployment per account and region):

- DynamoDB table ``TABLE``: one item per try (``pk = TRY#<id>``, ``sk = META``) and
  one per job (``pk = TRY#<id>``, ``sk = JOB#<name>``); the global secondary index
  ``RECENT_INDEX`` (``kind`` = "try", ``id``) lists tries newest first; ``expires``
  (epoch seconds) is the TTL attribute.
- The history of each test: one item per (test, try, job) (``history_key``), its result
  one of ``HISTORY_RESULTS``.
- S3 bucket (name from the deployment: ``bucket_name(account, region)``):
  ``tries/<id>/bundle.hg``, ``tries/<id>/<job>/<attempt>/log.txt`` and
  ``.../report.json`` (run-tests.py's JSON report).
- SQS: one queue per job name (``queue_name(job)``), each with a dead-letter queue
  (``dlq_name(job)``) after ``MAX_RECEIVES`` receives. A message is
  ``{"try": id, "job": name}``; the rest is in the table.
- SNS topic ``TOPIC`` (``topic_arn(account, region)``): one message when a try ends.
- The table also holds one rate-limit item per submitter (``rate_key(user)``): the
  epoch times of their tries of the last hour.
"""

from __future__ import annotations

import json
import re
import secrets
import time

PREFIX = "hg-try"
TABLE = f"{PREFIX}-state"
RECENT_INDEX = "recent"
UPLOAD_FUNCTION = "ci-try-server-upload"  # the client's default: a plain `try` reaches it
WEB_FUNCTION = f"{PREFIX}-web"
SUBMITTERS_GROUP = f"{PREFIX}-submitters"
UPLOAD_ROLE = f"{PREFIX}-upload"
WEB_ROLE = f"{PREFIX}-web"
AGENT_POLICY = f"{PREFIX}-agent"
TOPIC = f"{PREFIX}-events"  # SNS: a message when a try ends
DEFAULT_JOBS = ("linux",)
# Attempts of a job whose agent was lost (killed, its machine gone: the lease ran out)
# before the job ends in `error`. A stop that puts the job back (SIGTERM, Ctrl-C) takes
# its attempt back: it does not count.
MAX_ATTEMPTS = 3
# Receives of one job's message before SQS moves it to the dead-letter queue (`error`):
# the backstop for a job put back over and over.
MAX_RECEIVES = 10
DEFAULT_LEASE_SECONDS = 300
LAMBDA_RUNTIME = "python3.12"
# How long a try is kept (its items' TTL, its objects' lifecycle) and how many tries one
# submitter may send an hour: deploy's options, the functions' environment.
DEFAULT_RETENTION_DAYS = 30
RETENTION_DAYS_RANGE = (1, 3650)
DEFAULT_MAX_TRIES_PER_HOUR = 20
MAX_TRIES_PER_HOUR_RANGE = (1, 1000)

# Tags on everything deploy makes: destroy removes what carries them, nothing else.
TAG_MANAGED = "hgautomation:try-server"

# Job and try states. A try's state is derived from its jobs (try_state).
QUEUED, RUNNING = "queued", "running"
PASSED, FAILED, ERROR, CANCELLED, TIMED_OUT = (
    "passed", "failed", "error", "cancelled", "timed-out")
STATES = (QUEUED, RUNNING, PASSED, FAILED, ERROR, CANCELLED, TIMED_OUT)
FINAL = (PASSED, FAILED, ERROR, CANCELLED, TIMED_OUT)

# What the upload function accepts.
NODE_RE = re.compile(r"[0-9a-f]{40}\Z")
JOB_NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}\Z")
MAX_BUNDLE_BYTES = 4 * 1024 * 1024  # base64 of it fits Lambda's 6 MB request payload
MAX_FIELD_CHARS = {"branch": 256, "user": 512, "message": 64 * 1024}
BUNDLE2_MAGIC = b"HG20"


def bucket_name(account: str, region: str) -> str:
    """The deployment's bucket (bucket names are global: account and region in it)."""
    return f"{PREFIX}-{account}-{region}"


def topic_arn(account: str, region: str, partition: str = "aws") -> str:
    """The deployment's SNS topic (``TOPIC``)."""
    return f"arn:{partition}:sns:{region}:{account}:{TOPIC}"


def is_windows_job(job: str) -> bool:
    """A job named ``windows`` or ``windows-…`` runs on Windows (run-tests-windows' code);
    every other job on Linux."""
    return job == "windows" or job.startswith("windows-")


def queue_name(job: str) -> str:
    return f"{PREFIX}-job-{job}"


def dlq_name(job: str) -> str:
    return f"{PREFIX}-job-{job}-dlq"


def new_try_id(now: float | None = None) -> str:
    """A try id that sorts by time: ``20261207T191300Z-1a2b3c4d``."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    return f"{stamp}-{secrets.token_hex(4)}"


TRY_ID_RE = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{8}\Z")


# A test's name as run-tests.py reports it (``test-foo.t``, ``test-bar.t#case``).
TEST_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+#-]{0,199}\Z")
# A test's results in the history: what each outcome is called.
HISTORY_RESULTS = ("passed", "failed", "flaky", "preexisting")
HISTORY_LIMIT = 50  # results a test's page shows


def try_key(try_id: str) -> dict:
    return {"pk": f"TRY#{try_id}", "sk": "META"}


def job_key(try_id: str, job: str) -> dict:
    return {"pk": f"TRY#{try_id}", "sk": f"JOB#{job}"}


def history_key(test: str, try_id: str, job: str) -> dict:
    """One result of ``test`` in the history: newest first by sort key (ids sort by time)."""
    return {"pk": f"TEST#{test}", "sk": f"{try_id}#{job}"}


def test_path(test: str) -> str:
    """The test's history page, relative to the site root (the name percent-encoded)."""
    from urllib.parse import quote

    return "/test/" + quote(test, safe="")


def rate_key(user: str) -> dict:
    """The rate-limit item of submitter *user* (server/limits.py)."""
    return {"pk": f"RATE#{user}", "sk": "RATE"}


def bundle_key(try_id: str) -> str:
    return f"tries/{try_id}/bundle.hg"


def log_key(try_id: str, job: str, attempt: int) -> str:
    return f"tries/{try_id}/{job}/{attempt}/log.txt"


def report_key(try_id: str, job: str, attempt: int) -> str:
    return f"tries/{try_id}/{job}/{attempt}/report.json"


def message(try_id: str, job: str) -> str:
    """The SQS message body of one job."""
    return json.dumps({"try": try_id, "job": job}, sort_keys=True)


def try_state(job_states: list[str]) -> str:
    """A try's state from its jobs': running while any is queued or running, else the
    worst final state (error > timed-out > cancelled > failed > passed)."""
    if not job_states:
        return ERROR
    if any(s in (QUEUED, RUNNING) for s in job_states):
        return RUNNING if RUNNING in job_states or PASSED in job_states \
            or FAILED in job_states else QUEUED
    for state in (ERROR, TIMED_OUT, CANCELLED, FAILED):
        if state in job_states:
            return state
    return PASSED


def page_path(try_id: str) -> str:
    """The try's page, relative to the site root."""
    return f"/try/{try_id}"
