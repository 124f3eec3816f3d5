"""Helpers for the AWS-layer tests: run the real CLI against moto, a holding proxy."""

from __future__ import annotations

import http.client
import http.server
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

PROJECT = Path(__file__).resolve().parents[1]
LIVE = ["pending", "running", "stopping", "stopped", "shutting-down"]


def cli_env(aws, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HGAUTOMATION_")}
    env.update(aws.env)
    env["PYTHONPATH"] = str(PROJECT)
    env.update(extra)
    return env


def run_cli(aws, state: Path, *args: str, env: dict | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hgautomation", "--state-path", str(state), *args],
        env=env if env is not None else cli_env(aws), capture_output=True, text=True,
        timeout=timeout, cwd=str(state), check=False)


def popen_cli(aws, state: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "hgautomation", "--state-path", str(state), *args],
        env=env if env is not None else cli_env(aws), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, cwd=str(state))


def mutating_calls(stderr: str) -> int:
    match = re.search(r"(\d+) mutating AWS calls", stderr)
    assert match, f"no call summary in output:\n{stderr}"
    return int(match.group(1))


def total_calls(stderr: str) -> int:
    match = re.search(r"(\d+) AWS calls,", stderr)
    assert match, f"no call summary in output:\n{stderr}"
    return int(match.group(1))


def live_instances(ec2, **tag_filters: str) -> list[dict]:
    filters = [{"Name": "instance-state-name", "Values": LIVE}]
    filters += [{"Name": f"tag:{k}", "Values": [v]} for k, v in tag_filters.items()]
    found = ec2.describe_instances(Filters=filters)["Reservations"]
    return [i for r in found for i in r["Instances"]]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@dataclass
class HoldingProxy:
    """An HTTP forwarder to moto that holds the reply of chosen actions for a while.

    The request reaches moto at once (the instance exists), only the answer is late:
    the client sees RunInstances "in flight" after the server already acted.
    """

    target: str
    hold_actions: tuple[str, ...] = ("RunInstances",)
    hold_seconds: float = 4.0
    drop: bool = False  # instead of a late reply, none at all (connection closed)

    def __post_init__(self):
        self.held = threading.Event()  # set when a held reply is waiting
        self.requests: list[str] = []
        parts = urlsplit(self.target)
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                action = re.search(rb"Action=([A-Za-z]+)", body)
                action_name = action.group(1).decode() if action else ""
                proxy.requests.append(action_name)
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, body=body, headers=headers)
                reply = conn.getresponse()
                data = reply.read()
                if action_name in proxy.hold_actions:
                    proxy.held.set()
                    time.sleep(proxy.hold_seconds)
                    if proxy.drop:
                        conn.close()
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                self.send_response(reply.status)
                for k, v in reply.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_POST = do_GET = _forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
