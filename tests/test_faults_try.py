"""`try` against a hostile Lambda endpoint, through the real CLI (issue 21, class 6).

The endpoint is a local HTTP server named by ``AWS_ENDPOINT_URL_LAMBDA`` (botocore's
per-service endpoint setting); ``try`` makes no other AWS call. Each test checks the
exit code, the closing line, that no traceback was printed, a time bound, and how many
times the bundle reached the endpoint: a submission is sent once, whatever happens.

What breaking looks like: before this, a connection dropped after the request was read
made botocore send the bundle five times (exit 7, "cannot reach AWS"), escape sequences
of the reply reached the terminal, a reply nested 100,000 levels deep was exit 70, and a
10 MB message was printed whole.
"""

from __future__ import annotations

import http.server
import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import hgsource

FUNCTION = "ci-try-server-upload"
# Seconds any of these runs may take (hg, the CLI's start, one invocation).
BOUND = 60


class FakeLambda:
    """A Lambda endpoint doing `answer(handler)` after reading each request whole."""

    def __init__(self, answer: Callable[[http.server.BaseHTTPRequestHandler], None]):
        self.answer = answer
        self.bodies: list[bytes] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fake.bodies.append(body)
                fake.answer(self)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def uploads(self) -> int:
        """How many requests carried the bundle."""
        return sum(b'"bundle"' in body for body in self.bodies)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def reply(body: bytes, status: int = 200, headers: dict[str, str] | None = None):
    """An answer: `body` with `status` (Content-Type JSON unless given)."""
    def answer(handler):
        handler.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
    return answer


def drop(handler) -> None:
    """Read the request, then close the connection without a word."""
    handler.close_connection = True


def truncated(handler) -> None:
    """Announce 1,000 bytes, send 10, close."""
    handler.send_response(200)
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    handler.wfile.write(b'["stored",')
    handler.close_connection = True


def aws_error(status: int, code: str, message: str):
    return reply(json.dumps({"Type": "User", "message": message}).encode(), status,
                 {"x-amzn-ErrorType": code, "Content-Type": "application/json"})


@pytest.fixture
def endpoint():
    made: list[FakeLambda] = []

    def make(answer) -> FakeLambda:
        made.append(FakeLambda(answer))
        return made[-1]
    yield make
    for fake in made:
        fake.close()


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """One public changeset and one draft on top."""
    root = tmp_path_factory.mktemp("try-faults") / "repo"
    hgsource.hg("init", str(root), timeout=60)
    (root / "a.txt").write_text("one\n")
    hgsource.hg("-R", str(root), "commit", "-A", "-m", "public", "-u", "P <p@x>", timeout=60)
    hgsource.hg("-R", str(root), "phase", "--public", "-r", ".", timeout=60)
    (root / "a.txt").write_text("one\ntwo\n")
    hgsource.hg("-R", str(root), "commit", "-m", "draft", "-u", "D <d@x>", timeout=60)
    return root


def run_try(cli, repo: Path, tmp_path: Path, url: str, *args: str, env: dict | None = None):
    """`try -r tip` against the endpoint at `url` (static fake keys, nothing else of AWS)."""
    empty = tmp_path / "empty"
    empty.write_text("")
    start = time.monotonic()
    proc = cli.run("--hg-repo", str(repo), *args, "try", "-r", "tip",
                   state=tmp_path / "state", cwd=repo, aws=False, timeout=BOUND + 60,
                   env={"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-west-2", "AWS_ENDPOINT_URL_LAMBDA": url,
                        "AWS_CONFIG_FILE": str(empty), "AWS_SHARED_CREDENTIALS_FILE": str(empty),
                        "AWS_EC2_METADATA_DISABLED": "true", "HOME": str(tmp_path),
                        **(env or {})})
    assert time.monotonic() - start < BOUND, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "\x1b" not in proc.stderr + proc.stdout
    return proc


def closing(proc, code: int) -> str:
    """The run ended with `code`; its closing line without the log's name."""
    assert proc.returncode == code, proc.stderr[-3000:]
    return proc.stderr.strip().splitlines()[-1].partition(" [log: ")[0]


def log_of(proc) -> str:
    """The run's log (named by the closing line of a failed run)."""
    name = re.search(r"\[log: (.+)\]$", proc.stderr.strip().splitlines()[-1]).group(1)
    return Path(name).read_text()


def remote_lines(proc) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("remote: ")]


# -- the answer is lost: sent once, and said to be possibly received ----------------------

@pytest.mark.parametrize("answer,why", [(drop, "ConnectionClosedError"),
                                        (truncated, "IncompleteReadError")])
def test_a_lost_answer_is_sent_once_and_exit_15(cli, repo, tmp_path, endpoint, answer, why):
    fake = endpoint(answer)
    proc = run_try(cli, repo, tmp_path, fake.url, "-q")
    line = closing(proc, 15)
    assert line == (f"try outcome unknown: the bundle was sent to {FUNCTION} but its answer "
                    f"was lost ({why}): the Try server may have received it (check whether "
                    "it arrived before sending it again)")
    assert proc.stderr.strip().count("\n") == 0  # -q: the one line
    assert fake.uploads == 1 and len(fake.bodies) == 1


def test_a_server_error_is_not_retried(cli, repo, tmp_path, endpoint):
    """A 500 after the request: botocore retried it (5 uploads)."""
    fake = endpoint(aws_error(500, "ServiceException", "internal error"))
    line = closing(run_try(cli, repo, tmp_path, fake.url, "-q"), 5)
    assert line.startswith("aws error: ServiceException (lambda:Invoke ci-try-server-upload)")
    assert fake.uploads == 1


def test_no_connection_is_retried_and_nothing_sent(cli, repo, tmp_path):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    proc = run_try(cli, repo, tmp_path, url, env={"AWS_MAX_ATTEMPTS": "2"})
    line = closing(proc, 7)
    assert line.startswith("aws endpoint: cannot reach AWS (lambda:Invoke "
                           "ci-try-server-upload): Could not connect")
    assert line.endswith("; nothing was sent")
    assert "AWS Invoke: EndpointConnectionError; retrying (2/2)" in proc.stderr


@pytest.mark.parametrize("answer,line", [
    (aws_error(413, "RequestEntityTooLargeException", "Request must be smaller than 6291456"),
     "try server: Lambda refused the request as too large (HTTP 413 "
     f"RequestEntityTooLargeException); {FUNCTION} did not run (send fewer or smaller "
     "changesets)"),
    (reply(b"<html>413 Request Entity Too Large</html>", 413, {"Content-Type": "text/plain"}),
     "try server: Lambda refused the request as too large (HTTP 413); "
     f"{FUNCTION} did not run (send fewer or smaller changesets)"),
    (aws_error(404, "ResourceNotFoundException", "Function not found"),
     f"try server: no Lambda function named '{FUNCTION}' in region us-west-2 (check "
     "--function and --aws-region; the Try server lives in us-west-2)"),
])
def test_lambda_refuses(cli, repo, tmp_path, endpoint, answer, line):
    fake = endpoint(answer)
    proc = run_try(cli, repo, tmp_path, fake.url, "-q")
    assert closing(proc, 14) == line
    assert proc.stderr.strip().count("\n") == 0
    assert fake.uploads == 1


# -- the reply is hostile: escaped, bounded, never a crash ----------------------------------

HOSTILE = ["\x1b[2J\x1b[Hscreen cleared", "\x1b]0;window title\x07",
           "ok\rremote: all tests passed", "two\nremote: all tests passed",
           "\x9b31mC1 CSI\u202eevil", "tab\tstays"]


def test_escape_sequences_are_shown_escaped(cli, repo, tmp_path, endpoint):
    fake = endpoint(reply(json.dumps(HOSTILE).encode()))
    proc = run_try(cli, repo, tmp_path, fake.url)
    assert proc.returncode == 0, proc.stderr
    assert remote_lines(proc) == [
        "remote: \\x1b[2J\\x1b[Hscreen cleared", "remote: \\x1b]0;window title\\x07",
        "remote: ok\\rremote: all tests passed", "remote: two\\nremote: all tests passed",
        "remote: \\x9b31mC1 CSI\\u202eevil", "remote: tab\tstays"]
    assert not any(re.match(r"remote: all", line) for line in proc.stderr.splitlines())
    assert "\r" not in proc.stderr and "\x9b" not in proc.stderr
    assert fake.uploads == 1


def test_a_rejection_line_is_escaped_and_cut(cli, repo, tmp_path, endpoint):
    """A function error whose errorMessage is 3 MB with escapes; errorType too."""
    message = "\x1b[2Jrejected " + "x" * 3_000_000
    fake = endpoint(reply(json.dumps({"errorMessage": message,
                                      "errorType": "\x1b]0;t\x07" + "T" * 500}).encode(),
                          headers={"X-Amz-Function-Error": "Unhandled"}))
    proc = run_try(cli, repo, tmp_path, fake.url)
    line = closing(proc, 14)
    assert line == ("try server: the Try server rejected the submission (\\x1b]0;t\\x07"
                    + "T" * 94 + "…): \\x1b[2Jrejected " + "x" * 187 + "…")
    shown = remote_lines(proc)
    assert shown == ["remote: \\x1b[2Jrejected " + "x" * 487
                     + " … 2,999,513 more characters not shown (see the run's log)"]
    assert len(proc.stderr) < 10_000
    assert fake.uploads == 1


def test_a_reply_of_10000_elements_shows_200(cli, repo, tmp_path, endpoint):
    fake = endpoint(reply(json.dumps([f"message {n}" for n in range(10_000)]).encode()))
    proc = run_try(cli, repo, tmp_path, fake.url, "-v")
    assert proc.returncode == 0, proc.stderr
    shown = remote_lines(proc)
    assert len(shown) == 201 and shown[199] == "remote: message 199"
    assert shown[200] == "remote: … 9,800 more lines not shown (see the run's log)"
    assert fake.uploads == 1


def test_a_5_mb_message_is_cut_and_logged_within_a_bound(cli, repo, tmp_path, endpoint):
    fake = endpoint(reply(json.dumps(["start " + "y" * 5_000_000, "second"]).encode()))
    proc = run_try(cli, repo, tmp_path, fake.url)
    assert proc.returncode == 0, proc.stderr
    assert remote_lines(proc) == [
        "remote: start " + "y" * 494 + " … 4,999,506 more characters not shown (see the "
        "run's log)", "remote: second"]
    logs = list((tmp_path / "state" / "logs").iterdir())
    assert len(logs) == 1 and logs[0].stat().st_size < 1_100_000
    assert "remote: … 1 more lines not logged" in logs[0].read_text()


def test_a_reply_above_8_mib_is_read_that_far(cli, repo, tmp_path, endpoint):
    fake = endpoint(reply(b"z" * 10_000_000))
    proc = run_try(cli, repo, tmp_path, fake.url)
    assert proc.returncode == 0, proc.stderr
    assert remote_lines(proc) == ["remote: " + "z" * 500 + " … 8,388,108 more characters "
                                  "not shown (see the run's log)"]
    assert ("warning: the Try server's reply is longer than 8,388,608 bytes: the rest was "
            "not read") in proc.stderr
    assert fake.uploads == 1


@pytest.mark.parametrize("body,shown,warning", [
    (b"[" * 100_000 + b"]" * 100_000, "[" * 500, "nested too deeply to read as JSON"),
    (b'["caf\xc3\xa9 \xff\xfe bytes"]', None, None),
    (b"\xff\xfe\x00not json", "\ufffd\ufffd\\x00not json", "not a JSON list of messages"),
    (b'{"unexpected": ["shape"]}', '{"unexpected": ["shape"]}', "not a JSON list of messages"),
])
def test_a_reply_of_another_shape_is_shown_as_it_came(cli, repo, tmp_path, endpoint, body,
                                                      shown, warning):
    """100,000 levels deep was a RecursionError: exit 70 and a traceback."""
    fake = endpoint(reply(body))
    proc = run_try(cli, repo, tmp_path, fake.url)
    assert proc.returncode == 0, proc.stderr
    lines = remote_lines(proc)
    if shown is None:
        assert lines == ["remote: café \ufffd\ufffd bytes"]
    else:
        assert lines[0].startswith("remote: " + shown)
    assert (warning is None) == ("warning: the Try server's reply is" not in proc.stderr)
    if warning:
        assert warning in proc.stderr
    assert fake.uploads == 1
