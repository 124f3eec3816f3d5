"""The Try server's pages in headless Chromium: web.handler behind a local Function URL
stand-in (payload 2.0), its table, bucket and queues in moto (made from store's
definitions, as deploy makes them).

Screenshots go to pytest's tmp dir, and also to $TRY_PAGES_SCREENSHOTS when set (for a
person to look at them).
"""

from __future__ import annotations

import os
import re
import shutil
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest
from harness import browser

from hgautomation.server import model, store, web

JOBS = ("linux", "windows")
NODE = "6c0f5c3a8e7d4b1f2a9e3d5c7b1a0f9e8d7c6b5a"
DIFF = """\
--- /home/hg/src/tests/test-commit.t
+++ /home/hg/src/tests/test-commit.t.err
@@ -118,9 +118,9 @@
   $ hg add foo
   $ HGEDITOR=false hg commit
   abort: edit failed: false exited with status 1
-  [250]
+  [255]
   $ hg -q commit -m "a commit"
   $ hg log -r . -T '{desc}\\n'
-  a commit
+  a commit (amended)
   $ cd ..
"""
HOSTILE_SUMMARY = "<script>document.title='PWNED'</script><b>bold</b> \"quotes\" 'too'"
HOSTILE = (HOSTILE_SUMMARY + "\n\n</pre><img src=x onerror=\"document.title='IMG'\">\n"
           "<a href=\"javascript:alert(1)\">click me</a>\n"
           "<style>body { display: none }</style>\n"
           "<meta http-equiv=\"refresh\" content=\"0;url=https://example.com/\">\n"
           "&lt;already escaped&gt; & ampersands\n")


def _dynamo(value):
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, list):
        return [_dynamo(v) for v in value]
    if isinstance(value, dict):
        return {k: _dynamo(v) for k, v in value.items()}
    return value


def _set_job(table, try_id: str, job: str, **attributes) -> None:
    """What the agent records, written directly (the agent is not part of this test)."""
    names = {f"#a{i}": k for i, k in enumerate(attributes)}
    values = {f":v{i}": _dynamo(v) for i, v in enumerate(attributes.values())}
    table.update_item(Key=model.job_key(try_id, job), ExpressionAttributeNames=names,
                      ExpressionAttributeValues=values,
                      UpdateExpression="SET " + ", ".join(
                          f"{n} = {v}" for n, v in zip(names, values)))
    store.refresh_try_state(table, try_id)


@pytest.fixture
def site(aws_fresh, monkeypatch):
    """The deployment in moto, four tries in it, and the site's root URL."""
    import boto3

    for name, value in aws_fresh.env.items():
        monkeypatch.setenv(name, value)
    session = boto3.session.Session()
    ddb = session.client("dynamodb")
    ddb.create_table(**store.table_definition())
    sqs = session.client("sqs")
    queues = {}
    for job in JOBS:
        dlq = sqs.create_queue(QueueName=model.dlq_name(job),
                               Attributes=store.dlq_attributes())["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])
        queues[job] = sqs.create_queue(
            QueueName=model.queue_name(job),
            Attributes=store.queue_attributes(arn["Attributes"]["QueueArn"]))["QueueUrl"]
    bucket = model.bucket_name("123456789012", aws_fresh.region)
    s3 = session.client("s3")
    s3.create_bucket(Bucket=bucket,
                     CreateBucketConfiguration={"LocationConstraint": aws_fresh.region})
    config = store.Config(table=model.TABLE, bucket=bucket, jobs=JOBS, queues=queues)
    for name, value in config.environment().items():
        monkeypatch.setenv(name, value)
    clients = store.connect(config, session)
    table = clients.table
    now = time.time()

    def submit(message: str, ago: float, **fields) -> str:
        sub = store.Submission(node=fields.get("node", NODE), branch=fields.get(
            "branch", "default"), user=fields.get("user", "Alice Hacker <alice@example.org>"),
            message=message, bundle=b"HG20\0\0\0\0")
        return store.create_try(clients, config, sub, now=now - ago).id

    ids = {}
    ids["passed"] = submit("commit: keep the author of an amended commit\n\nDetails.", 5400,
                           node="1f2e3d4c5b6a79880123456789abcdef01234567")
    for job in JOBS:
        _set_job(table, ids["passed"], job, state="passed", attempt=1, passed=1043,
                 skipped=87, duration=1712.4, log_key=model.log_key(ids["passed"], job, 1))
    ids["failed"] = submit("commit: exit 255 when the editor fails\n\n"
                           "An editor that fails is an abort, not a user error.", 1800,
                           node="a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9",
                           user="Bob Dev <bob@example.net>", branch="stable")
    _set_job(table, ids["failed"], "linux", state="failed", attempt=1, passed=1041,
             skipped=87, failed=["test-commit.t", "test-amend.t"], duration=1650.0,
             failures=[{"name": "test-commit.t", "output": DIFF},
                       {"name": "test-amend.t", "output": DIFF.replace("commit.t",
                                                                         "amend.t")}],
             log_key=model.log_key(ids["failed"], "linux", 1),
             started=store.iso_time(now - 1790), ended=store.iso_time(now - 140))
    _set_job(table, ids["failed"], "windows", state="error", attempt=3,
             error="the job's agent was lost 3 times (lease expired); gave up")
    ids["hostile"] = submit(HOSTILE, 600, user="<img src=x onerror=alert(1)> \"Mallory\"",
                            branch="</pre><script>alert('branch')</script>")
    _set_job(table, ids["hostile"], "linux", state="failed", attempt=1, passed=3,
             failed=[HOSTILE_SUMMARY], failures=[{"name": HOSTILE_SUMMARY,
                                                  "output": "+" + HOSTILE}],
             duration=12.0)
    ids["running"] = submit("rust: speed up the dirstate walk", 200,
                            node="fedcba9876543210fedcba9876543210fedcba98")
    _set_job(table, ids["running"], "linux", state="running", attempt=2,
             started=store.iso_time(now - 150))
    with browser.function_url(web.handler) as url:
        yield url, ids


def _screens(tmp_path: Path) -> Path:
    return Path(os.environ.get("TRY_PAGES_SCREENSHOTS") or tmp_path)


def _get(url: str) -> tuple[int, dict, str]:
    request = urllib.request.Request(url)
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, dict(reply.headers), reply.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode()


needs_chromium = pytest.mark.skipif(browser.chromium() is None,
                                    reason="chromium is not installed (.ci/run installs it)")


def test_the_pages_over_http(site):
    url, ids = site
    for path in ["/", f"/try/{ids['failed']}", "/api/tries", f"/api/try/{ids['hostile']}",
                 "/nope"]:
        status, headers, _ = _get(url + path)
        assert status == (404 if path == "/nope" else 200), path
        assert headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert headers["X-Content-Type-Options"] == "nosniff"


@needs_chromium
def test_screenshots_and_the_dom(site, tmp_path):
    url, ids = site
    out = _screens(tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    shots = {"index": "/", "try-failed": f"/try/{ids['failed']}",
             "try-running": f"/try/{ids['running']}", "try-hostile": f"/try/{ids['hostile']}",
             "try-passed": f"/try/{ids['passed']}"}
    for name, path in shots.items():
        png = browser.screenshot(url + path, tmp_path / f"{name}.png")
        assert png.stat().st_size > 10_000, name  # a page, not a blank
        if out != tmp_path:
            shutil.copy(png, out / png.name)

    index = browser.dump_dom(url + "/")
    assert "<title>Mercurial Try server</title>" in index
    for try_id in ids.values():
        assert f'href="/try/{try_id}"' in index
    assert "commit: exit 255 when the editor fails" in index

    failed = browser.dump_dom(url + f"/try/{ids['failed']}")
    assert "test-commit.t" in failed and "test-amend.t" in failed
    assert "+  [255]" in failed and "-  [250]" in failed  # the diff, as text
    assert "gave up" in failed

    running = browser.dump_dom(url + f"/try/{ids['running']}")
    assert '<meta http-equiv="refresh" content="10">' in running

    hostile = browser.dump_dom(url + f"/try/{ids['hostile']}")
    # No script ran (it would have set the title), the markup is shown as text.
    title = re.search(r"<title>(.*?)</title>", hostile, re.S).group(1)
    assert title == (f"try {ids['hostile']}: &lt;script&gt;document.title='PWNED'"
                     "&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt; \"quotes\" 'too'")
    assert "&lt;script&gt;document.title='PWNED'&lt;/script&gt;" in hostile
    assert "<script" not in hostile.lower()
    assert "<img" not in hostile.lower()
    # (a serialised text node keeps its quotes: look for an element, not the text)
    assert not re.search(r"<a\s[^>]*javascript", hostile, re.I)
    assert "&lt;a href=\"javascript:alert(1)\"&gt;click me&lt;/a&gt;" in hostile
    assert "&amp;lt;already escaped&amp;gt;" in hostile
