"""The boto3 session: credentials from the standard chain, adaptive retries, error mapping.

Every AWS call of the tool goes through an :class:`AWSSession`; it counts the
calls it makes (``-v`` prints the count) and :func:`translate_errors` turns
botocore failures into one-line errors with their own exit codes.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from hgautomation import errors

# Operations that only read: everything else counts as mutating.
_READ_PREFIXES = ("Describe", "List", "Get")

# Error codes that mean "your credentials are wrong", not "the call is wrong".
_AUTH_CODES = {
    "AuthFailure", "UnrecognizedClientException", "InvalidClientTokenId",
    "SignatureDoesNotMatch", "ExpiredToken", "ExpiredTokenException",
    "InvalidAccessKeyId", "InvalidToken", "MissingAuthenticationToken",
    "IncompleteSignature",
}

DEFAULT_MAX_ATTEMPTS = 5
# An endpoint that accepts and never answers costs at most attempts x (connect + read).
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 30


@dataclass
class CallCounter:
    """Counts API calls (not retries) made through a session, by operation name."""

    calls: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, operation: str) -> None:
        with self._lock:
            self.calls[operation] = self.calls.get(operation, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    @property
    def mutating(self) -> int:
        return sum(n for op, n in self.calls.items() if not op.startswith(_READ_PREFIXES))

    def summary(self) -> str:
        ops = ", ".join(f"{op}={n}" for op, n in sorted(self.calls.items()))
        return (f"{self.total} AWS calls, {self.mutating} mutating AWS calls"
                + (f" ({ops})" if ops else ""))


class AWSSession:
    """A boto3 session for one region with cached clients and a call counter."""

    def __init__(self, region: str, *, profile: str | None = None,
                 boto_session: Any = None):
        import boto3
        from botocore.config import Config

        self.region = region
        self.boto = boto_session or boto3.session.Session(profile_name=profile,
                                                          region_name=region)
        self.counter = CallCounter()
        # Registered before any client exists, so every client inherits it.
        self.boto.events.register("before-call.*.*", self._count)
        self.boto.events.register("needs-retry.*.*", self._announce_retry)
        self.boto.events.register("before-parse.*.*", _refuse_html)
        self.max_attempts = _env_int("AWS_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS)
        timeout = _env_int("HGAUTOMATION_AWS_TIMEOUT", 0)  # seconds, for slow links
        self.config = Config(
            region_name=region,
            retries={"mode": "adaptive", "total_max_attempts": self.max_attempts},
            connect_timeout=timeout or CONNECT_TIMEOUT,
            read_timeout=timeout or READ_TIMEOUT,
        )
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _count(self, model=None, **kwargs) -> None:
        if model is not None:
            self.counter.record(model.name)
            from hgautomation import console

            console.get().trace(f"aws {model.service_model.service_name}.{model.name}")

    def _announce_retry(self, attempts: int = 0, response=None, caught_exception=None,
                        operation=None, **kwargs) -> None:
        """Say that a failed attempt is retried: a stuck endpoint is never silent.

        Only reports; botocore's retry handler decides (this returns None).
        """
        status = (response[1].get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                  if response and len(response) > 1 and isinstance(response[1], dict) else 0)
        if caught_exception is None and status < 500 and status != 429:
            return
        if attempts >= self.max_attempts:
            return
        why = (type(caught_exception).__name__ if caught_exception is not None
               else f"HTTP {status}")
        name = getattr(operation, "name", "AWS call")
        from hgautomation import console

        console.get().info(f"    AWS {name}: {why}; retrying ({attempts + 1}/"
                           f"{self.max_attempts})")

    def client(self, service: str):
        """A client for *service*; one per session and service (clients are thread-safe)."""
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self.boto.client(service, config=self.config)
            return self._clients[service]

    def caller_identity(self) -> dict:
        with translate_errors("sts:GetCallerIdentity"):
            return self.client("sts").get_caller_identity()


def _refuse_html(response_dict=None, **kwargs) -> None:
    """An HTML page (a captive portal, a web server at AWS_ENDPOINT_URL) is no AWS
    answer: say so, instead of letting botocore's parser trip over it."""
    from botocore.parsers import ResponseParserError

    headers = (response_dict or {}).get("headers") or {}
    content_type = str(headers.get("content-type", headers.get("Content-Type", "")))
    # An empty body is no page (moto labels S3's empty PutObject answer text/html).
    if content_type.lower().startswith("text/html") and (response_dict or {}).get("body") != b"":
        raise ResponseParserError("an HTML page instead of an AWS response")


def _env_int(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, "")))
    except ValueError:
        return default


def known_regions() -> set[str]:
    """Every region botocore knows for EC2, across partitions."""
    import botocore.session

    s = botocore.session.get_session()
    regions: set[str] = set()
    for partition in s.get_available_partitions():
        regions.update(s.get_available_regions("ec2", partition_name=partition))
    return regions


def check_endpoint_urls(environ: dict[str, str] | None = None) -> None:
    """``AWS_ENDPOINT_URL`` (and per-service ones) must be http(s) URLs with a host."""
    from urllib.parse import urlsplit

    environ = os.environ if environ is None else environ
    for name, value in sorted(environ.items()):
        if not name.startswith("AWS_ENDPOINT_URL"):
            continue
        try:
            parts = urlsplit(value)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            ok = False
        if not ok:
            raise errors.AWSEndpointError(f"{name}={value!r} is not an http(s) URL",
                                          hint="e.g. https://ec2.us-west-2.amazonaws.com")


def open_session(region: str, profile: str | None = None) -> AWSSession:
    """The session for a command in *region*, credentials from the standard chain
    (`profile`: a named profile, as the AWS CLI's --profile)."""
    check_endpoint_urls()
    with translate_errors("credentials"):  # reading the profile may already fail
        regions = known_regions()
    if region not in regions:
        raise errors.AWSEndpointError(f"unknown AWS region {region!r}",
                                      hint="check --aws-region / AWS_DEFAULT_REGION")
    from botocore.exceptions import BotoCoreError

    try:
        session = AWSSession(region, profile=profile)
    except BotoCoreError as exc:  # e.g. a missing AWS_PROFILE
        raise errors.AWSCredentialsError(str(exc)) from exc
    with translate_errors("credentials"):
        if session.boto.get_credentials() is None:
            from botocore.exceptions import NoCredentialsError

            raise NoCredentialsError()
    return session


def client_error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return response.get("Error", {}).get("Code", "")


@contextlib.contextmanager
def translate_errors(action: str = "") -> Iterator[None]:
    """Map botocore exceptions to errors.AWS* (one line, own exit code)."""
    from botocore import exceptions as bx
    from botocore.parsers import ResponseParserError

    where = f" ({action})" if action else ""
    try:
        yield
    except (bx.NoCredentialsError, bx.PartialCredentialsError,
            bx.NoAuthTokenError, bx.ProfileNotFound) as exc:
        raise errors.AWSCredentialsError(
            f"no usable AWS credentials{where}: {exc}",
            hint="set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY") from exc
    except (bx.EndpointConnectionError, bx.ConnectTimeoutError,
            bx.ConnectionClosedError, bx.ReadTimeoutError) as exc:
        raise errors.AWSEndpointError(f"cannot reach AWS{where}: {exc}") from exc
    except ResponseParserError as exc:
        raise errors.AWSEndpointError(
            f"the endpoint's answer is not an AWS response{where}",
            hint="is AWS_ENDPOINT_URL (or a proxy) pointing at AWS?") from exc
    except bx.ClientError as exc:
        code = client_error_code(exc)
        message = exc.response.get("Error", {}).get("Message", "") or str(exc)
        if code in _AUTH_CODES:
            raise errors.AWSCredentialsError(
                f"AWS rejected the credentials{where}: {code}: {message}") from exc
        raise errors.AWSError(f"{code or 'error'}{where}: {message}", code=code) from exc
    except bx.BotoCoreError as exc:
        raise errors.AWSError(f"{type(exc).__name__}{where}: {exc}") from exc
