"""The boto3 session: credentials from the standard chain, adaptive retries, error mapping.

Every AWS call of the tool goes through an :class:`AWSSession`; it counts the
calls it makes (``-v`` prints the count) and :func:`translate_errors` turns
botocore failures into one-line errors with their own exit codes.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
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
MAX_ATTEMPTS_LIMIT = 100  # AWS_MAX_ATTEMPTS above this is a typo, not a plan
# An endpoint that accepts and never answers costs at most attempts x (connect + read).
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 30
TIMEOUT_LIMIT = 3600  # HGAUTOMATION_AWS_TIMEOUT: an hour per connect or read at most
# A profile's credential_process (run by botocore) gets this long, or
# HGAUTOMATION_AWS_TIMEOUT when set; then its process group is killed.
CREDENTIAL_PROCESS_TIMEOUT = 60
# After this long a credential_process still running is announced (then every 30 s).
CREDENTIAL_PROCESS_NOTICE = 2.0


@dataclass(frozen=True)
class Tuning:
    """The variables that tune AWS calls, each checked (exit 3 naming it) once."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    timeout: int = 0  # HGAUTOMATION_AWS_TIMEOUT; 0: the defaults above

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> Tuning:
        from hgautomation.settings import env_number

        return cls(max_attempts=env_number("AWS_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS, 1,
                                           MAX_ATTEMPTS_LIMIT, environ),
                   timeout=env_number("HGAUTOMATION_AWS_TIMEOUT", 0, 1, TIMEOUT_LIMIT,
                                      environ))

    @property
    def credential_process_timeout(self) -> int:
        return self.timeout or CREDENTIAL_PROCESS_TIMEOUT


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

        bound_credential_processes()  # before botocore builds its credential providers
        self.region = region
        self.boto = boto_session or boto3.session.Session(profile_name=profile,
                                                          region_name=region)
        self.counter = CallCounter()
        # Registered before any client exists, so every client inherits it.
        self.boto.events.register("before-call.*.*", self._count)
        self.boto.events.register("needs-retry.*.*", self._announce_retry)
        self.boto.events.register("before-parse.*.*", _refuse_html)
        tuning = Tuning.from_environment()
        self.max_attempts = tuning.max_attempts
        timeout = tuning.timeout  # seconds, for slow links
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
                        operation=None, request_dict=None, **kwargs) -> None:
        """Say that a failed attempt is retried: a stuck endpoint is never silent.

        Only reports; botocore's retry handler decides (this returns None).
        """
        status = (response[1].get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                  if response and len(response) > 1 and isinstance(response[1], dict) else 0)
        if caught_exception is None and status < 500 and status != 429:
            return
        # A client of its own (see `client`) may allow fewer attempts than the session.
        config = ((request_dict or {}).get("context") or {}).get("client_config")
        limit = (getattr(config, "retries", None) or {}).get("total_max_attempts",
                                                             self.max_attempts)
        if attempts >= limit:
            return
        why = (type(caught_exception).__name__ if caught_exception is not None
               else f"HTTP {status}")
        name = getattr(operation, "name", "AWS call")
        from hgautomation import console

        console.get().info(f"    AWS {name}: {why}; retrying ({attempts + 1}/{limit})")

    def client(self, service: str, *, attempts: int | None = None,
               read_timeout: int | None = None):
        """A client for *service*; one per session and service (clients are thread-safe).

        ``attempts`` and ``read_timeout`` (at least this long; ``HGAUTOMATION_AWS_TIMEOUT``
        may give more) make a client of its own with the session's other settings, e.g.
        one attempt for a call that must never be sent twice.
        """
        if attempts is not None or read_timeout is not None:
            from botocore.config import Config

            overrides: dict[str, Any] = {}
            if attempts is not None:
                overrides["retries"] = {"mode": "standard", "total_max_attempts": attempts}
            if read_timeout is not None:
                overrides["read_timeout"] = max(read_timeout, self.config.read_timeout)
            return self.boto.client(service, config=self.config.merge(Config(**overrides)))
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
    # An empty answer is no page, whatever its label (moto's server labels S3's empty
    # answers text/html).
    if content_type.lower().startswith("text/html") and (response_dict or {}).get("body"):
        raise ResponseParserError("an HTML page instead of an AWS response")


class CredentialProcess:
    """A profile's ``credential_process`` as botocore starts it (its ``popen``), bounded.

    It runs in a process group of its own; it has the bound of :class:`Tuning` to
    answer, is announced when it takes a while, and on timeout, Ctrl-C or SIGTERM its
    whole group is killed: it never outlives the tool. Its answer must be a JSON object
    (botocore's own parse would be a traceback); a failure is exit 6 naming the profile.
    """

    def __init__(self, profile: str, argv: list[str], **kwargs: Any):
        import subprocess

        self.profile = profile
        self.program = os.path.basename(argv[0]) if argv else "?"
        self.timeout = Tuning.from_environment().credential_process_timeout
        if os.name == "nt":
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        else:
            kwargs["start_new_session"] = True
        try:
            self._proc = subprocess.Popen(argv, **kwargs)
        except (OSError, ValueError) as exc:
            raise self._error(f"cannot be started ({getattr(exc, 'strerror', None) or exc})"
                              ) from exc
        # One still running when the tool exits (a refresh in a worker thread while the
        # main thread was interrupted) is stopped at exit.
        _RUNNING.add(self)

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode

    def _error(self, what: str) -> errors.AWSCredentialsError:
        return errors.AWSCredentialsError(
            f"the credential_process ({self.program}) of AWS profile {self.profile!r} {what}",
            hint="check that profile's credential_process in the AWS config file")

    def communicate(self, input: bytes | None = None, timeout: float | None = None
                    ) -> tuple[bytes, bytes]:
        import subprocess

        from hgautomation import console, poll

        answer: list[tuple[bytes, bytes]] = []
        start = time.monotonic()
        announced = False

        def finished() -> bool | None:
            nonlocal announced
            try:
                answer.append(self._proc.communicate(timeout=0.2))
                return True
            except subprocess.TimeoutExpired:
                pass
            if not announced and time.monotonic() - start >= CREDENTIAL_PROCESS_NOTICE:
                announced = True
                console.get().info(f"    waiting for the credential_process "
                                   f"({self.program}) of AWS profile {self.profile!r} "
                                   f"(at most {self.timeout}s)")
            return None

        try:
            poll.until(finished, timeout=self.timeout, interval=0,
                       what=f"credential_process of AWS profile {self.profile!r}",
                       timeout_error=lambda: self._error(
                           f"did not answer within {self.timeout}s; stopped it"))
        except BaseException:
            self._stop()
            raise
        finally:
            _RUNNING.discard(self)
        out, err = answer[0]
        if self._proc.returncode == 0:
            self._check_json(out)
        return out, err

    def _check_json(self, out: bytes) -> None:
        import json

        try:
            parsed = json.loads(out.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            parsed = None
        if not isinstance(parsed, dict):
            shown = out[:60].decode("utf-8", "backslashreplace").strip()
            raise self._error(f"printed something other than a JSON object ({shown!r})")

    def _stop(self) -> None:
        """Kill its whole process group (a child it started may hold its output open)."""
        import signal
        import subprocess

        try:
            if os.name == "nt":
                if self._proc.poll() is None:
                    self._proc.kill()
            else:
                os.killpg(self._proc.pid, signal.SIGKILL)
        except OSError:
            pass  # the group is gone already
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=5)
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream is not None:
                stream.close()


_RUNNING: set[CredentialProcess] = set()


def _stop_running() -> None:
    for process in list(_RUNNING):
        process._stop()


def bound_credential_processes() -> None:
    """Make botocore run every profile's ``credential_process`` as a
    :class:`CredentialProcess` (also a source profile's, and on refresh).

    botocore waits for that process without a bound; its ProcessProvider takes the
    function that starts it (``popen``), so every provider it builds gets ours.
    """
    from botocore import credentials

    base = credentials.ProcessProvider
    if getattr(base, "hgautomation_bounded", False):
        return

    class BoundedProcessProvider(base):  # type: ignore[misc, valid-type]
        hgautomation_bounded = True

        def __init__(self, profile_name, load_config, popen=None):
            super().__init__(profile_name, load_config,
                             popen or functools.partial(CredentialProcess, profile_name))

    credentials.ProcessProvider = BoundedProcessProvider
    import atexit

    atexit.register(_stop_running)


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
    (``profile``: a named profile, as the AWS CLI's --profile)."""
    check_endpoint_urls()
    Tuning.from_environment()  # a bad AWS_MAX_ATTEMPTS is exit 3 before anything
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
    except (bx.NoCredentialsError, bx.PartialCredentialsError, bx.CredentialRetrievalError,
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
