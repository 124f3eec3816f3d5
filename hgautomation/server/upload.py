"""The upload function (``ci-try-server-upload``): check a try request, store it, queue
its jobs, and answer with the lines the client prints.

Request: ``{"bundle": <base64>, "node": <40 hex>, "branch", "user", "message"}``.
A bad request raises ValueError with one line naming the field; nothing is stored. So
does a submitter's try beyond ``TRY_MAX_TRIES_PER_HOUR`` in an hour (server/limits.py).
A request with an ``action`` key is a cancel or a rerun instead (control.py).
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from typing import Any

from hgautomation.server import control, limits, model, store

FIELDS = ("bundle", "node", "branch", "user", "message")
# The longest base64 text that can decode to MAX_BUNDLE_BYTES: refused before decoding.
_MAX_BASE64_CHARS = 4 * ((model.MAX_BUNDLE_BYTES + 2) // 3)



def check_request(event: Any) -> store.Submission:
    """The submission *event* asks for; ValueError (one line) if anything is wrong."""
    if not isinstance(event, dict):
        raise ValueError(f"request: expected a JSON object, got {_json_type(event)}")
    missing = [k for k in FIELDS if k not in event]
    if missing:
        raise ValueError(f"request: missing {', '.join(missing)}")
    unknown = sorted(str(k) for k in event if k not in FIELDS)
    if unknown:
        raise ValueError(f"request: unknown key {', '.join(map(repr, unknown))} "
                         f"(expected {', '.join(FIELDS)})")
    for name in FIELDS:
        value = event[name]
        if not isinstance(value, str):
            raise ValueError(f"{name}: expected a string, got {_json_type(value)}")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{name}: not valid Unicode (a lone surrogate)") from None
    if not model.NODE_RE.match(event["node"]):
        raise ValueError("node: expected 40 hexadecimal digits (lower case)")
    for name, limit in model.MAX_FIELD_CHARS.items():
        if len(event[name]) > limit:
            raise ValueError(f"{name}: longer than {limit} characters")
    for name in ("branch", "user"):
        if not event[name]:
            raise ValueError(f"{name}: empty")
    return store.Submission(node=event["node"], branch=event["branch"], user=event["user"],
                            message=event["message"], bundle=_bundle(event["bundle"]))


def _bundle(text: str) -> bytes:
    if len(text) > _MAX_BASE64_CHARS:
        raise ValueError(f"bundle: larger than {model.MAX_BUNDLE_BYTES} bytes")
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise ValueError("bundle: not valid base64") from None
    if len(data) > model.MAX_BUNDLE_BYTES:
        raise ValueError(f"bundle: larger than {model.MAX_BUNDLE_BYTES} bytes")
    if not data.startswith(model.BUNDLE2_MAGIC):
        raise ValueError("bundle: not a Mercurial bundle2 stream (it does not start "
                         f"with {model.BUNDLE2_MAGIC.decode()})")
    return data


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def reply(record: store.Try, web_url: str) -> list[str]:
    """The lines the client prints: the try, its jobs, its page."""
    names = [j.name for j in record.jobs]
    count = f"{len(names)} job{'s' if len(names) != 1 else ''}"
    return [f"try {record.id}: {count} queued ({', '.join(names)})",
            web_url + model.page_path(record.id)]


def submit(event: Any, environ: Mapping[str, str], clients: store.Clients | None = None,
           now: float | None = None) -> list[str]:
    """Check *event*, then store and queue it with the deployment *environ* names."""
    submission = check_request(event)
    config = store.Config.from_environ(environ)
    clients = clients or store.warm_clients(config)
    # Before anything is stored: a refused try leaves nothing behind.
    limits.take_slot(clients.table, submission.user, config.max_tries_per_hour, now)
    record = store.create_try(clients, config, submission, now=now)
    return reply(record, config.web_url)


def handler(event: Any, context: Any) -> list[str]:
    """Lambda entry point: a control request (an ``action`` key: cancel or rerun, see
    control.py) or a submission."""
    if control.is_control(event):
        return control.handle(event, os.environ, reply)
    return submit(event, os.environ)
