"""The upload function (hgautomation.server.upload) against moto: every refusal stores
and queues nothing; a good request stores the try and queues one message per job."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from hgautomation.server import model, store, upload

from .test_server_store import BUNDLE, JOBS, NODE, MotoDeployment, moto_deployment, request


@pytest.fixture
def deployment() -> Iterator[MotoDeployment]:
    with moto_deployment() as d:
        yield d


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


BIG = model.MAX_BUNDLE_BYTES + 1

REFUSED = [
    ("not an object", ["a", "list"], "request: expected a JSON object, got an array"),
    ("a string", "HG20", "request: expected a JSON object, got a string"),
    ("missing key", {k: v for k, v in request().items() if k != "user"},
     "request: missing user"),
    ("extra key", request(hooks="rm -rf /"), "request: unknown key 'hooks'"),
    ("number node", request(node=1234), "node: expected a string, got a number"),
    ("null message", request(message=None), "message: expected a string, got null"),
    ("short node", request(node=NODE[:39]), "node: expected 40 hexadecimal digits"),
    ("upper-case node", request(node=NODE.upper()), "node: expected 40 hexadecimal"),
    ("node with newline", request(node=NODE + "\n"), "node: expected 40 hexadecimal"),
    ("long branch", request(branch="b" * 257), "branch: longer than 256 characters"),
    ("long user", request(user="u" * 513), "user: longer than 512 characters"),
    ("long message", request(message="m" * (64 * 1024 + 1)), "message: longer than 65536"),
    ("empty user", request(user=""), "user: empty"),
    ("lone surrogate", request(user="a\ud800b"), "user: not valid Unicode"),
    ("base64 with junk", request(bundle="SEcyMA==!"), "bundle: not valid base64"),
    ("base64 with newline", request(bundle="SEcy\nMA=="), "bundle: not valid base64"),
    ("base64 unpadded", request(bundle="SEcyMA"), "bundle: not valid base64"),
    ("non-ASCII base64", request(bundle="SEcyMA\u00e9="), "bundle: not valid base64"),
    ("too big", request(bundle=_b64(b"HG20" + b"\0" * (BIG - 4))),
     f"bundle: larger than {model.MAX_BUNDLE_BYTES} bytes"),
    ("empty bundle", request(bundle=""), "bundle: not a Mercurial bundle2 stream"),
    ("bundle1", request(bundle=_b64(b"HG10UN" + b"\0" * 20)), "bundle: not a Mercurial"),
    ("a zip", request(bundle=_b64(b"PK\x03\x04" + b"\0" * 20)), "bundle: not a Mercurial"),
]


@pytest.mark.parametrize("event, complaint", [r[1:] for r in REFUSED],
                         ids=[r[0] for r in REFUSED])
def test_a_bad_request_is_refused_with_nothing_stored(deployment, event, complaint):
    with pytest.raises(ValueError) as caught:
        upload.submit(event, deployment.environ, deployment.clients)
    message = str(caught.value)
    assert message.startswith(complaint) and "\n" not in message
    assert deployment.objects() == []
    assert deployment.items() == []
    for job in JOBS:
        assert deployment.messages(job) == []


def test_the_size_limit_is_on_the_decoded_bundle(deployment):
    """Exactly MAX_BUNDLE_BYTES passes: the base64 pre-check is not off by one."""
    data = b"HG20" + b"\0" * (model.MAX_BUNDLE_BYTES - 4)
    lines = upload.submit(request(bundle=_b64(data)), deployment.environ, deployment.clients)
    assert lines[0].startswith("try ")


def test_a_good_request_is_stored_queued_and_answered(deployment):
    event = request(message="<b>hi</b>\n\nbody", user="Zoë <z@example.org>")
    lines = upload.submit(event, deployment.environ, deployment.clients)
    assert isinstance(lines, list) and all(isinstance(x, str) for x in lines)
    first, page = lines
    try_id = first.split()[1].rstrip(":")
    assert model.TRY_ID_RE.match(try_id)
    assert first == f"try {try_id}: 2 jobs queued (linux, win-x64)"
    assert page == f"/try/{try_id}"
    assert deployment.objects() == [model.bundle_key(try_id)]
    doc = store.try_document(deployment.clients.table, try_id)
    assert (doc["node"], doc["user"], doc["branch"], doc["description"]) == \
        (NODE, "Zoë <z@example.org>", "default", "<b>hi</b>\n\nbody")
    assert [j["state"] for j in doc["jobs"]] == ["queued", "queued"]
    for job in JOBS:
        assert deployment.messages(job) == [{"try": try_id, "job": job}]


def test_the_page_is_absolute_with_a_web_url(deployment):
    env = dict(deployment.environ, TRY_WEB_URL="https://abc.lambda-url.us-west-2.on.aws/")
    lines = upload.submit(request(), env, deployment.clients)
    assert lines[1].startswith("https://abc.lambda-url.us-west-2.on.aws/try/20")
    assert "//try" not in lines[1]


def test_one_job_is_singular():
    record = store.Try(id="20261207T191300Z-1a2b3c4d", node=NODE, user="u", branch="b",
                       description="", created="", jobs=(store.Job("linux", "queued"),))
    assert upload.reply(record, "") == ["try 20261207T191300Z-1a2b3c4d: 1 job queued (linux)",
                                        "/try/20261207T191300Z-1a2b3c4d"]


def test_the_handler_reads_the_environment(deployment, monkeypatch):
    for name, value in deployment.environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(store, "_warm", {deployment.config.table: deployment.clients})
    lines = upload.handler(request(), None)
    assert lines[0].endswith("2 jobs queued (linux, win-x64)")
    assert len(deployment.objects()) == 1


def test_the_bundle_is_stored_as_sent(deployment):
    lines = upload.submit(request(), deployment.environ, deployment.clients)
    try_id = lines[0].split()[1].rstrip(":")
    got = deployment.clients.s3.get_object(Bucket=deployment.config.bucket,
                                           Key=model.bundle_key(try_id))["Body"].read()
    assert got == BUNDLE
