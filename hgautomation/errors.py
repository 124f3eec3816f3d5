"""Every error the tool reports, each class with its own exit code.

``cli.main`` turns an :class:`HgAutomationError` into one line on stderr and
exits with the class's ``exit_code``; ``--debug`` adds the traceback.
The table in ``EXIT_CODES`` is what docs/faults.rst documents.
"""

from __future__ import annotations


class HgAutomationError(Exception):
    """Base class: a failure we can explain in one line."""

    exit_code = 1
    # A short tag printed before the message ("error: ...").
    label = "error"

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        text = " ".join(self.message.split())
        if self.hint:
            text += f" ({' '.join(self.hint.split())})"
        return f"{self.label}: {text}"


class TestsFailed(HgAutomationError):
    """The remote test run finished and reported failing tests."""

    __test__ = False  # not a pytest test class
    exit_code = 1
    label = "tests failed"


class UsageError(HgAutomationError):
    """Bad command-line input (argparse uses the same code)."""

    exit_code = 2
    label = "usage error"


class ConfigurationError(HgAutomationError):
    """Local configuration is missing or wrong (state dir, ssh config, options)."""

    exit_code = 3
    label = "configuration error"


class LocalRepoError(HgAutomationError):
    """The local Mercurial checkout or revision is unusable."""

    exit_code = 4
    label = "repository error"


class AWSError(HgAutomationError):
    """An AWS API call failed for a reason other than credentials.

    ``code`` is AWS's error code (e.g. ``InvalidInstanceID.NotFound``) when AWS
    answered with one: callers branch on it, never on the message text.
    """

    exit_code = 5
    label = "aws error"

    def __init__(self, message: str, *, code: str = "", hint: str | None = None):
        super().__init__(message, hint=hint)
        self.code = code


class AWSCredentialsError(AWSError):
    """No usable AWS credentials, or they were rejected."""

    exit_code = 6
    label = "aws credentials"


class AWSEndpointError(AWSError):
    """The AWS endpoint cannot be reached or the region is unknown."""

    exit_code = 7
    label = "aws endpoint"


class HostConnectionError(HgAutomationError):
    """An SSH host refused us, timed out or failed authentication."""

    exit_code = 8
    label = "connection error"


class HostKeyError(HostConnectionError):
    """A host key is unknown or does not match the pinned one."""

    exit_code = 9
    label = "host key error"

    def __init__(self, message: str, *, hostname: str = "", offered: str = "",
                 hint: str | None = None):
        super().__init__(message, hint=hint)
        self.hostname = hostname  # the name the key is (or would be) pinned under
        self.offered = offered  # "type SHA256:..." of the key the server offered


class UnknownHostKeyError(HostKeyError):
    """Nothing is pinned for the host: its key was never accepted."""


class HostKeyMismatchError(HostKeyError):
    """The host offered a key other than the pinned one."""

    def __init__(self, message: str, *, hostname: str = "", offered: str = "",
                 expected: str = "", hint: str | None = None):
        super().__init__(message, hostname=hostname, offered=offered, hint=hint)
        self.expected = expected


class RemoteCommandError(HgAutomationError):
    """A command on a remote host exited non-zero."""

    exit_code = 10
    label = "remote command failed"

    def __init__(self, message: str, *, command: str = "", status: int | None = None,
                 output_tail: str = "", hint: str | None = None):
        super().__init__(message, hint=hint)
        self.command = command
        self.status = status
        self.output_tail = output_tail


class HostContractError(HgAutomationError):
    """A host does not meet the remote-machine contract (run bootstrap-linux-dev)."""

    exit_code = 20
    label = "host not ready"


class PublishError(HgAutomationError):
    """Publishing to PyPI or the release host failed or was refused."""

    exit_code = 11
    label = "publish error"


class WaitTimeout(HgAutomationError):
    """A bounded wait (instance, image, host, command) ran out of time."""

    exit_code = 12
    label = "timeout"


class ArtifactError(HgAutomationError):
    """An expected build artifact is missing or malformed."""

    exit_code = 13
    label = "artifact error"


class TryServerError(HgAutomationError):
    """The Try server rejected the submission or could not be reached."""

    exit_code = 14
    label = "try server"


class TryOutcomeUnknown(TryServerError):
    """The bundle was sent but the answer was lost: the Try server may have it.

    Never retried (a retry would submit it twice); its own code so that a script
    that retries on 14 does not resend it.
    """

    exit_code = 15
    label = "try outcome unknown"


class TryJobError(HgAutomationError):
    """A try's job ended in error, was cancelled or timed out (``try --wait``)."""

    exit_code = 16
    label = "try job"


class Interrupted(HgAutomationError):
    """SIGINT or SIGTERM: cleanup ran, then we stop."""

    exit_code = 130
    label = "interrupted"


def _all_error_classes() -> list[type[HgAutomationError]]:
    seen: list[type[HgAutomationError]] = []
    stack = [HgAutomationError]
    while stack:
        cls = stack.pop(0)
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen


# exit code -> class name, for docs/faults.rst and the uniqueness test.
EXIT_CODES: dict[int, str] = {
    cls.exit_code: cls.__name__
    for cls in _all_error_classes()
    if cls is not HgAutomationError and "exit_code" in vars(cls)
}

# Exit codes that are not error classes.
INTERNAL_ERROR_EXIT = 70  # an unexpected exception: a bug (EX_SOFTWARE)
SIGTERM_EXIT = 143  # 128 + SIGTERM, after cleanup
