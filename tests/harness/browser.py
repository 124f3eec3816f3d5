"""Pages in a real browser: a local stand-in for a Lambda Function URL (payload format
2.0) in front of a handler, and headless Chromium (Debian's ``chromium``) to take
screenshots and read the DOM after the page loaded."""

from __future__ import annotations

import base64
import contextlib
import http.server
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .net import LOOPBACK
from .process import reaped

Handler = Callable[[dict, Any], dict]


def payload_event(method: str, target: str, headers: dict[str, str], body: bytes,
                  source_ip: str = LOOPBACK) -> dict:
    """The event a Function URL hands its function for one request (payload 2.0)."""
    parts = urlsplit(target)
    lowered = {k.lower(): v for k, v in headers.items()}
    event = {
        "version": "2.0", "routeKey": "$default", "rawPath": parts.path or "/",
        "rawQueryString": parts.query, "headers": lowered,
        "requestContext": {
            "accountId": "anonymous", "apiId": "local", "domainName": lowered.get("host", ""),
            "domainPrefix": "local", "requestId": f"local-{time.monotonic_ns()}",
            "routeKey": "$default", "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "timeEpoch": int(time.time() * 1000),
            "http": {"method": method, "path": parts.path or "/", "protocol": "HTTP/1.1",
                     "sourceIp": source_ip, "userAgent": lowered.get("user-agent", "")},
        },
        "isBase64Encoded": False,
    }
    if body:
        event["body"] = base64.b64encode(body).decode()
        event["isBase64Encoded"] = True
    return event


@contextlib.contextmanager
def function_url(handler: Handler) -> Iterator[str]:
    """Serve *handler* on 127.0.0.1 as a Function URL would; yield the site's root URL."""

    class Request(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            event = payload_event(self.command, self.path, dict(self.headers.items()), body)
            result = handler(event, None)
            data = result.get("body") or ""
            raw = base64.b64decode(data) if result.get("isBase64Encoded") else data.encode()
            self.send_response(int(result.get("statusCode", 200)))
            for name, value in (result.get("headers") or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(raw)

        do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _answer

    server = http.server.ThreadingHTTPServer((LOOPBACK, 0), Request)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def chromium() -> str | None:
    """The chromium executable, or None if it is not installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    exe = chromium()
    if exe is None:
        raise FileNotFoundError("chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="hga-chromium-") as profile:
        argv = [exe, "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                f"--user-data-dir={profile}", *args]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
        with reaped(proc):
            out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def screenshot(url: str, png: Path, size: tuple[int, int] = (1280, 1000),
               timeout: float = 90) -> Path:
    """Load *url* in headless Chromium and save what it shows to *png*."""
    png.unlink(missing_ok=True)
    done = _run([f"--window-size={size[0]},{size[1]}", f"--screenshot={png}",
                 "--hide-scrollbars", url], timeout)
    if not png.is_file() or png.stat().st_size == 0:
        raise RuntimeError(f"chromium took no screenshot of {url} (exit {done.returncode}): "
                           f"{done.stderr[-2000:]}")
    return png


def dump_dom(url: str, timeout: float = 90) -> str:
    """The DOM of *url* as Chromium serialises it once the page has loaded."""
    done = _run(["--dump-dom", url], timeout)
    if done.returncode != 0 or "<html" not in done.stdout:
        raise RuntimeError(f"chromium could not load {url} (exit {done.returncode}): "
                           f"{done.stderr[-2000:]}")
    return done.stdout
