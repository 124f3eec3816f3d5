"""AWS's documented rules that moto does not enforce, applied in front of moto.

moto is a stand-in, not the truth: where AWS documents a refusal that moto does not
make, this forwarder makes it, with the reply AWS gives, so that the suite fails the
way a real account would. Every request of the suite (the CLI's and the tests' own)
passes through it; anything no rule refuses reaches moto unchanged. Each rule names
its source.
"""

from __future__ import annotations

import base64
import http.client
import http.server
import re
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Refusal:
    """The error reply AWS gives instead of doing the request."""

    code: str
    message: str
    status: int = 400

    def ec2_xml(self) -> bytes:
        """The EC2 query protocol's error document (what botocore parses into a ClientError)."""
        return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
                f"<Code>{escape(self.code)}</Code><Message>{escape(self.message)}</Message>"
                f"</Error></Errors><RequestID>hgautomation-aws-rules</RequestID></Response>"
                ).encode()


# -- the rules -------------------------------------------------------------------
# Each takes the request's parameters and an EC2 client bound to moto (for what the
# request refers to), and returns a Refusal or None.

Rule = Callable[[dict[str, str], Any], "Refusal | None"]


def windows_needs_rsa_key_pair(params: dict[str, str], ec2: Any) -> Refusal | None:
    """RunInstances of a Windows AMI with an ED25519 key pair.

    Source: Amazon EC2 User Guide, "Create a key pair for your Amazon EC2 instance"
    (create-key-pairs.html): "(Windows instances) For Key pair type, choose RSA.
    ED25519 keys are not supported for Windows instances."; EC2 API Reference,
    CreateKeyPair, KeyType: "ED25519 keys are not supported for Windows instances."
    The reply's wording is RunInstances' own, as reported by its users (terraform,
    splunk/attack_range#901, 2024; oven-sh/bun#20021, 2025): HTTP 400 "Unsupported".
    """
    key_name, image_id = params.get("KeyName"), params.get("ImageId")
    if not key_name or not image_id:
        return None
    images = ec2.describe_images(ImageIds=[image_id])["Images"]
    if not images or images[0].get("Platform") != "windows":
        return None
    pairs = ec2.describe_key_pairs(KeyNames=[key_name])["KeyPairs"]
    if pairs and pairs[0].get("KeyType") == "ed25519":
        return Refusal("Unsupported", "ED25519 key pairs are not supported with Windows "
                                      "AMIs. Choose a different key pair type and try again.")
    return None


# RSA lengths ImportKeyPair takes.
IMPORT_RSA_BITS = (1024, 2048, 4096)


def imported_key_is_rsa_or_ed25519(params: dict[str, str], ec2: Any) -> Refusal | None:
    """ImportKeyPair of anything but an RSA (1024, 2048 or 4096 bits) or ED25519 key.

    Source: EC2 API Reference, ImportKeyPair ("Imports the public key from an RSA or
    ED25519 key pair"); Amazon EC2 User Guide, create-key-pairs.html, "Create a key
    pair using a third-party tool and import the public key": supported types RSA and
    ED25519 (ECDSA is not), RSA lengths 1024, 2048 and 4096. moto refuses ECDSA itself
    but imports a 3072-bit RSA key without complaint. The reply is moto's own for a
    malformed key.
    """
    material = params.get("PublicKeyMaterial")
    if material is None:
        return None
    refusal = Refusal("InvalidKeyPair.Format", "Key is not in valid OpenSSH public key format")
    try:
        line = base64.b64decode(material).decode("ascii").split()
        blob = base64.b64decode(line[1])
    except (ValueError, IndexError, UnicodeDecodeError):
        return refusal
    fields = _ssh_strings(blob)
    if not fields:
        return refusal
    kind = fields[0]
    if kind == b"ssh-ed25519":
        return None
    if kind == b"ssh-rsa" and len(fields) >= 3:
        modulus = int.from_bytes(fields[2], "big")
        if modulus.bit_length() in IMPORT_RSA_BITS:
            return None
    return refusal


def _ssh_strings(blob: bytes) -> list[bytes]:
    """The length-prefixed strings of an SSH public key blob (RFC 4253 6.6); [] if malformed."""
    out, at = [], 0
    while at < len(blob):
        if at + 4 > len(blob):
            return []
        (length,) = struct.unpack(">I", blob[at:at + 4])
        at += 4
        if at + length > len(blob):
            return []
        out.append(blob[at:at + length])
        at += length
    return out


EC2_RULES: dict[str, tuple[Rule, ...]] = {
    "RunInstances": (windows_needs_rsa_key_pair,),
    "ImportKeyPair": (imported_key_is_rsa_or_ed25519,),
}


# -- the forwarder ---------------------------------------------------------------

def forward(handler: http.server.BaseHTTPRequestHandler, target: str,
            body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """Send the handler's request (with `body`) to `target`; (status, headers, data)."""
    parts = urlsplit(target)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    try:
        headers = {k: v for k, v in handler.headers.items()
                   if k.lower() not in ("host", "connection")}
        conn.request(handler.command, handler.path, body=body, headers=headers)
        reply = conn.getresponse()
        return reply.status, reply.getheaders(), reply.read()
    finally:
        conn.close()


def answer(handler: http.server.BaseHTTPRequestHandler, status: int,
           headers: list[tuple[str, str]], data: bytes) -> None:
    """Write a complete reply (hop-by-hop headers dropped, our own length)."""
    handler.send_response(status)
    for k, v in headers:
        if k.lower() not in ("transfer-encoding", "connection", "content-length"):
            handler.send_header(k, v)
    handler.send_header("Content-Length", str(len(data)))
    try:
        handler.end_headers()
        handler.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client went away (a stopped agent's long poll): nobody to answer


def read_body(handler: http.server.BaseHTTPRequestHandler) -> bytes:
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


class StrictAWS:
    """A forwarder to moto on loopback that refuses what AWS refuses (EC2_RULES).

    `url` is what clients use; `refused` lists (action, code) of every refusal made.
    """

    def __init__(self, moto_url: str, ec2_client: Callable[[str], Any]):
        self.moto_url = moto_url
        self.refused: list[tuple[str, str]] = []
        self._ec2_client = ec2_client  # region -> an EC2 client talking to moto directly
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        strict = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _handle(self):
                body = read_body(self)
                refusal = strict.check(self.headers.get("Content-Type", ""),
                                       self.headers.get("Authorization", ""), body)
                if refusal is not None:
                    answer(self, refusal.status, [("Content-Type", "text/xml")],
                           refusal.ec2_xml())
                    return
                answer(self, *forward(self, strict.moto_url, body))

            do_POST = do_GET = do_PUT = do_DELETE = do_HEAD = _handle

        self.server = http.server.ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{LOOPBACK}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def check(self, content_type: str, authorization: str, body: bytes) -> Refusal | None:
        """The refusal of a query-protocol (EC2) request, if a rule makes one."""
        if not content_type.startswith("application/x-www-form-urlencoded") or not body:
            return None
        params = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        action = params.get("Action", "")
        rules = EC2_RULES.get(action, ())
        if not rules:
            return None
        # SigV4's credential scope names the region: AKID/DATE/REGION/SERVICE/aws4_request.
        scope = re.search(r"Credential=[^/]+/\d+/([a-z0-9-]+)/ec2/", authorization)
        if scope is None:
            return None
        ec2 = self.ec2(scope.group(1))
        for rule in rules:
            try:
                refusal = rule(params, ec2)
            except Exception:  # noqa: BLE001 - a lookup moto refuses: moto answers the request
                refusal = None
            if refusal is not None:
                self.refused.append((action, refusal.code))
                return refusal
        return None

    def ec2(self, region: str) -> Any:
        with self._lock:
            if region not in self._clients:
                self._clients[region] = self._ec2_client(region)
            return self._clients[region]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
