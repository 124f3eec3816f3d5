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


# -- describe / select / bundle with a scripted repository ---------------------------------

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


NODE2 = "fedcba9876543210fedcba9876543210fedcba98"
LOG_HEAD = json.dumps([{"node": NODE2, "branch": "default", "user": "Dev", "desc": "two\n",
                        "phase": "draft"}]).encode()


def _set(*entries: tuple[int, str, str]) -> tuple[int, bytes, bytes]:
    """hg's answer to ``log -r REVSET -T '{rev} {phase} {node}\\n'``."""
    return 0, "".join(f"{r} {phase} {node}\n" for r, phase, node in entries).encode(), b""


def test_select_names_the_try_after_the_highest_draft():
    # Revset order is the user's ("reverse(...)", "2 + 3"): the highest rev wins, not the first.
    repo = ScriptedRepo([_set((3, "draft", NODE2), (1, "public", "1" * 40), (2, "draft", NODE)),
                         (0, NODE2.encode() + b"\n", b""), (0, LOG_HEAD, b"")])
    selection = tryserver.select(repo, "reverse(::tip)")
    assert selection.head.node == NODE2 and selection.head.description == "two\n"
    assert selection.nodes == (NODE, NODE2)  # public members are the base, not sent
    assert repo.calls[0] == ("log", "-r", "reverse(::tip)", "-T", "{rev} {phase} {node}\\n")
    assert repo.calls[2] == ("log", "-r", NODE2, "-T", "json")


@pytest.mark.parametrize("answer,error,message", [
    (_set(), errors.LocalRepoError, "revision 'S' names no changeset in /repo"),
    (_set((1, "public", NODE)), errors.LocalRepoError,
     "revision 0123456789ab is public: the Try server only takes draft changesets"),
    (_set((0, "public", NODE2), (1, "public", NODE)), errors.LocalRepoError,
     "revision 'S' names only public changesets: the Try server only takes draft"),
    (_set((-1, "public", hgrepo.NULL_NODE)), errors.LocalRepoError,
     "revision 'S' is the null revision: /repo has no changeset checked out"),
    # Secret changesets are never sent, even next to drafts; the lowest one is named.
    (_set((2, "draft", NODE2), (5, "secret", "5" * 40), (4, "secret", NODE)), errors.UsageError,
     "revision 'S' includes secret changeset 4:0123456789ab \\(and 1 more\\): secret "
     "changesets are never sent to the Try server"),
])
def test_select_refuses(answer, error, message):
    repo = ScriptedRepo([answer])
    with pytest.raises(error, match=message) as raised:
        tryserver.select(repo, "S")
    assert "\n" not in raised.value.one_line()
    assert len(repo.calls) == 1  # nothing bundled


def test_select_keeps_hgs_reason_for_a_bad_revset():
    repo = ScriptedRepo([(255, b"", b"hg: parse error at 4: not a prefix: end\n")])
    with pytest.raises(errors.LocalRepoError, match="cannot resolve revision 'foo\\(' in "
                                                    "/repo: parse error at 4"):
        tryserver.select(repo, "foo(")


SELECTION = tryserver.Selection(head=CS, nodes=(NODE2, NODE))


def test_bundle_reads_the_file_then_removes_it():
    seen = {}

    def bundle(args):
        seen["path"] = Path(args[-1])
        seen["path"].write_bytes(b"HG20...")
        return 0, b"2 changesets found\n", b""

    repo = ScriptedRepo([bundle])
    result = tryserver.bundle(repo, SELECTION)
    assert result == tryserver.Bundle(b"HG20...", 2)
    assert repo.calls[0][:-1] == ("bundle", "--type", "gzip-v2", "--base", "public()",
                                  "-r", NODE2, "-r", NODE)
    assert not seen["path"].exists() and not seen["path"].parent.exists()


@pytest.mark.parametrize("answer,message", [
    ((1, b"", b"no changes found\n"), "nothing to send: 0123456789ab has no draft ancestors"),
    ((255, b"", b"warning: x\nabort: unknown revision\n"),
     "hg bundle failed: abort: unknown revision"),
    ((255, b"", b""), "hg bundle failed: 255"),
])
def test_bundle_failures(answer, message):
    seen = {}

    def fail(args):
        seen["dir"] = Path(args[-1]).parent
        return answer

    repo = ScriptedRepo([fail])
    with pytest.raises(errors.LocalRepoError, match=message):
        tryserver.bundle(repo, SELECTION)
    assert not seen["dir"].exists()


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
