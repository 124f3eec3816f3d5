"""moto's server on loopback as the AWS stand-in, with our own base images (amis.json).

Also: `live_instances` (what moto still runs) and `HoldingProxy` (a forwarder to moto
that delays or drops chosen replies).
"""

from __future__ import annotations

import base64
import http.server
import json
import logging
import os
import re
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .aws_rules import StrictAWS, answer, forward, read_body
from .net import LOOPBACK

AMIS_PATH = Path(__file__).with_name("amis.json")
REGION = "us-west-2"
ACCESS_KEY = SECRET_KEY = "testing"
LIVE = ["pending", "running", "stopping", "stopped", "shutting-down"]


def configure_moto_environment() -> None:
    """Set moto's knobs in os.environ; must run before `moto.ec2` is imported.

    moto reads MOTO_AMIS_PATH once, when moto.ec2.models.amis is first imported.
    """
    os.environ["MOTO_AMIS_PATH"] = str(AMIS_PATH)
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    amis_module = sys.modules.get("moto.ec2.models.amis")
    if amis_module is not None and len(amis_module.AMIS) != len(base_images()):
        raise RuntimeError("moto.ec2 was imported before MOTO_AMIS_PATH was set; "
                           "import moto only after tests/conftest.py has loaded")


def base_images() -> list[dict[str, Any]]:
    """The image records of amis.json (moto's MOTO_AMIS_PATH schema)."""
    return json.loads(AMIS_PATH.read_text())


@dataclass
class MotoServer:
    """A running moto server behind AWS's rules (`aws_rules.StrictAWS`); `endpoint_url`
    is the rules' forwarder, and `env` is what a subprocess needs to talk to it and
    nothing else."""

    endpoint_url: str
    region: str
    env: dict[str, str]
    _server: Any = field(repr=False)
    rules: Any = field(default=None, repr=False)  # aws_rules.StrictAWS

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for `service` bound to this server."""
        import boto3

        session = boto3.session.Session(
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
            region_name=kwargs.pop("region_name", self.region))
        return session.client(service, endpoint_url=self.endpoint_url, **kwargs)

    def reset(self) -> None:
        """Forget every resource (POST /moto-api/reset); base images come back by themselves."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    def stop(self) -> None:
        """Shut the forwarder and the server thread down (bounded)."""
        if self.rules is not None:
            self.rules.close()
        stopper = threading.Thread(target=self._server.stop, daemon=True)
        stopper.start()
        stopper.join(timeout=15)


def start_moto(workdir: Path, region: str = REGION) -> MotoServer:
    """Start a ThreadedMotoServer on 127.0.0.1 and an AWS config that points only at it."""
    configure_moto_environment()
    from moto.server import ThreadedMotoServer

    # One INFO line per request would flood every failing test's captured log.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    # Port 0: the kernel picks, so a busy port cannot make start() wait forever
    # (ThreadedMotoServer.start() blocks without a timeout if binding fails).
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
    starter = threading.Thread(target=server.start, daemon=True)
    starter.start()
    starter.join(timeout=30)
    if starter.is_alive():
        raise TimeoutError("moto server did not start within 30s")
    host, port = server.get_host_and_port()
    moto_url = f"http://{host}:{port}"

    def moto_ec2(region_name: str) -> Any:
        import boto3

        return boto3.session.Session(
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
            region_name=region_name).client("ec2", endpoint_url=moto_url)

    # Every request, the CLI's and the tests', goes through AWS's rules first.
    rules = StrictAWS(moto_url, moto_ec2)
    endpoint_url = rules.url

    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "aws-config"
    config.write_text(f"[default]\nregion = {region}\n")
    credentials = workdir / "aws-credentials"
    credentials.write_text(f"[default]\naws_access_key_id = {ACCESS_KEY}\n"
                           f"aws_secret_access_key = {SECRET_KEY}\n")
    credentials.chmod(0o600)
    env = {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_CONFIG_FILE": str(config),
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
        # Never ask the instance metadata service (169.254.169.254) for anything.
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    return MotoServer(endpoint_url=endpoint_url, region=region, env=env, _server=server,
                      rules=rules)


def injected_host_key(ec2, instance_id: str) -> tuple[str, str]:
    """The ed25519 host key pair (private, public) in the instance's cloud-config user data."""
    value = ec2.describe_instance_attribute(InstanceId=instance_id,
                                            Attribute="userData")["UserData"]["Value"]
    lines = base64.b64decode(value).decode().splitlines()
    start = next(n for n, line in enumerate(lines) if line.strip() == "ed25519_private: |")
    key = []
    for line in lines[start + 1:]:
        if not line.startswith("    "):
            break
        key.append(line[4:])
    (public,) = [line.split(":", 1)[1].strip() for line in lines
                 if line.strip().startswith("ed25519_public:")]
    return "\n".join(key) + "\n", public


def live_instances(ec2, **tag_filters: str) -> list[dict]:
    """The instances not yet terminated, optionally only those with the given tag values."""
    filters = [{"Name": "instance-state-name", "Values": LIVE}]
    filters += [{"Name": f"tag:{k}", "Values": [v]} for k, v in tag_filters.items()]
    found = ec2.describe_instances(Filters=filters)["Reservations"]
    return [i for r in found for i in r["Instances"]]


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
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _forward(self):
                body = read_body(self)
                action = re.search(rb"Action=([A-Za-z]+)", body)
                action_name = action.group(1).decode() if action else ""
                proxy.requests.append(action_name)
                reply = forward(self, proxy.target, body)
                if action_name in proxy.hold_actions:
                    proxy.held.set()
                    time.sleep(proxy.hold_seconds)
                    if proxy.drop:
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                answer(self, *reply)

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
