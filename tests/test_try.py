"""`try`: the real CLI against moto's Lambda (no-Docker mode) and a real local repository.

moto 5.2.5 facts these tests rely on (read in its source):
- ``POST /moto-api/config {"lambda": {"use_docker": false}}`` switches Lambda to
  ``moto.awslambda_simple``: ``invoke`` returns the first queued canned response
  (``POST /moto-api/static/lambda-simple/response {"results": [...], "region": R}``),
  else echoes the request payload; it does not look the function up.
- With ``use_docker`` true (moto's default) ``invoke`` first looks the function up,
  so a missing function is a real ``ResourceNotFoundException`` (404).
- A response payload above 6,000,000 bytes becomes a function error
  (``X-Amz-Function-Error: Unhandled``, errorType ``Function.ResponseSizeTooLarge``).
"""

from __future__ import annotations

import base64
import io
import json
import os
import shlex
import urllib.request
import zipfile
from pathlib import Path

import pytest
from harness import hgsource

from hgautomation import catalog, tryserver

FUNCTION = "ci-try-server-upload"


def _moto_api(aws, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(aws.endpoint_url + path, data=data,
                                 method="GET" if body is None else "POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        text = resp.read().decode()
    return json.loads(text) if text.strip() else {}


def _queue(aws, *results: str) -> None:
    _moto_api(aws, "/moto-api/static/lambda-simple/response",
              {"results": list(results), "region": aws.region})


@pytest.fixture
def lambda_simple(aws_fresh):
    """moto in no-Docker Lambda mode with the Try function created; config restored after."""
    aws = aws_fresh
    before = _moto_api(aws, "/moto-api/config")
    _moto_api(aws, "/moto-api/config", {"lambda": {"use_docker": False}})
    iam = aws.client("iam")
    role = iam.create_role(RoleName="try-server", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("handler.py", "def handler(event, context):\n    return {}\n")
    aws.client("lambda").create_function(
        FunctionName=FUNCTION, Runtime="python3.12", Role=role, Handler="handler.handler",
        Code={"ZipFile": code.getvalue()})
    try:
        yield aws
    finally:
        _moto_api(aws, "/moto-api/config", {"lambda": before.get("lambda", {"use_docker": True})})


def _hg(repo: Path, *args: str) -> str:
    return hgsource.hg("-R", str(repo), *args, timeout=120)


@pytest.fixture
def repo(tmp_path) -> Path:
    """Two public changesets, then two drafts on top."""
    root = tmp_path / "repo"
    hgsource.hg("init", str(root), timeout=60)
    (root / "a.txt").write_text("one\n")
    _hg(root, "commit", "-A", "-m", "public base", "-u", "Pub <pub@example.org>")
    (root / "a.txt").write_text("one\ntwo\n")
    _hg(root, "commit", "-m", "public second", "-u", "Pub <pub@example.org>")
    _hg(root, "phase", "--public", "-r", ".")
    (root / "b.txt").write_text("draft\n")
    _hg(root, "commit", "-A", "-m", "draft one", "-u", "Dev <dev@example.org>")
    (root / "b.txt").write_text("draft\nmore\n")
    _hg(root, "commit", "-m", "try: draft two\n\nLonger explanation.",
        "-u", "Dev <dev@example.org>")
    return root


def _run(cli, aws, repo: Path, tmpdir: Path, *args: str, env_overrides: dict | None = None,
         drop_aws: bool = False):
    tmpdir.mkdir(exist_ok=True)
    env = {"TMPDIR": str(tmpdir), "HOME": str(tmpdir.parent), **(env_overrides or {})}
    proc = cli.run("--hg-repo", str(repo), *args, state=tmpdir.parent / "state", cwd=repo,
                   aws=False if drop_aws else aws, env=env, timeout=180)
    # The temporary bundle (and its directory) are gone whatever happened.
    assert sorted(os.listdir(tmpdir)) == [], proc.stderr
    return proc


def test_submit_prints_resolved_info_and_server_messages(cli, lambda_simple, repo, tmp_path):
    _queue(lambda_simple, json.dumps({"messages": ["queued try job 17",
                                                   "results: https://try.example/17"]}))
    node = _hg(repo, "log", "-r", "tip", "-T", "{node}")
    proc = _run(cli, lambda_simple, repo, tmp_path / "tmp", "try", "-r", "tip")
    assert proc.returncode == 0, proc.stderr
    assert f"node:    {node}" in proc.stderr
    assert "branch:  default" in proc.stderr
    assert "user:    Dev <dev@example.org>" in proc.stderr
    assert "summary: try: draft two" in proc.stderr
    assert "Longer explanation" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert "remote: queued try job 17" in lines
    assert "remote: results: https://try.example/17" in lines
    assert f"submitted {node[:12]}" in proc.stdout


def _received(proc, state: Path) -> dict:
    """The request moto echoed back (nothing queued): the CLI shows ``remote: {...``, cut
    at 500 characters, and the run's log (the newest in `state`) has it whole."""
    shown = [line for line in proc.stderr.splitlines() if line.startswith("remote: {")]
    assert len(shown) == 1, proc.stderr
    assert "warning: the Try server's reply is not a JSON list of messages" in proc.stderr
    log = max((state / "logs").glob("*-try.log"), key=lambda path: path.stat().st_mtime_ns)
    echoed = [line.partition(" remote: ")[2] for line in log.read_text().splitlines()
              if " remote: {" in line]
    assert len(echoed) == 1, log
    assert shown[0].startswith("remote: " + echoed[0][:400])
    return json.loads(echoed[0])


def _bundled_nodes(repo: Path, tmp_path: Path, payload: dict) -> set[str]:
    """Apply the received bundle to a clone holding only the public changesets; what it adds.

    The clone accepting it proves the base is public; the changesets it adds (drafts in
    the clone) are exactly what the bundle held.
    """
    bundle = tmp_path / "received.hg"
    bundle.write_bytes(base64.b64decode(payload["bundle"]))
    public = tmp_path / "public-clone"
    public_head = _hg(repo, "log", "-r", "max(public())", "-T", "{node}")
    hgsource.hg("clone", "-q", "-r", public_head, str(repo), str(public), timeout=60)
    before = set(_hg(public, "log", "-T", "{node}\n").split())
    assert before == set(_hg(repo, "log", "-r", "public()", "-T", "{node}\n").split())
    _hg(public, "unbundle", str(bundle))
    return set(_hg(public, "log", "-T", "{node}\n").split()) - before


def test_payload_received_by_server_is_the_draft_bundle(cli, lambda_simple, repo, tmp_path):
    # Nothing queued: moto echoes the request, which the CLI shows as it is.
    node = _hg(repo, "log", "-r", "tip", "-T", "{node}")
    proc = _run(cli, lambda_simple, repo, tmp_path / "tmp", "try", "-r", "tip")
    assert proc.returncode == 0, proc.stderr
    payload = _received(proc, tmp_path / "state")
    assert payload["node"] == node
    assert payload["branch"] == "default"
    assert payload["user"] == "Dev <dev@example.org>"
    assert payload["message"] == "try: draft two\n\nLonger explanation."
    # The bundle holds the draft ancestry and nothing else.
    drafts = set(_hg(repo, "log", "-r", "draft()", "-T", "{node}\n").split())
    assert len(drafts) == 2
    assert _bundled_nodes(repo, tmp_path, payload) == drafts


@pytest.mark.parametrize("example", [e for e in catalog.command("try").examples
                                     if " -r " in e])  # not --cancel/--rerun's
def test_help_examples_send_the_whole_stack(cli, lambda_simple, repo, tmp_path, example):
    """Each example of ``try --help``, run as printed on a stack of two drafts.

    Before revision sets were taken, ``-r 'draft() and ::.'`` (two changesets) exited 4.
    """
    argv = shlex.split(example.format(prog="hgautomation"))[1:]
    tip = _hg(repo, "log", "-r", "tip", "-T", "{node}")
    proc = _run(cli, lambda_simple, repo, tmp_path / "tmp", *argv)
    assert proc.returncode == 0, proc.stderr
    assert "sending 2 draft changesets in a " in proc.stderr
    payload = _received(proc, tmp_path / "state")
    # Named after the highest revision (hg lists 'draft() and ::.' lowest first).
    assert payload["node"] == tip
    assert payload["message"] == "try: draft two\n\nLonger explanation."
    assert _bundled_nodes(repo, tmp_path, payload) == set(
        _hg(repo, "log", "-r", "draft()", "-T", "{node}\n").split())


def test_a_set_naming_an_older_draft_sends_only_its_ancestry(cli, lambda_simple, repo, tmp_path):
    first = _hg(repo, "log", "-r", "min(draft())", "-T", "{node}")
    proc = _run(cli, lambda_simple, repo, tmp_path / "tmp", "try", "-r", "1 + min(draft())")
    assert proc.returncode == 0, proc.stderr
    payload = _received(proc, tmp_path / "state")
    assert payload["node"] == first and payload["message"] == "draft one"
    assert _bundled_nodes(repo, tmp_path, payload) == {first}


@pytest.mark.parametrize("revset", [".", "draft()", "draft() and ::."])
def test_a_secret_changeset_is_never_sent(cli, lambda_simple, repo, tmp_path, revset):
    """A secret changeset on top of the drafts: named, it is refused; otherwise left out."""
    (repo / "c.txt").write_text("private\n")
    _hg(repo, "commit", "-A", "--secret", "-m", "secret work", "-u", "Dev <dev@example.org>")
    secret = _hg(repo, "log", "-r", "tip", "-T", "{node}")
    _queue(lambda_simple, "sentinel-not-consumed")
    proc = _run(cli, lambda_simple, repo, tmp_path / "tmp", "try", "-r", revset + " + secret()")
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"usage error: revision '{revset} + secret()' includes secret "
                           f"changeset 4:{secret[:12]}: secret changesets are never sent"), last
    assert "Traceback" not in proc.stderr
    resp = lambda_simple.client("lambda").invoke(FunctionName=FUNCTION, Payload=b"{}")
    assert resp["Payload"].read() == b"sentinel-not-consumed"
    if revset == ".":
        return
    # The drafts below the secret changeset go without it.
    proc = _run(cli, lambda_simple, repo, tmp_path / "tmp2", "try", "-r", revset)
    assert proc.returncode == 0, proc.stderr
    payload = _received(proc, tmp_path / "state")
    assert payload["node"] != secret
    assert secret not in _bundled_nodes(repo, tmp_path, payload)


@pytest.mark.parametrize("revset,message", [
    ("draft() and public()", "revision 'draft() and public()' names no changeset in "),
    ("public()", "revision 'public()' names only public changesets: the Try server only "
                 "takes draft changesets"),
])
def test_a_set_without_drafts_is_refused(cli, lambda_simple, repo, tmp_path, revset, message):
    proc = _run(cli, lambda_simple, repo, tmp_path / "tmp", "try", "-r", revset)
    assert proc.returncode == 4, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert message in last, last
    assert "Traceback" not in proc.stderr


def test_public_revision_is_refused(cli, lambda_simple, repo, tmp_path):
    proc = _run(cli, lambda_simple, repo, tmp_path / "tmp", "try", "-r", "1")
    assert proc.returncode == 4, proc.stderr
    assert "is public" in proc.stderr
    assert len(proc.stderr.strip().splitlines()[-1:]) == 1
    assert "Traceback" not in proc.stderr


def test_unknown_revision(cli, lambda_simple, repo, tmp_path):
    proc = _run(cli, lambda_simple, repo, tmp_path / "tmp", "try", "-r", "no-such-rev")
    assert proc.returncode == 4
    assert "cannot resolve revision 'no-such-rev'" in proc.stderr.strip().splitlines()[-1]


def test_too_large_bundle_refused_before_sending(cli, lambda_simple, repo, tmp_path):
    # 5 MiB of incompressible data: > 6 MiB once base64-encoded.
    (repo / "big.bin").write_bytes(os.urandom(5 * 1024 * 1024))
    _hg(repo, "commit", "-A", "-m", "big draft", "-u", "Dev <dev@example.org>")
    _queue(lambda_simple, "sentinel-not-consumed")
    proc = _run(cli, lambda_simple, repo, tmp_path / "tmp", "try", "-r", "tip")
    assert proc.returncode == 14, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("try server: bundle too large: ")
    size = int(last.split("bundle too large: ")[1].split(" bytes")[0].replace(",", ""))
    assert size > 5 * 1024 * 1024
    assert "6,291,456" in last and "nothing was sent" in last
    # The server never saw an invocation: the queued answer is still first in line.
    resp = lambda_simple.client("lambda").invoke(FunctionName=FUNCTION, Payload=b"{}")
    assert resp["Payload"].read() == b"sentinel-not-consumed"


def test_function_error_prints_message_and_fails(cli, lambda_simple, repo, tmp_path):
    # moto turns a response above 6,000,000 bytes into a real Lambda function error.
    _queue(lambda_simple, "x" * 6_000_001)
    proc = _run(cli, lambda_simple, repo, tmp_path / "tmp", "try", "-r", "tip")
    assert proc.returncode == 14, proc.stderr
    assert ("remote: Response payload size exceeded maximum allowed payload size"
            in proc.stderr)
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("try server: the Try server rejected the submission "
                           "(Function.ResponseSizeTooLarge)")


def test_no_such_function(cli, aws_fresh, repo, tmp_path):
    before = _moto_api(aws_fresh, "/moto-api/config")
    # moto's default (Docker) Lambda looks the function up before invoking it.
    _moto_api(aws_fresh, "/moto-api/config", {"lambda": {"use_docker": True}})
    try:
        proc = _run(cli, aws_fresh, repo, tmp_path / "tmp", "try", "-r", "tip",
                    "--function", "no-such-function")
    finally:
        _moto_api(aws_fresh, "/moto-api/config",
                  {"lambda": before.get("lambda", {"use_docker": True})})
    assert proc.returncode == 14, proc.stderr
    line, _, log = proc.stderr.strip().splitlines()[-1].partition(" [log: ")
    assert line == (
        "try server: no Lambda function named 'no-such-function' in region "
        f"{aws_fresh.region} (check --function and --aws-region; the Try server lives in "
        "us-west-2)")
    assert log.endswith("-try.log]")


def test_no_credentials(cli, aws_fresh, repo, tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("")
    proc = _run(cli, aws_fresh, repo, tmp_path / "tmp", "try", "-r", "tip", drop_aws=True,
                env_overrides={"AWS_ENDPOINT_URL": aws_fresh.endpoint_url,
                               "AWS_DEFAULT_REGION": aws_fresh.region,
                               "AWS_CONFIG_FILE": str(empty),
                               "AWS_SHARED_CREDENTIALS_FILE": str(empty),
                               "AWS_EC2_METADATA_DISABLED": "true"})
    assert proc.returncode == 6, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "aws credentials: no usable AWS credentials")


# -- pure logic: the response format ------------------------------------------

def test_parse_response_formats():
    ok = tryserver.parse_response(b'{"messages": ["a", "b"]}', None)
    assert ok.messages == ["a", "b"] and not ok.failed
    handled = tryserver.parse_response(
        b'{"errorMessage": "bundle does not apply\\nmissing parent", '
        b'"errorType": "BundleError"}', "Handled")
    assert handled.failed and handled.error_type == "BundleError"
    assert handled.messages == ["bundle does not apply", "missing parent"]
    assert tryserver.parse_response(b'"just text"', None).messages == ["just text"]
    raw = tryserver.parse_response(b"plain\ntext", "Unhandled")
    assert raw.failed and raw.messages == ["plain", "text"]
