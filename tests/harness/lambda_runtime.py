"""A local Lambda runtime beside moto: runs the deployed zip, as the stock runtime would.

moto stores Lambda functions but cannot run them without Docker. `LambdaRuntime` is an
HTTP server for ``AWS_ENDPOINT_URL_LAMBDA``:

- ``POST /2015-03-31/functions/<name>/invocations`` looks the function up in moto
  (an unknown one gets moto's own 404 ``ResourceNotFoundException``), takes the zip
  moto holds for it (by ``CodeSha256``: the runtime keeps the bytes of every
  CreateFunction/UpdateFunctionCode it passes on) and runs the handler in a fresh
  ``python -I`` of a venv that has boto3 and nothing else, with the function's
  environment, its region, fake credentials and ``AWS_ENDPOINT_URL`` (moto). The
  answer is Lambda's: 200 and the result, or 200, ``X-Amz-Function-Error: Unhandled``
  and ``{"errorMessage", "errorType", "stackTrace"}``.
- every other Lambda call goes to moto unchanged.
- :meth:`LambdaRuntime.local_url` serves a function's URL (the one moto made, which
  is not reachable) on a loopback port of its own: a request becomes a payload format
  2.0 event and the handler's ``{statusCode, headers, body, isBase64Encoded}`` the
  HTTP answer.

:func:`build_python` makes the boto3-only venv from the wheels tests/run caches.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import http.server
import io
import json
import re
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from .net import LOOPBACK

MAX_REQUEST_BYTES = 6 * 1024 * 1024  # Lambda's synchronous payload limit, both ways
INVOKE = re.compile(r"/2015-03-31/functions/(?P<name>[^/?]+)/invocations/?$")
CREATE = re.compile(r"/2015-03-31/functions/?$")
UPDATE_CODE = re.compile(r"/2015-03-31/functions/(?P<name>[^/?]+)/code/?$")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host",
              "proxy-connection", "te", "trailer", "upgrade"}

# Runs inside the clean interpreter: the stock runtime's contract, reduced to what a
# handler sees (the module path, the event on stdin, a context object). The result
# goes to the original stdout; whatever the handler prints goes to stderr (its log).
BOOTSTRAP = r'''
import importlib, json, os, sys, time, traceback
result_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
os.dup2(2, 1)
sys.path.insert(0, os.environ["LAMBDA_TASK_ROOT"])
deadline = time.monotonic() + float(os.environ["_HGA_TIMEOUT"])
os.environ.pop("_HGA_TIMEOUT")

class Context:
    function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
    function_version = os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
    invoked_function_arn = os.environ.pop("_HGA_ARN")
    memory_limit_in_mb = os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]
    aws_request_id = os.environ.pop("_HGA_REQUEST_ID")
    log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
    log_stream_name = "local"

    def get_remaining_time_in_millis(self):
        return max(0, int((deadline - time.monotonic()) * 1000))

def fail(kind, message, tb=None):
    trace = traceback.format_list(traceback.extract_tb(tb)) if tb else []
    json.dump({"error": {"errorMessage": message, "errorType": kind,
                         "stackTrace": trace}}, result_out)

def main():
    module_name, _, name = sys.argv[1].rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        return fail("Runtime.ImportModuleError",
                    f"Unable to import module '{module_name}': {exc}")
    handler = getattr(module, name, None)
    if handler is None:
        return fail("Runtime.HandlerNotFound",
                    f"Handler '{name}' missing on module '{module_name}'")
    event = json.loads(sys.stdin.buffer.read() or b"{}")
    try:
        result = handler(event, Context())
    except Exception as exc:
        traceback.print_exc()
        return fail(type(exc).__name__, str(exc), exc.__traceback__)
    try:
        text = json.dumps({"result": result})
    except (TypeError, ValueError) as exc:
        return fail("Runtime.MarshalError", f"Unable to marshal response: {exc}")
    result_out.write(text)

main()
result_out.flush()
'''


def build_python(root: Path, wheels: Path) -> Path:
    """A venv at `root` with boto3 (and its dependencies) and nothing else, installed
    offline from `wheels`; returns its interpreter."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True,
                   capture_output=True, timeout=120)
    python = root / "bin" / "python"
    # This venv's pip installs into the other: the runtime's venv gets no pip either.
    subprocess.run([sys.executable, "-m", "pip", "--isolated", "--disable-pip-version-check",
                    "--python", str(python), "install", "-q", "--no-index",
                    "--find-links", str(wheels), "boto3"],
                   check=True, capture_output=True, timeout=300)
    return python


@dataclass
class Invocation:
    """One run of a handler, for the tests to look at."""

    function: str
    event: Any
    result: Any = None
    error: dict | None = None
    log: str = ""
    seconds: float = 0.0


@dataclass
class _Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    cookies: list[str] = field(default_factory=list)  # Set-Cookie, one header each


@dataclass
class LambdaRuntime:
    """The runtime's API server (`url`, for ``AWS_ENDPOINT_URL_LAMBDA``; `env`)."""

    moto_url: str
    python: Path
    workdir: Path
    region: str
    url: str = ""
    invocations: list[Invocation] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._code: dict[str, bytes] = {}  # CodeSha256 -> zip
        self._lock = threading.Lock()
        self._url_servers: dict[str, tuple[http.server.ThreadingHTTPServer, str]] = {}
        self._api = _serve(self._api_handler())
        self.url = f"http://{LOOPBACK}:{self._api.server_address[1]}"

    @property
    def env(self) -> dict[str, str]:
        """What a CLI child needs to reach this runtime for Lambda (moto for the rest)."""
        return {"AWS_ENDPOINT_URL_LAMBDA": self.url}

    def stop(self) -> None:
        servers = [self._api] + [s for s, _ in self._url_servers.values()]
        for server in servers:
            server.shutdown()
            server.server_close()

    # -- moto -----------------------------------------------------------------------

    def _moto(self, method: str, path: str, body: bytes = b"",
              headers: dict[str, str] | None = None) -> _Reply:
        parts = urlsplit(self.moto_url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            reply = conn.getresponse()
            data = reply.read()
            kept = {k: v for k, v in reply.getheaders() if k.lower() not in HOP_BY_HOP}
            for key, value in list(kept.items()):
                # moto labels its Lambda answers text/html; Lambda's are JSON.
                if key.lower() == "content-type" and value.startswith("text/html"):
                    kept[key] = "application/json"
            return _Reply(reply.status, kept, data)
        finally:
            conn.close()

    def _client(self) -> Any:
        import boto3

        return boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing",
            region_name=self.region).client("lambda", endpoint_url=self.moto_url)

    def code_of(self, code_sha256: str) -> bytes | None:
        """The zip of a function (by its ``CodeSha256``), as it was deployed."""
        with self._lock:
            return self._code.get(code_sha256)

    def _remember_code(self, body: bytes) -> None:
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return
        code = request.get("Code", request)  # CreateFunction nests it, UpdateFunctionCode not
        if isinstance(code, dict) and isinstance(code.get("ZipFile"), str):
            data = base64.b64decode(code["ZipFile"])
            sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
            with self._lock:
                self._code[sha] = data

    # -- running a handler ----------------------------------------------------------

    def _task_root(self, sha: str) -> Path | None:
        with self._lock:
            data = self._code.get(sha)
        if data is None:
            return None
        root = self.workdir / "code" / hashlib.sha256(sha.encode()).hexdigest()[:16]
        if not root.exists():
            staging = root.with_name(root.name + f".{uuid.uuid4().hex}")
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                z.extractall(staging)
            staging.rename(root)
        return root

    def run(self, config: dict, event_bytes: bytes) -> Invocation:
        """Run the handler of the function `config` (GetFunction's Configuration)."""
        name = config["FunctionName"]
        arn = config["FunctionArn"]
        try:
            event = json.loads(event_bytes or b"{}")
        except ValueError:
            event = None
        record = Invocation(name, event)
        root = self._task_root(config.get("CodeSha256", ""))
        if root is None:
            record.error = {"errorMessage": f"the local runtime has no code for {name} "
                                            f"({config.get('CodeSha256')}): not deployed "
                                            "through it", "errorType": "Runtime.NoCode",
                            "stackTrace": []}
            self.invocations.append(record)
            return record
        timeout = float(config.get("Timeout") or 3)
        home = self.workdir / "home"
        home.mkdir(exist_ok=True)
        env = dict((config.get("Environment") or {}).get("Variables") or {})
        env.update({
            "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "TZ": ":UTC",
            "HOME": str(home), "LAMBDA_TASK_ROOT": str(root),
            "AWS_LAMBDA_FUNCTION_NAME": name, "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.get("MemorySize") or 128),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{config.get('Runtime', 'python3.12')}",
            "AWS_REGION": arn.split(":")[3], "AWS_DEFAULT_REGION": arn.split(":")[3],
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_ENDPOINT_URL": self.moto_url, "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(home / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
            "_HGA_TIMEOUT": str(timeout), "_HGA_ARN": arn,
            "_HGA_REQUEST_ID": str(uuid.uuid4()),
        })
        start = time.monotonic()
        try:
            proc = subprocess.run([str(self.python), "-I", "-c", BOOTSTRAP,
                                   config["Handler"]], input=event_bytes or b"{}", check=False,
                                  capture_output=True, cwd=root, env=env,
                                  timeout=timeout + 5)  # + the interpreter's start
        except subprocess.TimeoutExpired as exc:
            record.log = (exc.stderr or b"").decode("utf-8", "replace")
            record.error = {"errorMessage": f"Task timed out after {timeout:.2f} seconds",
                            "errorType": "Sandbox.Timedout", "stackTrace": []}
        else:
            record.log = proc.stderr.decode("utf-8", "replace")
            try:
                outcome = json.loads(proc.stdout)
            except ValueError:
                outcome = {"error": {"errorMessage": f"Runtime exited with error: exit "
                                                     f"status {proc.returncode}",
                                     "errorType": "Runtime.ExitError", "stackTrace": []}}
            if "error" in outcome:
                record.error = outcome["error"]
            else:
                record.result = outcome["result"]
        record.seconds = time.monotonic() - start
        self.invocations.append(record)
        return record

    def _invoke(self, name: str, headers: dict[str, str], body: bytes) -> _Reply:
        """An Invoke call (`headers` with lower-case names)."""
        # moto takes the account and region from the caller's signature.
        auth = {k: v for k, v in headers.items() if k in ("authorization", "x-amz-date")}
        found = self._moto("GET", f"/2015-03-31/functions/{quote(name, safe='')}",
                           headers=auth)
        if found.status != 200:
            return found  # moto's own answer: 404 ResourceNotFoundException
        config = json.loads(found.body)["Configuration"]
        if len(body) > MAX_REQUEST_BYTES:
            return _error(413, "RequestEntityTooLargeException",
                          f"{len(body)} byte payload is too large for the RequestResponse "
                          f"invocation type ({MAX_REQUEST_BYTES} byte maximum)")
        try:
            json.loads(body or b"{}")
        except ValueError:
            return _error(400, "InvalidRequestContentException",
                          "Could not parse request body into json")
        kind = headers.get("x-amz-invocation-type") or "RequestResponse"
        if kind == "DryRun":
            return _Reply(204, {}, b"")
        if kind == "Event":
            threading.Thread(target=self.run, args=(config, body), daemon=True).start()
            return _Reply(202, {}, b"")
        record = self.run(config, body)
        reply_headers = {"Content-Type": "application/json",
                         "X-Amz-Executed-Version": "$LATEST"}
        if headers.get("x-amz-log-type") == "Tail":
            tail = record.log.encode()[-4096:]
            reply_headers["X-Amz-Log-Result"] = base64.b64encode(tail).decode()
        if record.error is None:
            payload = json.dumps(record.result).encode()
            if len(payload) <= MAX_REQUEST_BYTES:
                return _Reply(200, reply_headers, payload)
            record.error = {"errorMessage": f"Response payload size ({len(payload)} bytes) "
                                            f"exceeded maximum allowed payload size "
                                            f"({MAX_REQUEST_BYTES} bytes).",
                            "errorType": "Function.ResponseSizeTooLarge"}
        reply_headers["X-Amz-Function-Error"] = "Unhandled"
        return _Reply(200, reply_headers, json.dumps(record.error).encode())

    def _api_handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        runtime = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.partition("?")[0]
                invoke = INVOKE.match(path)
                if invoke and self.command == "POST":
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    reply = runtime._invoke(unquote(invoke.group("name")), headers, body)
                else:
                    forward = {k: v for k, v in self.headers.items()
                               if k.lower() not in HOP_BY_HOP}
                    reply = runtime._moto(self.command, self.path, body, forward)
                    creates = self.command == "POST" and CREATE.match(path)
                    updates = self.command == "PUT" and UPDATE_CODE.match(path)
                    if reply.status < 300 and (creates or updates):
                        runtime._remember_code(body)
                _answer(self, reply)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

        return Handler

    # -- function URLs --------------------------------------------------------------

    def local_url(self, function_url: str) -> str:
        """Where the function URL `function_url` (as moto made it) is served here:
        ``http://127.0.0.1:PORT`` (no trailing slash)."""
        wanted = function_url.rstrip("/")
        with self._lock:
            if wanted in self._url_servers:
                return self._url_servers[wanted][1]
        name = self._function_of(wanted)
        server = _serve(self._url_handler(wanted, name))
        base = f"http://{LOOPBACK}:{server.server_address[1]}"
        with self._lock:
            self._url_servers[wanted] = (server, base)
        return base

    def _function_of(self, url: str) -> str:
        client = self._client()
        for page in client.get_paginator("list_functions").paginate():
            for function in page["Functions"]:
                try:
                    config = client.get_function_url_config(
                        FunctionName=function["FunctionName"])
                except client.exceptions.ResourceNotFoundException:
                    continue
                if config["FunctionUrl"].rstrip("/") == url:
                    return function["FunctionName"]
        raise LookupError(f"no function has the URL {url}")

    def serve_url_request(self, url: str, name: str, method: str, target: str,
                          headers: list[tuple[str, str]], body: bytes,
                          source_ip: str) -> _Reply:
        """One HTTP request to function URL `url` (of function `name`), answered."""
        client = self._client()
        try:
            config = client.get_function_url_config(FunctionName=name)
            function = client.get_function(FunctionName=name)["Configuration"]
        except client.exceptions.ResourceNotFoundException:
            return _Reply(403, {"Content-Type": "application/json"},
                          b'{"Message":"Forbidden"}')
        if config["FunctionUrl"].rstrip("/") != url or config["AuthType"] != "NONE":
            # A URL that is gone (or wants SigV4, which a browser does not send).
            return _Reply(403, {"Content-Type": "application/json"},
                          b'{"Message":"Forbidden"}')
        event = url_event(url, method, target, headers, body, source_ip)
        record = self.run(function, json.dumps(event).encode())
        if record.error is not None:
            return _Reply(502, {"Content-Type": "text/plain"}, b"Internal Server Error")
        return url_response(record.result)

    def _url_handler(self, url: str, name: str) -> type[http.server.BaseHTTPRequestHandler]:
        runtime = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                reply = runtime.serve_url_request(url, name, self.command, self.path,
                                                  list(self.headers.items()), body,
                                                  self.client_address[0])
                _answer(self, reply, head=self.command == "HEAD")

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

        return Handler


_TEXT_TYPES = ("text/", "application/json", "application/javascript", "application/xml",
               "application/x-www-form-urlencoded")


def url_event(url: str, method: str, target: str, headers: list[tuple[str, str]],
              body: bytes, source_ip: str) -> dict:
    """The payload format 2.0 event a function URL hands its function for a request."""
    path, _, query = target.partition("?")
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for key, value in headers:
        if key.lower() == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
            continue
        key = key.lower()
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    params: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        params[key] = f"{params[key]},{value}" if key in params else value
    domain = urlsplit(url).hostname or ""
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0", "routeKey": "$default", "rawPath": unquote(path) or "/",
        "rawQueryString": query, "headers": merged,
        "requestContext": {
            "accountId": "anonymous", "apiId": domain.split(".")[0], "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "http": {"method": method, "path": unquote(path) or "/", "protocol": "HTTP/1.1",
                     "sourceIp": source_ip, "userAgent": merged.get("user-agent", "")},
            "requestId": str(uuid.uuid4()), "routeKey": "$default", "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000)},
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if params:
        event["queryStringParameters"] = params
    if body:
        textual = merged.get("content-type", "").startswith(_TEXT_TYPES)
        try:
            event["body"] = body.decode("utf-8") if textual else None
        except UnicodeDecodeError:
            event["body"] = None
        if event["body"] is None:
            event["body"] = base64.b64encode(body).decode()
            event["isBase64Encoded"] = True
    return event


def url_response(result: Any) -> _Reply:
    """A handler's result as a function URL's HTTP answer (payload format 2.0)."""
    if not (isinstance(result, dict) and "statusCode" in result):
        # Anything else is taken as a JSON body with status 200.
        return _Reply(200, {"Content-Type": "application/json"}, json.dumps(result).encode())
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
    headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
    return _Reply(int(result["statusCode"]), headers, data,
                  [str(c) for c in result.get("cookies") or []])


def _error(status: int, code: str, message: str) -> _Reply:
    return _Reply(status, {"Content-Type": "application/json", "x-amzn-ErrorType": code},
                  json.dumps({"Type": "User", "message": message}).encode())


def _answer(handler: http.server.BaseHTTPRequestHandler, reply: _Reply,
            head: bool = False) -> None:
    handler.send_response(reply.status)
    for key, value in reply.headers.items():
        if key.lower() not in HOP_BY_HOP:
            handler.send_header(key, value)
    for cookie in reply.cookies:
        handler.send_header("Set-Cookie", cookie)
    handler.send_header("Content-Length", str(len(reply.body)))
    try:
        handler.end_headers()
        if not head:
            handler.wfile.write(reply.body)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client went away (a process the test stopped): nobody to answer


def _serve(handler: type[http.server.BaseHTTPRequestHandler]
           ) -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer((LOOPBACK, 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def start(moto_url: str, python: Path, workdir: Path, region: str) -> LambdaRuntime:
    """A running runtime in front of moto at `moto_url` (stop it with ``.stop()``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    return LambdaRuntime(moto_url=moto_url, python=python, workdir=workdir, region=region)
