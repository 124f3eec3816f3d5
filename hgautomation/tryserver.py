"""The Try server: bundle draft changesets and hand them to its Lambda function.

Request payload (JSON): ``{"bundle": <base64 of an hg bundle, type gzip-v2>,
"node": <40 hex>, "branch": str, "user": str, "message": <full description>}``.
The bundle holds the draft ancestry of every draft the revision set names; node,
branch, user and message are those of the highest of them.

Response payload: a JSON list of messages (what the server has always sent; the
old client printed each element) or ``{"messages": [str, ...]}``, each message shown
as ``remote: <line>``; a bare JSON string is accepted too, and anything else is
shown as it is, with a warning (so an echoing function shows the request it
received). A failed submission is a Lambda function error (``FunctionError`` set)
whose payload is Lambda's usual ``{"errorMessage": str, "errorType": str, ...}``.

A control request names a try instead: ``{"action": "cancel", "try": ID}`` or
``{"action": "rerun", "try": ID, "failed": bool}`` (:func:`control_payload`); its reply
is like a submission's: ``try <id>: ...`` and the page.

The reply is untrusted: at most ``MAX_REPLY_BYTES`` are read, parsing never fails
(too deep, not UTF-8, not JSON: it is shown as text), and the console escapes and
bounds what it shows (``Console.remote_reply``).

A submission is sent once: the Invoke has a single attempt (only a connection that
was never made is tried again). An answer lost after the bundle went out is
:class:`~hgautomation.errors.TryOutcomeUnknown`: the server may have received it.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hgautomation import console, errors, hgrepo

if TYPE_CHECKING:
    from hgautomation.aws.session import AWSSession

# Lambda's limit for a synchronous (RequestResponse) invocation payload: 6 MB.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
TRY_REGION = "us-west-2"  # where Mercurial's Try server runs
# Lambda answers at most 6 MB; a reply is read up to this much, the rest left unread.
MAX_REPLY_BYTES = 8 * 1024 * 1024
# Seconds to wait for the answer once the bundle is sent: the server stores it first.
INVOKE_READ_TIMEOUT = 300


@dataclass(frozen=True)
class Changeset:
    """What the local repository says about one revision."""

    node: str
    branch: str
    user: str
    description: str
    phase: str

    @property
    def summary(self) -> str:
        lines = self.description.strip().splitlines()
        return lines[0] if lines else ""


@dataclass(frozen=True)
class TryResult:
    """The server's answer: its messages, and whether it reported a failure."""

    messages: list[str]
    failed: bool
    error_type: str = ""
    note: str = ""  # why the reply is shown as it came (not a list of messages)


@dataclass(frozen=True)
class Selection:
    """What ``try -r REVSET`` sends: the drafts the set names and the one it is named after.

    The bundle holds the draft ancestry of ``nodes``; ``head`` is the highest of them.
    """

    head: Changeset
    nodes: tuple[str, ...]


@dataclass(frozen=True)
class Bundle:
    """The bundle as it will be sent, and how many changesets hg put into it."""

    data: bytes
    changesets: int


def describe(repo: hgrepo.LocalRepo, rev: str) -> Changeset:
    """Resolve REV (exactly one changeset) and read its branch, user, description, phase."""
    node = hgrepo.resolve_revision(repo, rev)
    entry = json.loads(repo.run("log", "-r", node, "-T", "json").stdout)[0]
    return Changeset(node=node, branch=entry["branch"], user=entry["user"],
                     description=entry["desc"], phase=entry["phase"])


def select(repo: hgrepo.LocalRepo, revset: str) -> Selection:
    """Resolve REVSET as Mercurial's try client does: any number of changesets.

    Public members are left out (they are the base), secret ones are refused (never
    sent), and a set left without a draft is an error.
    """
    revisions = hgrepo.resolve_revset(repo, revset)
    if not revisions:
        raise errors.LocalRepoError(
            f"revision {revset!r} names no changeset in {repo.root}",
            hint="'hg log -r REVSET' shows what a revset names")
    secret = [r for r in revisions if r.phase == "secret"]
    if secret:
        first = min(secret, key=lambda r: r.rev)
        more = f" (and {len(secret) - 1} more)" if len(secret) > 1 else ""
        raise errors.UsageError(
            f"revision {revset!r} includes secret changeset {first.rev}:{first.node[:12]}"
            f"{more}: secret changesets are never sent to the Try server",
            hint=f"leave it out of -r, or make it shareable with "
                 f"'hg phase --draft -r {first.rev}'")
    drafts = [r for r in revisions if r.phase != "public" and r.node != hgrepo.NULL_NODE]
    if not drafts:
        if all(r.node == hgrepo.NULL_NODE for r in revisions):
            raise errors.LocalRepoError(
                f"revision {revset!r} is the null revision: {repo.root} has no changeset "
                "checked out", hint="commit first, or name a revision with -r")
        what = (f"revision {revisions[0].node[:12]} is public" if len(revisions) == 1
                else f"revision {revset!r} names only public changesets")
        raise errors.LocalRepoError(
            f"{what}: the Try server only takes draft changesets",
            hint="commit your change as a draft or pick a draft revision")
    drafts.sort(key=lambda r: r.rev)
    head = describe(repo, drafts[-1].node)
    return Selection(head=head, nodes=tuple(r.node for r in drafts))


_FOUND = re.compile(rb"^(\d+) changesets? found$", re.MULTILINE)


def bundle(repo: hgrepo.LocalRepo, selection: Selection) -> Bundle:
    """Bundle the draft ancestry of the selection (base: ``public()``) through a temp file."""
    tmpdir = Path(tempfile.mkdtemp(prefix="hgautomation-try-"))
    path = tmpdir / "try.hg"
    revs = [arg for node in selection.nodes for arg in ("-r", node)]
    try:
        result = repo.run("bundle", "--type", "gzip-v2", "--base", "public()", *revs,
                          str(path), check=False)
        if result.returncode == 1:  # hg's "no changes found"
            raise errors.LocalRepoError(
                f"nothing to send: {selection.head.node[:12]} has no draft ancestors "
                "to bundle")
        if result.returncode != 0:
            lines = result.stderr.decode("utf-8", "replace").strip().splitlines()
            raise errors.LocalRepoError(
                f"hg bundle failed: {lines[-1] if lines else result.returncode}")
        found = _FOUND.search(result.stdout + result.stderr)
        return Bundle(path.read_bytes(), int(found.group(1)) if found else 0)
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        with contextlib.suppress(OSError):
            tmpdir.rmdir()


def build_payload(bundle: bytes, cs: Changeset) -> bytes:
    """The JSON request; refuses one above Lambda's synchronous payload limit."""
    payload = json.dumps({
        "bundle": base64.b64encode(bundle).decode("ascii"),
        "node": cs.node,
        "branch": cs.branch,
        "user": cs.user,
        "message": cs.description,
    }).encode("utf-8")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise errors.TryServerError(
            f"bundle too large: {len(bundle):,} bytes ({len(payload):,} bytes as the "
            f"base64 payload) exceeds Lambda's {MAX_PAYLOAD_BYTES:,}-byte limit for "
            "a synchronous invocation; nothing was sent",
            hint="send fewer or smaller changesets")
    return payload


def control_payload(action: str, try_id: str, failed: bool = False) -> bytes:
    """The JSON request of a cancel or a rerun (``failed``: only the jobs that did not
    pass) of try ``try_id``."""
    request: dict[str, object] = {"action": action, "try": try_id}
    if action == "rerun":
        request["failed"] = failed
    return json.dumps(request).encode("utf-8")


def _text(value: object) -> str:
    """A reply element as text; a structure too deep to print is said to be so."""
    if isinstance(value, str):
        return value
    try:
        return str(value)
    except RecursionError:
        return "(a value nested too deeply to show)"


def parse_response(raw: bytes, function_error: str | None) -> TryResult:
    """Turn the function's response payload into lines to show (see module doc).

    Never raises: whatever the bytes, the result is lines of text.
    """
    text = raw.decode("utf-8", errors="replace")
    note = "the Try server's reply is not a JSON list of messages; shown as it came"
    try:
        data = json.loads(text) if text.strip() else None
    except RecursionError:
        data, note = None, ("the Try server's reply is nested too deeply to read as JSON; "
                            "shown as it came")
    except ValueError:
        data = None
    else:
        if isinstance(data, str):
            return TryResult(data.splitlines() or [""], bool(function_error))
    if function_error:
        if isinstance(data, dict) and "errorMessage" in data:
            return TryResult(_text(data["errorMessage"]).splitlines(), True,
                             _text(data.get("errorType", "")))
        return TryResult(text.splitlines() or [f"function error ({function_error})"],
                         True, function_error)
    if isinstance(data, list):
        return TryResult([_text(m) for m in data], False)
    if isinstance(data, dict) and isinstance(data.get("messages"), list):
        return TryResult([_text(m) for m in data["messages"]], False)
    return TryResult(text.splitlines(), False, note=note if text.strip() else "")


def invoke(session: AWSSession, function: str, payload: bytes,
           what: str = "the bundle") -> TryResult:
    """Invoke ``function`` synchronously, once; AWS failures become one-line errors
    (``what`` names the request in them)."""
    from botocore import exceptions as bx

    from hgautomation.aws.session import client_error_code, translate_errors

    # One attempt: botocore would resend the whole bundle after a lost answer.
    client = session.client("lambda", attempts=1, read_timeout=INVOKE_READ_TIMEOUT)
    action = f"lambda:Invoke {function}"
    with translate_errors(action):
        for attempt in range(1, session.max_attempts + 1):
            try:
                response = client.invoke(FunctionName=function,
                                         InvocationType="RequestResponse", Payload=payload)
                raw = _read_reply(response["Payload"])
                break
            except bx.ConnectionError as exc:
                # No connection was made (refused, DNS, TLS, proxy): nothing was sent.
                if attempt == session.max_attempts:
                    raise errors.AWSEndpointError(
                        f"cannot reach AWS ({action}): {exc}; nothing was sent") from exc
                console.get().info(f"    AWS Invoke: {type(exc).__name__}; retrying "
                                   f"({attempt + 1}/{session.max_attempts})")
                time.sleep(min(2 ** (attempt - 1), 8))
            except (bx.HTTPClientError, bx.IncompleteReadError) as exc:
                raise errors.TryOutcomeUnknown(
                    f"{what} was sent to {function} but its answer was lost "
                    f"({type(exc).__name__}): the Try server may have received it",
                    hint="check whether it arrived before sending it again") from exc
            except bx.ClientError as exc:
                code = client_error_code(exc)
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if code == "ResourceNotFoundException":
                    raise errors.TryServerError(
                        f"no Lambda function named {function!r} in region {session.region}",
                        hint=f"check --function and --aws-region; the Try server lives in "
                             f"{TRY_REGION}") from exc
                if status == 413 or code == "RequestEntityTooLargeException":
                    named = (f" {console.printable(code[:100])}"
                             if code and code != str(status) else "")
                    raise errors.TryServerError(
                        f"Lambda refused the request as too large (HTTP {status}{named}); "
                        f"{function} did not run",
                        hint="send fewer or smaller changesets") from exc
                raise
    result = parse_response(raw[:MAX_REPLY_BYTES], response.get("FunctionError"))
    if len(raw) > MAX_REPLY_BYTES:
        return dataclasses.replace(result, note=f"the Try server's reply is longer than "
                                                f"{MAX_REPLY_BYTES:,} bytes: the rest was not read")
    return result


def _read_reply(body) -> bytes:
    """The response body, up to one byte past ``MAX_REPLY_BYTES`` (that byte says "more").

    Read to its end otherwise, so that botocore checks it against its Content-Length.
    """
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_REPLY_BYTES:
        chunk = body.read(min(1 << 20, MAX_REPLY_BYTES + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


# -- following a try -------------------------------------------------------------------

_TRY_LINE = re.compile(r"^try (\S+):")
WAIT_INTERVAL = 5.0  # seconds between two reads of a try being followed


@dataclass(frozen=True)
class Submitted:
    """What the server's reply says about the new try: its id and its page's address
    (the first line is ``try <id>: ...``, the last the page); None when it does not."""

    try_id: str | None
    url: str | None


def submitted(messages: list[str]) -> Submitted:
    """Read the try id and the page from the upload function's reply lines."""
    from hgautomation.server import model

    found = _TRY_LINE.match(messages[0]) if messages else None
    try_id = found.group(1) if found and model.TRY_ID_RE.match(found.group(1)) else None
    last = messages[-1].strip() if messages else ""
    url = last if try_id and (last.startswith(("https://", "http://", "/"))) \
        and not any(c.isspace() for c in last) else None
    return Submitted(try_id, url)


def open_table(session: AWSSession, name: str):
    """The Try server's DynamoDB table, read with the user's own credentials."""
    return session.boto.resource("dynamodb", config=session.config).Table(name)


def read_try(table, try_id: str) -> dict:
    """The try as ``/api/try/<id>`` shows it; TryServerError when the table lacks it."""
    from hgautomation.aws.session import translate_errors
    from hgautomation.server import store

    with translate_errors(f"dynamodb:GetItem {table.name}"):
        document = store.try_document(table, try_id)
    if document is None:
        raise errors.TryServerError(
            f"try {try_id} is not in the table {table.name}",
            hint="check --table and --aws-region")
    return document


def follow(table, try_id: str, on_change, *, interval: float = WAIT_INTERVAL,
           sleep=None) -> dict:
    """Read the try until every job has ended; ``on_change(job)`` for each new state or
    attempt of a job (once for each at the start). Returns the final document."""
    import time

    from hgautomation.server import model

    sleep = sleep or time.sleep
    seen: dict[str, tuple] = {}
    while True:
        document = read_try(table, try_id)
        for job in document["jobs"]:
            now = (job["state"], job["attempt"])
            if seen.get(job["name"]) != now:
                seen[job["name"]] = now
                on_change(job)
        if document["jobs"] and all(j["state"] in model.FINAL for j in document["jobs"]):
            return document
        sleep(interval)


def check_outcome(document: dict) -> None:
    """Raise for a try that did not pass: TestsFailed (exit 1) when tests failed,
    TryJobError (15) for a job in error, cancelled or timed out."""
    from hgautomation.server import model

    bad = [j for j in document["jobs"] if j["state"] != model.PASSED]
    if not bad:
        return
    broken = [j for j in bad if j["state"] != model.FAILED]
    if broken:
        names = ", ".join(f"{j['name']} {j['state']}" for j in broken)
        raise errors.TryJobError(f"try {document['id']}: {names}",
                                 hint="the try's page shows why")
    names = sorted({name for j in bad for name in j["failed"]})
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    raise errors.TestsFailed(f"try {document['id']}: {len(names)} test"
                             f"{'' if len(names) == 1 else 's'} failed: {shown}")
