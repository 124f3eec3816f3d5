"""The Try request at Lambda's limit exactly and one byte past it, every field of it, and
each shape of reply with its note. A limit moved by one byte, a field renamed or a reply
misread fails here."""

from __future__ import annotations

import base64
import json

import pytest

from hgautomation import errors, tryserver

CS = tryserver.Changeset("a" * 40, "default", "Alice <a@example>", "fix: x\n\nmore", "draft")


def _payload_size(n: int) -> int:
    return len(tryserver.build_payload(b"\0" * n, CS))


def test_every_field_of_the_request():
    payload = tryserver.build_payload(b"\x01\xffbundle", CS)
    assert json.loads(payload) == {
        "bundle": base64.b64encode(b"\x01\xffbundle").decode("ascii"), "node": "a" * 40,
        "branch": "default", "user": "Alice <a@example>", "message": "fix: x\n\nmore"}
    assert payload == json.dumps(json.loads(payload)).encode("utf-8")


def test_a_payload_of_exactly_the_limit_is_sent_and_one_byte_more_is_not():
    """Base64 grows in steps of four: find a bundle whose payload is the limit exactly by
    padding the message, then add one byte to it."""
    limit = tryserver.MAX_PAYLOAD_BYTES
    assert limit == 6 * 1024 * 1024
    n = (limit - 200) // 4 * 3
    base = len(tryserver.build_payload(b"\0" * n, CS))
    pad = limit - base
    assert 0 <= pad < 400
    at_limit = tryserver.Changeset(CS.node, CS.branch, CS.user, CS.description + "x" * pad,
                                   CS.phase)
    assert len(tryserver.build_payload(b"\0" * n, at_limit)) == limit
    over = tryserver.Changeset(CS.node, CS.branch, CS.user, at_limit.description + "x",
                               CS.phase)
    with pytest.raises(errors.TryServerError) as raised:
        tryserver.build_payload(b"\0" * n, over)
    assert raised.value.message == (
        f"bundle too large: {n:,} bytes ({limit + 1:,} bytes as the base64 payload) exceeds "
        f"Lambda's {limit:,}-byte limit for a synchronous invocation; nothing was sent")
    assert raised.value.hint == "send fewer or smaller changesets"


@pytest.mark.parametrize("raw, error, expected", [
    (b'["a", "b"]', None, (["a", "b"], False, "", "")),
    (b'["a", 2, null, [1]]', None, (["a", "2", "None", "[1]"], False, "", "")),
    (b'{"messages": ["m", 1]}', None, (["m", "1"], False, "", "")),
    (b'"one\\ntwo"', None, (["one", "two"], False, "", "")),
    (b'""', None, ([""], False, "", "")),
    (b'"x"', "Unhandled", (["x"], True, "", "")),
    (b'{"errorMessage": "boom\\nline", "errorType": "KeyError"}', "Unhandled",
     (["boom", "line"], True, "KeyError", "")),
    (b'{"errorMessage": 5}', "Handled", (["5"], True, "", "")),
    (b'{"other": 1}', "Handled", (['{"other": 1}'], True, "Handled", "")),
    (b"", "Unhandled", (["function error (Unhandled)"], True, "Unhandled", "")),
    (b"not json\nat all", None,
     (["not json", "at all"], False, "",
      "the Try server's reply is not a JSON list of messages; shown as it came")),
    (b'{"messages": "no"}', None,
     (['{"messages": "no"}'], False, "",
      "the Try server's reply is not a JSON list of messages; shown as it came")),
    (b"  ", None, (["  "], False, "", "")),
    (b"", None, ([], False, "", "")),
    (b"\xff", None, (["\ufffd"], False, "",
                     "the Try server's reply is not a JSON list of messages; shown as it came")),
])
def test_reply_shapes(raw, error, expected):
    result = tryserver.parse_response(raw, error)
    assert (result.messages, result.failed, result.error_type, result.note) == expected


def test_reply_nested_too_deeply():
    raw = b"[" * 100000 + b"]" * 100000
    result = tryserver.parse_response(raw, None)
    assert result.note == ("the Try server's reply is nested too deeply to read as JSON; "
                           "shown as it came")
    assert result.messages == [raw.decode()] and not result.failed


def test_text_of_an_element():
    assert tryserver._text("s") == "s"
    assert tryserver._text(3) == "3"

    class Deep:
        def __str__(self):
            raise RecursionError

    assert tryserver._text(Deep()) == "(a value nested too deeply to show)"
