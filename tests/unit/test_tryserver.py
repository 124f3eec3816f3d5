"""hgautomation.tryserver: the request payload, the response parsing, bundling and invoking."""

from __future__ import annotations

import base64
import io
import json
import subprocess
from pathlib import Path

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from hgautomation import errors, hgrepo, tryserver

from .helpers import make_session

NODE = "0123456789abcdef0123456789abcdef01234567"
CS = tryserver.Changeset(node=NODE, branch="default", user="Alice <a@example.org>",
                         description="shelve: fix it\n\nLonger text.\n", phase="draft")


# -- Changeset ------------------------------------------------------------------------------------

@pytest.mark.parametrize("description,summary", [
    ("one line", "one line"), ("\n\n  first\nsecond", "first"), ("", ""), ("   \n", ""),
])
def test_summary(description, summary):
    cs = tryserver.Changeset(NODE, "default", "u", description, "draft")
    assert cs.summary == summary


# -- build_payload --------------------------------------------------------------------------------

def test_payload_fields():
    bundle = b"HG20\x00\x01binary\xff"
    data = json.loads(tryserver.build_payload(bundle, CS))
    assert data == {"bundle": base64.b64encode(bundle).decode(), "node": NODE,
                    "branch": "default", "user": "Alice <a@example.org>",
                    "message": "shelve: fix it\n\nLonger text.\n"}
    assert base64.b64decode(data["bundle"]) == bundle


def test_payload_is_utf8_json():
    cs = tryserver.Changeset(NODE, "stable", "Zoë", "Grüße ✓", "draft")
    payload = tryserver.build_payload(b"", cs)
    assert isinstance(payload, bytes)
    assert json.loads(payload.decode("utf-8"))["user"] == "Zoë"


def test_payload_at_the_limit_and_above():
    overhead = len(tryserver.build_payload(b"", CS))
    room = (tryserver.MAX_PAYLOAD_BYTES - overhead) // 4 * 3  # base64: 4 chars per 3 bytes
    assert len(tryserver.build_payload(b"x" * room, CS)) <= tryserver.MAX_PAYLOAD_BYTES
    with pytest.raises(errors.TryServerError, match="bundle too large") as raised:
        tryserver.build_payload(b"x" * (room + 3), CS)
    assert raised.value.exit_code == 14
    assert "nothing was sent" in raised.value.message


# -- parse_response -------------------------------------------------------------------------------

@pytest.mark.parametrize("raw,error,messages,failed,error_type", [
    (b'{"messages": ["stored", "queued as 42"]}', None, ["stored", "queued as 42"], False, ""),
    (b'{"messages": [1, null]}', None, ["1", "None"], False, ""),
    # A plain list: what the server has always answered (the old client printed each).
    (b'["stored", "queued as 42"]', None, ["stored", "queued as 42"], False, ""),
    (b'[]', None, [], False, ""),
    (b'"line one\\nline two"', None, ["line one", "line two"], False, ""),
    (b'""', None, [""], False, ""),
    (b'{"errorMessage": "no space\\nleft", "errorType": "OSError", "trace": []}', "Unhandled",
     ["no space", "left"], True, "OSError"),
    (b'{"errorMessage": "bad"}', "Handled", ["bad"], True, ""),
    (b"Task timed out", "Unhandled", ["Task timed out"], True, "Unhandled"),
    (b"", "Unhandled", ["function error (Unhandled)"], True, "Unhandled"),
    (b'"oops"', "Unhandled", ["oops"], True, ""),
    (b'{"echo": {"node": "x"}}', None, ['{"echo": {"node": "x"}}'], False, ""),
    (b"[1, 2]\n[3]", None, ["[1, 2]", "[3]"], False, ""),
    (b"", None, [], False, ""),
    (b"not json \xff", None, ["not json \ufffd"], False, ""),
])
def test_parse_response(raw, error, messages, failed, error_type):
    result = tryserver.parse_response(raw, error)
    assert (result.messages, result.failed, result.error_type) == (messages, failed, error_type)


# -- describe / draft_bundle with a scripted repository -------------------------------------------

class ScriptedRepo(hgrepo.LocalRepo):
    """A LocalRepo whose hg answers come from a list, recording the argv of each call."""

    def __init__(self, answers):
        super().__init__(root=Path("/repo"))
        object.__setattr__(self, "answers", list(answers))
        object.__setattr__(self, "calls", [])

    def run(self, *args, timeout=300, check=True, env=None):
        self.calls.append(args)
        answer = self.answers.pop(0)
        if callable(answer):
            answer = answer(args)
        returncode, stdout, stderr = answer
        if check and returncode:
            raise errors.LocalRepoError(stderr.decode())
        return subprocess.CompletedProcess(args, returncode, stdout, stderr)


def test_describe_reads_the_changeset():
    log = json.dumps([{"node": NODE, "branch": "stable", "user": "Bob", "desc": "fix\n",
                       "phase": "draft"}]).encode()
    repo = ScriptedRepo([(0, NODE.encode() + b"\n", b""), (0, log, b"")])
    cs = tryserver.describe(repo, ".")
    assert cs == tryserver.Changeset(NODE, "stable", "Bob", "fix\n", "draft")
    assert repo.calls[0][:3] == ("log", "-r", ".")
    assert repo.calls[1] == ("log", "-r", NODE, "-T", "json")


def test_draft_bundle_yields_the_file_then_removes_it():
    def bundle(args):
        Path(args[-1]).write_bytes(b"HG20...")
        return 0, b"", b""

    repo = ScriptedRepo([bundle])
    with tryserver.draft_bundle(repo, CS) as path:
        assert path.read_bytes() == b"HG20..."
        directory = path.parent
    assert repo.calls[0][:7] == ("bundle", "--type", "gzip-v2", "--base", "public()", "-r",
                                 NODE)
    assert not path.exists() and not directory.exists()


def test_public_changesets_are_refused():
    public = tryserver.Changeset(NODE, "default", "u", "d", "public")
    repo = ScriptedRepo([])
    with pytest.raises(errors.LocalRepoError, match="0123456789ab is public") as raised, \
            tryserver.draft_bundle(repo, public):
        pass
    assert raised.value.exit_code == 4 and repo.calls == []


@pytest.mark.parametrize("answer,message", [
    ((1, b"", b"no changes found\n"), "nothing to send: 0123456789ab has no draft ancestors"),
    ((255, b"", b"warning: x\nabort: unknown revision\n"),
     "hg bundle failed: abort: unknown revision"),
    ((255, b"", b""), "hg bundle failed: 255"),
])
def test_bundle_failures(answer, message):
    repo = ScriptedRepo([answer])
    with pytest.raises(errors.LocalRepoError, match=message), \
            tryserver.draft_bundle(repo, CS):
        pass


# -- invoke over a stubbed Lambda client ----------------------------------------------------------

class _StubbedBoto:
    """Stands in for session.boto: each client it makes is stubbed by `prepare`."""

    def __init__(self, boto, prepare):
        self._boto, self._prepare, self.stubbers, self.clients = boto, prepare, [], []

    def client(self, service, **kwargs):
        client = self._boto.client(service, **kwargs)
        stubber = Stubber(client)
        self._prepare(stubber)
        stubber.activate()
        self.stubbers.append(stubber)
        self.clients.append(client)
        return client


@pytest.fixture
def aws_session():
    return make_session()  # its own: the tests below replace session.boto


def _invoke_with(aws_session, prepare, payload=b'{"x": 1}'):
    boto = _StubbedBoto(aws_session.boto, prepare)
    aws_session.boto = boto
    try:
        return tryserver.invoke(aws_session, "try-fn", payload), boto
    finally:
        for stubber in boto.stubbers:
            stubber.assert_no_pending_responses()


def _body(raw: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(raw), len(raw))


def test_invoke_returns_the_parsed_answer(aws_session):
    def prepare(stub):
        stub.add_response("invoke", {"StatusCode": 200, "Payload": _body(b'{"messages": ["ok"]}')},
                          {"FunctionName": "try-fn", "InvocationType": "RequestResponse",
                           "Payload": b'{"x": 1}'})
    result, boto = _invoke_with(aws_session, prepare)
    assert result == tryserver.TryResult(["ok"], False)
    assert boto.clients[0].meta.config.read_timeout == 300
    assert aws_session.counter.calls == {"Invoke": 1}


def test_invoke_function_error(aws_session):
    def prepare(stub):
        stub.add_response("invoke", {"StatusCode": 200, "FunctionError": "Unhandled",
                                     "Payload": _body(b'{"errorMessage": "rejected"}')})
    result, _ = _invoke_with(aws_session, prepare)
    assert result.failed and result.messages == ["rejected"]


def test_invoke_unknown_function_is_a_try_server_error(aws_session):
    def prepare(stub):
        stub.add_client_error("invoke", "ResourceNotFoundException", "Function not found")
    with pytest.raises(errors.TryServerError) as raised:
        _invoke_with(aws_session, prepare)
    assert raised.value.exit_code == 14
    assert raised.value.message == "no Lambda function named 'try-fn' in region us-west-2"


def test_invoke_other_errors_are_aws_errors(aws_session):
    def prepare(stub):
        stub.add_client_error("invoke", "RequestEntityTooLargeException", "too big",
                              http_status_code=413)
    with pytest.raises(errors.AWSError) as raised:
        _invoke_with(aws_session, prepare)
    assert raised.value.code == "RequestEntityTooLargeException"
    assert "lambda:Invoke try-fn" in raised.value.message
