"""The web function (hgautomation.server.web and pages) against moto: routes, status
codes, headers on every response, the JSON twins, and hostile text shown as text."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import ClassVar

import pytest

from hgautomation.server import jobs, model, pages, store, web

from .test_server_store import NOW, MotoDeployment, moto_deployment, submission

HOSTILE = ("<script>alert(1)</script> \"dq\" 'sq' </pre></td></table><img src=x "
           "onerror=alert(2)> <a href=\"javascript:alert(3)\">x</a> &amp; <!-- "
           "<style>body{display:none}</style> <meta http-equiv=refresh content=0;url=//e>")
DIFF = ("--- /tmp/hg/tests/test-commit.t\n+++ /tmp/hg/tests/test-commit.t.err\n"
        "@@ -1,3 +1,3 @@\n   $ hg commit -m x\n-  committed\n+  <script>alert(4)</script>\n")


@pytest.fixture(scope="module")
def deployment() -> Iterator[MotoDeployment]:
    """One deployment for the module: these tests only read it."""
    with moto_deployment() as d:
        yield d


@pytest.fixture(scope="module")
def tries(deployment: MotoDeployment) -> dict[str, str]:
    """Three tries: hostile (queued), failed (with a diff and a log), running."""
    ids = {}
    for name, sub in [("hostile", submission(message=HOSTILE + "\n\n" + HOSTILE,
                                             user=HOSTILE[:512], branch=HOSTILE[:256])),
                      ("failed", submission(message="break test-commit.t")),
                      ("running", submission(message="still going"))]:
        ids[name] = store.create_try(deployment.clients, deployment.config, sub, now=NOW).id
    t = ids["failed"]
    deployment.put_job(t, "linux", state="failed", attempt=1, passed=5, skipped=1,
                       failed=["test-commit.t", HOSTILE[:60]], duration=301.5,
                       failures=[{"name": "test-commit.t", "output": DIFF},
                                 {"name": HOSTILE[:60], "output": HOSTILE}],
                       log_key=model.log_key(t, "linux", 1),
                       started="2026-12-07T19:14:00Z", ended="2026-12-07T19:19:01Z")
    deployment.put_job(t, "win-x64", state="error", attempt=3,
                       error="lost its agent 3 times " + HOSTILE)
    deployment.put_job(ids["running"], "linux", state="running", attempt=2,
                       started="2026-12-07T19:14:00Z")
    ids["triaged"] = store.create_try(deployment.clients, deployment.config,
                                      submission(message="three kinds"), now=NOW + 60).id
    deployment.put_job(ids["triaged"], "linux", state="failed", attempt=1, passed=7,
                       failed=["test-new.t"], flaky=["test-flaky.t"],
                       preexisting=["test-pre.t"],
                       failures=[{"name": n, "output": f"-  ok\n+  {n} broke\n"}
                                 for n in ("test-new.t", "test-pre.t", "test-flaky.t")])
    for try_id, result in ((ids["failed"], "passed"), (ids["triaged"], "flaky")):
        jobs.record_history(deployment.clients.table, try_id, "linux",
                            {"test-flaky.t": result, "test-x.t#case": "failed"},
                            int(NOW) + 86400, "2026-12-07T19:20:00Z")
    return ids


def get(deployment: MotoDeployment, path: str, method: str = "GET") -> dict:
    event = {"version": "2.0", "rawPath": path, "rawQueryString": "",
             "headers": {"host": "abc.lambda-url.us-west-2.on.aws"},
             "requestContext": {"http": {"method": method, "path": path}}}
    return web.respond(event, deployment.environ, deployment.clients, now=NOW + 600)


class _Checker(HTMLParser):
    """Every tag and attribute of a page, and whether the elements nest."""

    VOID: ClassVar[set[str]] = {"meta", "br", "hr", "img", "link", "input"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)

    def handle_comment(self, data):
        self.errors.append(f"comment: {data!r}")


ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "header", "main", "footer",
                "a", "span", "b", "strong", "h1", "h2", "h3", "p", "pre", "code", "table",
                "thead", "tbody", "tr", "th", "td", "dl", "dt", "dd", "details", "summary"}


def check_page(body: str) -> _Checker:
    """Parse *body*: only our tags, balanced, links relative to root, no script."""
    checker = _Checker()
    checker.feed(body)
    checker.close()
    assert checker.errors == [] and checker.stack == []
    assert {t for t, _ in checker.tags} <= ALLOWED_TAGS
    assert [t for t, _ in checker.tags].count("style") == 1
    assert [t for t, _ in checker.tags].count("meta") <= 4
    for tag, attrs in checker.tags:
        assert not any(a.startswith("on") for a in attrs), (tag, attrs)
        if "href" in attrs:
            assert re.match(r"(/(?!/)|#)", attrs["href"]), attrs["href"]
        if tag == "meta" and "http-equiv" in attrs:
            assert attrs == {"http-equiv": "refresh", "content": "10"}
    assert "<script" not in body.lower()
    return checker


# -- headers and status codes ----------------------------------------------------------------

PATHS = ["/", "/api/tries", "/try/{failed}", "/api/try/{failed}", "/try/{failed}/log/linux",
         "/nope", "/try/{failed}/", "/try/20261207T191300Z-00000000", "/try/../../etc/passwd",
         "/try/{failed}/log/win-x64", "/try/{failed}/log/LINUX", "/api/try/x", "//try",
         "/try/{failed}%2F..", "/api/try/{failed}/extra", "/test/%ff", "/test/..%2Fx",
         "/api/test/a%20b", "/test/", "/test/a/b", "/api/test/%3Cscript%3E"]
HISTORY = ["/test/test-flaky.t", "/api/test/test-flaky.t", "/test/test-x.t%23case",
           "/test/test-never-ran.t"]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("template", PATHS + HISTORY)
def test_every_response_carries_the_csp(deployment, tries, template, method):
    response = get(deployment, template.format(**tries), method)
    headers = response["headers"]
    assert headers["Content-Security-Policy"] == (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Type"] in (web.HTML, web.JSON, web.TEXT)
    assert response["isBase64Encoded"] is False and isinstance(response["body"], str)
    if method == "POST":
        assert response["statusCode"] == 405 and headers["Allow"] == "GET"
    if headers["Content-Type"] == web.HTML:
        check_page(response["body"])


@pytest.mark.parametrize("template", PATHS[5:])
def test_anything_else_is_not_found(deployment, tries, template):
    response = get(deployment, template.format(**tries))
    assert response["statusCode"] == 404
    if template.startswith("/api/"):
        assert json.loads(response["body"]) == {"error": "not found"}
    else:
        assert "Not found" in response["body"]


def test_a_broken_table_is_a_500_without_details(deployment):
    env = dict(deployment.environ, TRY_TABLE="no-such-table")
    clients = store.Clients(table=deployment.session.resource("dynamodb").Table("no-such-table"),
                            s3=deployment.clients.s3, sqs=deployment.clients.sqs)
    event = {"rawPath": "/", "requestContext": {"http": {"method": "GET"}}}
    response = web.respond(event, env, clients)
    assert response["statusCode"] == 500
    assert "ResourceNotFound" not in response["body"] and "Traceback" not in response["body"]
    assert response["headers"]["Content-Security-Policy"] == pages.CSP


def test_the_log_redirects_to_a_presigned_url(deployment, tries):
    response = get(deployment, f"/try/{tries['failed']}/log/linux")
    assert response["statusCode"] == 302
    location = response["headers"]["Location"]
    assert location.startswith(f"https://{deployment.config.bucket}.s3.")
    assert f"/tries/{tries['failed']}/linux/1/log.txt?" in location
    assert "X-Amz-Signature=" in location


# -- the JSON twins ---------------------------------------------------------------------------

def test_api_try_is_the_document(deployment, tries):
    response = get(deployment, f"/api/try/{tries['failed']}")
    assert response["statusCode"] == 200 and response["headers"]["Content-Type"] == web.JSON
    doc = json.loads(response["body"])
    assert doc == store.try_document(deployment.clients.table, tries["failed"])
    assert set(doc) == {"id", "node", "user", "branch", "description", "created", "state",
                        "url", "rerun_of", "jobs"}
    assert doc["state"] == "error"
    linux = doc["jobs"][0]
    assert linux["failed"] == ["test-commit.t", HOSTILE[:60]]
    assert linux["failures"][0] == {"name": "test-commit.t", "output": DIFF}
    assert linux["log_url"] == f"/try/{tries['failed']}/log/linux"


def test_api_tries_lists_newest_first(deployment, tries):
    doc = json.loads(get(deployment, "/api/tries")["body"])
    assert list(doc) == ["tries"]
    assert {t["id"] for t in doc["tries"]} == set(tries.values())
    assert [t["id"] for t in doc["tries"]] == sorted((t["id"] for t in doc["tries"]),
                                                     reverse=True)
    for t in doc["tries"]:
        assert all("failures" not in j for j in t["jobs"])
    hostile = next(t for t in doc["tries"] if t["id"] == tries["hostile"])
    assert hostile["description"] == HOSTILE + "\n\n" + HOSTILE


# -- the pages ------------------------------------------------------------------------------------

def test_the_index_lists_every_try_with_its_jobs(deployment, tries):
    response = get(deployment, "/")
    assert response["statusCode"] == 200 and response["headers"]["Content-Type"] == web.HTML
    page = check_page(response["body"])
    text = "".join(page.text)
    for try_id in tries.values():
        assert f'href="/try/{try_id}"' in response["body"]
    assert "0123456789ab" in text and "0123456789abc" not in text  # 12 hex digits
    assert "break test-commit.t" in text and "10 min ago" in text
    assert "linuxfailed" in text and "win-x64error" in text and "linuxrunning" in text
    assert HOSTILE.split("\n")[0] in text  # shown as text, literally
    assert 'http-equiv="refresh"' in response["body"]  # tries are still running


def test_the_failed_try_shows_each_failure_and_its_diff(deployment, tries):
    body = get(deployment, f"/try/{tries['failed']}")["body"]
    page = check_page(body)
    text = "".join(page.text)
    assert DIFF.rstrip("\n") in text  # the whole diff, literally
    assert "+  <script>alert(4)</script>" in text
    assert '<span class="add">+  &lt;script&gt;alert(4)&lt;/script&gt;</span>' in body
    assert HOSTILE[:60] in text and "lost its agent 3 times " + HOSTILE in text
    assert "5 min 02 s" in text and "1 of 3" in text and "3 of 3" in text
    assert f'href="/try/{tries["failed"]}/log/linux"' in body
    assert "/log/win-x64" not in body  # no log, no link
    assert 'http-equiv="refresh"' not in body  # every job ended


def test_the_running_try_refreshes_itself(deployment, tries):
    body = get(deployment, f"/try/{tries['running']}")["body"]
    text = "".join(check_page(body).text)
    assert '<meta http-equiv="refresh" content="10">' in body
    assert "9 min 00 s so far" in text and "Waiting for an agent." in text


def test_the_hostile_try_is_shown_as_text(deployment, tries):
    body = get(deployment, f"/try/{tries['hostile']}")["body"]
    page = check_page(body)
    text = "".join(page.text)
    assert HOSTILE + "\n\n" + HOSTILE in text  # the description, whole, in its <pre>
    assert HOSTILE[:256] in text and HOSTILE[:512] in text
    # Only the page's own tags: the message's <a>, <img>, <meta>, <style> are text.
    assert not [a for t, a in page.tags if t == "a" and "javascript" in str(a)]
    assert [t for t, _ in page.tags].count("title") == 1


@pytest.mark.parametrize("value, shown", [
    ("<b>", "&lt;b&gt;"), ('"', "&quot;"), ("'", "&#x27;"), ("&", "&amp;")])
def test_text_escapes_quotes_too(value, shown):
    assert pages.text(value) == shown


@pytest.mark.parametrize("seconds, shown", [
    (None, "\u2014"), (4.25, "4.2 s"), (61, "1 min 01 s"), (3725, "1 h 02 min")])
def test_durations(seconds, shown):
    assert pages.duration(seconds) == shown


def test_an_unknown_state_is_labelled_as_it_is():
    assert pages.state_label("<x>") == '<span class="state s-error">&lt;x&gt;</span>'


def test_new_preexisting_and_flaky_failures_apart(deployment, tries):
    """New failures first (open, with their diff), then pre-existing, then flaky; every
    test name links to its history."""
    body = get(deployment, f"/try/{tries['triaged']}")["body"]
    text = "".join(check_page(body).text)
    order = [text.index(h) for h in ("New failures (1)", "Pre-existing failures (1)",
                                     "Flaky (1)")]
    assert order == sorted(order)
    assert text.index("test-new.t broke") < text.index("test-pre.t broke") \
        < text.index("test-flaky.t broke")
    assert '<details open id="job-linux-test-new.t">' in body
    assert '<details id="job-linux-test-flaky.t">' in body  # folded: not this try's doing
    for name in ("test-new.t", "test-pre.t", "test-flaky.t"):
        assert f'href="/test/{name}"' in body
    assert "7 passed, 1 failed, 0 skipped, 1 flaky, 1 pre-existing" in text
    document = json.loads(get(deployment, f"/api/try/{tries['triaged']}")["body"])
    job = document["jobs"][0]  # linux (the deployment has a second, queued job)
    assert (job["failed"], job["flaky"], job["preexisting"]) == \
        (["test-new.t"], ["test-flaky.t"], ["test-pre.t"])


def test_a_tests_history(deployment, tries):
    response = get(deployment, "/test/test-flaky.t")
    assert response["statusCode"] == 200
    body = response["body"]
    text = "".join(check_page(body).text)
    assert "1 passed, 0 failed, 1 flaky, 0 pre-existing" in text
    # Newest first: the triaged try was created after the failed one.
    assert body.index(tries["triaged"]) < body.index(tries["failed"])
    assert f'href="/try/{tries["triaged"]}"' in body
    document = json.loads(get(deployment, "/api/test/test-flaky.t")["body"])
    assert document["name"] == "test-flaky.t"
    assert [(r["try"], r["result"]) for r in document["results"]] == \
        [(tries["triaged"], "flaky"), (tries["failed"], "passed")]
    # A case's name (#) travels percent-encoded; a test with no result kept is a page.
    assert "test-x.t#case" in get(deployment, "/test/test-x.t%23case")["body"]
    never = get(deployment, "/test/test-never-ran.t")
    assert never["statusCode"] == 200 and "No result of this test is kept." in never["body"]
