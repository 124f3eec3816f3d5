"""The web function: a Lambda Function URL handler (payload format 2.0) serving the
pages and their JSON twins, read-only.

Routes (GET only): ``/``, ``/try/<id>``, ``/try/<id>/log/<job>`` (302 to a presigned S3
URL), ``/test/<name>`` (a test's history; the name percent-encoded), ``/api/tries``,
``/api/try/<id>``, ``/api/test/<name>``. Anything else is a 404; an id, job or test name
is matched against model.py's patterns before it goes near a key.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hgautomation.server import model, pages, store

# The route patterns capture exactly what model.py's patterns match.
_ID = "(" + model.TRY_ID_RE.pattern.removesuffix(r"\Z") + ")"
_JOB = "(" + model.JOB_NAME_RE.pattern.removesuffix(r"\Z") + ")"
ROUTES = (
    (re.compile(r"/\Z"), "index"),
    (re.compile(rf"/try/{_ID}\Z"), "try"),
    (re.compile(rf"/try/{_ID}/log/{_JOB}\Z"), "log"),
    (re.compile(r"/api/tries\Z"), "api_tries"),
    (re.compile(rf"/api/try/{_ID}\Z"), "api_try"),
    (re.compile(r"/test/([^/]+)\Z"), "test"),
    (re.compile(r"/api/test/([^/]+)\Z"), "api_test"),
)

HTML, JSON, TEXT = ("text/html; charset=utf-8", "application/json",
                    "text/plain; charset=utf-8")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Response:
    status: int
    body: str
    content_type: str = HTML
    location: str = ""

    def payload(self) -> dict:
        """The Function URL's answer (payload format 2.0)."""
        headers = {"Content-Type": self.content_type,
                   "Content-Security-Policy": pages.CSP,
                   "X-Content-Type-Options": "nosniff",
                   "Referrer-Policy": "no-referrer",
                   "Cache-Control": "no-store"}
        if self.location:
            headers["Location"] = self.location
        if self.status == 405:
            headers["Allow"] = "GET"
        return {"statusCode": self.status, "headers": headers, "body": self.body,
                "isBase64Encoded": False}


def _json(document: Any) -> Response:
    return Response(200, json.dumps(document, indent=1, sort_keys=True) + "\n", JSON)


def not_found(path: str, api: bool) -> Response:
    if api:
        return Response(404, json.dumps({"error": "not found"}) + "\n", JSON)
    return Response(404, pages.not_found_page(f"Nothing here: {path}"))


def route(method: str, path: str, clients: store.Clients, bucket: str,
          now: float | None = None) -> Response:
    """Answer *method* *path* from the deployment's table and bucket."""
    api = path.startswith("/api/")
    if method != "GET":
        if api:
            return Response(405, json.dumps({"error": "method not allowed"}) + "\n", JSON)
        return Response(405, pages.error_page("Method not allowed",
                                              "This site is read-only: GET only."))
    found = next(((name, m) for pattern, name in ROUTES if (m := pattern.match(path))), None)
    if found is None:
        return not_found(path, api)
    name, match = found
    now = time.time() if now is None else now
    if name == "index":
        return Response(200, pages.index_page(store.recent_tries(clients.table), now))
    if name == "api_tries":
        return _json(store.list_document(store.recent_tries(clients.table)))
    if name in ("test", "api_test"):
        try:
            test = urllib.parse.unquote(match.group(1), errors="strict")
        except UnicodeDecodeError:
            return not_found(path, api)
        if not model.TEST_NAME_RE.match(test):
            return not_found(path, api)
        results = store.test_history(clients.table, test)
        if name == "api_test":
            return _json(store.history_document(test, results))
        return Response(200, pages.history_page(test, results, now))
    try_id = match.group(1)
    assert model.TRY_ID_RE.match(try_id)
    record = store.read_try(clients.table, try_id)
    if record is None:
        return not_found(path, api)
    if name == "api_try":
        return _json(store.document(record))
    if name == "try":
        return Response(200, pages.try_page(record, now))
    job = next((j for j in record.jobs if j.name == match.group(2)), None)
    if job is None or not job.log_key:
        return not_found(path, api)
    return Response(302, "", TEXT, location=store.log_url(clients.s3, bucket, job.log_key))


def respond(event: Mapping[str, Any], environ: Mapping[str, str],
            clients: store.Clients | None = None, now: float | None = None) -> dict:
    """The answer to one Function URL event (errors become a 500 page; the cause is
    logged, never shown)."""
    http = (event.get("requestContext") or {}).get("http") or {}
    method = str(http.get("method") or "GET").upper()
    path = str(event.get("rawPath") or "/")
    try:
        config = store.Config.from_environ(environ)
        clients = clients or store.warm_clients(config)
        response = route(method, path, clients, config.bucket, now)
    except Exception:
        log.exception("%s %s failed", method, path)
        response = Response(500, pages.error_page(
            "Server error", "The try database could not be read; try again shortly."))
    return response.payload()


def handler(event: Mapping[str, Any], context: Any) -> dict:
    """Lambda entry point."""
    return respond(event, os.environ)
