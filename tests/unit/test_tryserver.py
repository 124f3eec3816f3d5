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


def test_payload_within_the_limit_and_above():
    overhead = len(tryserver.build_payload(b"", CS))
    room = (tryserver.MAX_PAYLOAD_BYTES - overhead) // 4 * 3  # base64: 4 chars per 3 bytes
    assert len(tryserver.build_payload(b"x" * room, CS)) <= tryserver.MAX_PAYLOAD_BYTES
    with pytest.raises(errors.TryServerError, match="bundle too large") as raised:
        tryserver.build_payload(b"x" * (room + 3), CS)
    assert raised.value.exit_code == 14
    assert "nothing was sent" in raised.value.message


def test_payload_of_exactly_the_limit_is_sent_and_one_byte_more_is_not():
    """A payload of exactly MAX_PAYLOAD_BYTES passes, MAX_PAYLOAD_BYTES + 1 does not (the
    description pads the JSON so that the base64 bundle fills it to the byte). Breaking
    it looks like ``>=`` for ``>`` (the exact limit refused) or comparing with the limit
    plus some slack (one byte more sent, and refused by Lambda after the upload)."""
    import dataclasses

    def cs_with(padding: int):
        return dataclasses.replace(CS, description=CS.description + "x" * padding)

    overhead = len(tryserver.build_payload(b"", CS))
    padding = (tryserver.MAX_PAYLOAD_BYTES - overhead) % 4  # base64 comes in fours
    room = (tryserver.MAX_PAYLOAD_BYTES - overhead - padding) // 4 * 3
    exact = tryserver.build_payload(b"x" * room, cs_with(padding))
    assert len(exact) == tryserver.MAX_PAYLOAD_BYTES
    with pytest.raises(errors.TryServerError, match="bundle too large") as raised:
        tryserver.build_payload(b"x" * room, cs_with(padding + 1))
    assert f"({tryserver.MAX_PAYLOAD_BYTES + 1:,} bytes as the base64 payload)" in \
        raised.value.message
    assert raised.value.exit_code == 14


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
    (b'["caf\xc3\xa9", "\xff\xfe"]', None, ["caf\u00e9", "\ufffd\ufffd"], False, ""),
    (b'["a\\nremote: forged", "\\u001b[2J"]', None, ["a\nremote: forged", "\x1b[2J"],
     False, ""),  # one element, one line: the console escapes the newline
    (b'{"errorMessage": ["x", {"y": 1}], "errorType": 7}', "Handled", ["['x', {'y': 1}]"],
     True, "7"),
])
def test_parse_response(raw, error, messages, failed, error_type):
    result = tryserver.parse_response(raw, error)
    assert (result.messages, result.failed, result.error_type) == (messages, failed, error_type)


NOT_A_LIST = "the Try server's reply is not a JSON list of messages; shown as it came"


@pytest.mark.parametrize("raw,note", [
    (b'{"echo": 1}', NOT_A_LIST),
    (b"plain text", NOT_A_LIST),
    (b"42", NOT_A_LIST),
    (b"null", NOT_A_LIST),
    (b"[" * 100_000 + b"]" * 100_000,
     "the Try server's reply is nested too deeply to read as JSON; shown as it came"),
    (b'["fine"]', ""), (b'{"messages": []}', ""), (b'"text"', ""), (b"", ""), (b"  \n", ""),
])
def test_parse_response_says_when_the_reply_is_shown_as_it_came(raw, note):
    """A reply 100,000 levels deep was a RecursionError: a traceback and exit 70."""
    result = tryserver.parse_response(raw, None)
    assert result.note == note and not result.failed


def test_parse_response_element_too_deep_to_print():
    import sys

    depth = sys.getrecursionlimit() - 50  # json reads it; str() of it may not
    raw = b"[" + b"[" * depth + b"]" * depth + b', "next"]'
    result = tryserver.parse_response(raw, None)
    assert result.messages[-1] == "next" and len(result.messages) == 2


def test_parse_response_of_a_deep_function_error():
    result = tryserver.parse_response(b"[" * 100_000, "Unhandled")
    assert result.failed and result.messages == ["[" * 100_000]


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
        stub.add_client_error("invoke", "TooManyRequestsException", "Rate exceeded",
                              http_status_code=429)
    with pytest.raises(errors.AWSError) as raised:
        _invoke_with(aws_session, prepare)
    assert raised.value.code == "TooManyRequestsException"
    assert "lambda:Invoke try-fn" in raised.value.message


def test_invoke_413_says_the_function_did_not_run(aws_session):
    """Was exit 5 ("RequestEntityTooLargeException (lambda:Invoke try-fn): too big")."""
    def prepare(stub):
        stub.add_client_error("invoke", "RequestEntityTooLargeException", "too big",
                              http_status_code=413)
    with pytest.raises(errors.TryServerError) as raised:
        _invoke_with(aws_session, prepare)
    assert raised.value.exit_code == 14
    assert raised.value.message == ("Lambda refused the request as too large (HTTP 413 "
                                    "RequestEntityTooLargeException); try-fn did not run")


def test_invoke_client_sends_once_and_waits_long(aws_session, monkeypatch):
    def prepare(stub):
        stub.add_response("invoke", {"StatusCode": 200, "Payload": _body(b"[]")})
    _, boto = _invoke_with(aws_session, prepare)
    config = boto.clients[0].meta.config
    assert config.retries["total_max_attempts"] == 1
    assert config.read_timeout == tryserver.INVOKE_READ_TIMEOUT == 300
    assert config.connect_timeout == aws_session.config.connect_timeout
    # A slower link's setting (HGAUTOMATION_AWS_TIMEOUT) gives more, never less.
    monkeypatch.setenv("HGAUTOMATION_AWS_TIMEOUT", "900")
    slow = make_session()
    assert slow.client("lambda", attempts=1, read_timeout=300).meta.config.read_timeout == 900
    assert slow.client("lambda").meta.config.retries["total_max_attempts"] == 5


# -- invoke: the connection fails at some point (a real client, the send replaced) ----------

def _failing_send(aws_session, exc: Exception) -> list[int]:
    """Every HTTP send of the session's clients raises `exc`; the list counts the sends."""
    sends: list[int] = []

    def send(request=None, **kwargs):
        sends.append(len(request.body or b""))
        raise exc

    aws_session.boto.events.register("before-send.lambda.Invoke", send)
    return sends


@pytest.mark.parametrize("make", [
    lambda: __import__("botocore.exceptions").exceptions.ConnectionClosedError(
        endpoint_url="https://lambda"),
    lambda: __import__("botocore.exceptions").exceptions.ReadTimeoutError(
        endpoint_url="https://lambda"),
    lambda: __import__("botocore.exceptions").exceptions.HTTPClientError(error="reset"),
])
def test_a_lost_answer_is_sent_once_and_may_have_arrived(aws_session, make, monkeypatch):
    """botocore's retries sent the bundle 5 times (ConnectionClosedError, ReadTimeout)."""
    monkeypatch.setattr(tryserver.time, "sleep", lambda s: None)
    sends = _failing_send(aws_session, make())
    with pytest.raises(errors.TryOutcomeUnknown) as raised:
        tryserver.invoke(aws_session, "try-fn", b'{"bundle": "x"}')
    assert sends == [len(b'{"bundle": "x"}')]
    assert raised.value.exit_code == 15
    assert raised.value.message.startswith("the bundle was sent to try-fn but its answer was "
                                           "lost (")
    assert raised.value.message.endswith("): the Try server may have received it")


def test_a_connection_never_made_is_tried_again(aws_session, monkeypatch, captured):
    from botocore.exceptions import EndpointConnectionError

    slept: list[float] = []
    monkeypatch.setattr(tryserver.time, "sleep", slept.append)
    sends = _failing_send(aws_session, EndpointConnectionError(endpoint_url="https://lambda"))
    with pytest.raises(errors.AWSEndpointError) as raised:
        tryserver.invoke(aws_session, "try-fn", b"{}")
    assert len(sends) == aws_session.max_attempts == 5
    assert slept == [1, 2, 4, 8]
    assert raised.value.message.endswith("; nothing was sent")
    assert "retrying (2/5)" in captured.err_text
    assert "retrying (1/" not in captured.err_text  # botocore's own: one attempt


def test_a_truncated_answer_is_a_lost_answer(aws_session):
    def prepare(stub):
        stub.add_response("invoke", {"StatusCode": 200,
                                     "Payload": StreamingBody(io.BytesIO(b'["ok"'), 100)})
    with pytest.raises(errors.TryOutcomeUnknown, match="IncompleteReadError"):
        _invoke_with(aws_session, prepare)


def test_an_answer_above_the_cap_is_read_only_that_far(aws_session, monkeypatch):
    monkeypatch.setattr(tryserver, "MAX_REPLY_BYTES", 1000)
    reads: list[int | None] = []

    class Endless:
        def read(self, amount=None):
            assert amount is not None  # never "all of it"
            reads.append(amount)
            return b"y" * amount

    def prepare(stub):
        stub.add_response("invoke", {"StatusCode": 200,
                                     "Payload": StreamingBody(Endless(), 10**12)})
    result, _ = _invoke_with(aws_session, prepare)
    assert sum(reads) == 1001
    assert result.messages == ["y" * 1000]
    assert result.note == "the Try server's reply is longer than 1,000 bytes: the rest was " \
                          "not read"


# -- cancel and rerun: the requests and the command line ------------------------------------

TRY = "20261207T191300Z-1a2b3c4d"


def test_control_payloads():
    assert json.loads(tryserver.control_payload("cancel", TRY)) == {"action": "cancel",
                                                                    "try": TRY}
    assert json.loads(tryserver.control_payload("rerun", TRY)) == {
        "action": "rerun", "try": TRY, "failed": False}
    assert json.loads(tryserver.control_payload("rerun", TRY, failed=True))["failed"] is True


def test_a_lost_answer_names_the_request(aws_session, monkeypatch):
    from botocore.exceptions import ReadTimeoutError

    _failing_send(aws_session, ReadTimeoutError(endpoint_url="https://lambda"))
    with pytest.raises(errors.TryOutcomeUnknown) as raised:
        tryserver.invoke(aws_session, "try-fn", tryserver.control_payload("rerun", TRY),
                         "the rerun request")
    assert raised.value.message.startswith("the rerun request was sent to try-fn but its "
                                           "answer was lost")


def _try_options(*argv: str):
    from hgautomation import arguments

    return arguments.parse_args(["try", *argv]).options


def test_cancel_and_rerun_options_reach_the_record():
    from hgautomation.commands import try_

    opts = _try_options("--rerun", TRY, "--failed", "--wait")
    assert (opts.rerun, opts.failed, opts.wait, opts.cancel, opts.revision) == \
        (TRY, True, True, None, None)
    try_.check_combination(opts)
    try_.check_combination(_try_options("--cancel", TRY, "-T", "json"))
    try_.check_combination(_try_options("-r", "draft()", "--wait"))
    try_.check_combination(_try_options())  # -r . by default


@pytest.mark.parametrize("argv, complaint", [
    (["--cancel", TRY, "--rerun", TRY], "--cancel and --rerun cannot be used together"),
    (["--cancel", TRY, "-r", "."], "-r/--revision cannot be used with --cancel"),
    (["--rerun", TRY, "-r", "tip"], "-r/--revision cannot be used with --rerun"),
    (["--failed"], "--failed goes with --rerun ID"),
    (["--cancel", TRY, "--failed"], "--failed goes with --rerun ID"),
    (["--cancel", TRY, "--wait"], "--wait follows a new try"),
])
def test_bad_combinations_are_usage_errors(argv, complaint):
    from hgautomation.commands import try_

    with pytest.raises(errors.UsageError) as raised:
        try_.check_combination(_try_options(*argv))
    assert raised.value.message.startswith(complaint) and raised.value.exit_code == 2


@pytest.mark.parametrize("value", ["latest", "20261207T191300Z", "../x", TRY.upper()])
def test_a_malformed_try_id_is_a_usage_error(value):
    with pytest.raises(errors.UsageError, match="invalid try id"):
        _try_options("--cancel", value)


def test_a_bad_combination_exits_2_with_one_line_before_any_aws_call(tmp_path, capsys,
                                                                       monkeypatch):
    from hgautomation import cli, console

    monkeypatch.setattr(console, "_current", console.get())
    code = cli.main(["--state-path", str(tmp_path / "state"), "try", "--rerun", TRY,
                     "-r", "."], prog="hgautomation")
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines()[-1].startswith(
        "usage error: -r/--revision cannot be used with --rerun")
    assert "Traceback" not in err
