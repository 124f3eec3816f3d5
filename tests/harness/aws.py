"""moto's server on loopback as the AWS stand-in, with our own base images (amis.json)."""

from __future__ import annotations

import base64
import json
import logging
import os
import sys
import threading
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .net import LOOPBACK

AMIS_PATH = Path(__file__).with_name("amis.json")
REGION = "us-west-2"
ACCESS_KEY = SECRET_KEY = "testing"


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
    """A running moto server; `env` is what a subprocess needs to talk to it and nothing else."""

    endpoint_url: str
    region: str
    env: dict[str, str]
    _server: Any = field(repr=False)

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
        """Shut the server thread down (bounded)."""
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
    endpoint_url = f"http://{host}:{port}"

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
    return MotoServer(endpoint_url=endpoint_url, region=region, env=env, _server=server)


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
