"""hgautomation.errors: one exit code per declared error class, one-line messages."""

from __future__ import annotations

import pytest

from hgautomation import errors, venv_bootstrap


def _all_classes() -> list[type[errors.HgAutomationError]]:
    found, stack = [], [errors.HgAutomationError]
    while stack:
        cls = stack.pop()
        found.append(cls)
        stack.extend(cls.__subclasses__())
    return found


def _declaring_classes() -> list[type[errors.HgAutomationError]]:
    """Classes that declare their own exit code (others share their parent's)."""
    return [c for c in _all_classes()
            if c is not errors.HgAutomationError and "exit_code" in vars(c)]


def test_every_declared_exit_code_is_unique():
    classes = _declaring_classes()
    assert len(classes) >= 14
    codes = [c.exit_code for c in classes]
    duplicates = {code: [c.__name__ for c in classes if c.exit_code == code]
                  for code in codes if codes.count(code) > 1}
    assert duplicates == {}


def test_exit_code_table_lists_every_declaring_class():
    assert {c.exit_code: c.__name__ for c in _declaring_classes()} == errors.EXIT_CODES


def test_subclasses_without_their_own_code_share_the_parents():
    for cls in _all_classes():
        if cls is errors.HgAutomationError or "exit_code" in vars(cls):
            continue
        parent = next(b for b in cls.__mro__[1:] if "exit_code" in vars(b))
        assert cls.exit_code == parent.exit_code
        assert parent is not errors.HgAutomationError, cls


@pytest.mark.parametrize("cls,code", [
    (errors.UsageError, 2), (errors.ConfigurationError, 3), (errors.LocalRepoError, 4),
    (errors.AWSError, 5), (errors.AWSCredentialsError, 6), (errors.AWSEndpointError, 7),
    (errors.HostConnectionError, 8), (errors.HostKeyError, 9),
    (errors.RemoteCommandError, 10), (errors.PublishError, 11), (errors.WaitTimeout, 12),
    (errors.ArtifactError, 13), (errors.TryServerError, 14), (errors.HostContractError, 20),
    (errors.Interrupted, 130), (errors.TestsFailed, 1),
])
def test_documented_exit_codes(cls, code):
    assert cls.exit_code == code


def test_special_exit_codes_are_not_error_classes():
    codes = {c.exit_code for c in _all_classes()}
    assert errors.INTERNAL_ERROR_EXIT == 70 and errors.INTERNAL_ERROR_EXIT not in codes
    assert errors.SIGTERM_EXIT == 143 and errors.SIGTERM_EXIT not in codes


def test_bootstrap_exit_codes_agree_with_the_error_classes():
    assert errors.ConfigurationError.exit_code == venv_bootstrap.EXIT_CONFIGURATION
    assert venv_bootstrap.EXIT_INTERNAL == errors.INTERNAL_ERROR_EXIT
    assert errors.Interrupted.exit_code == venv_bootstrap.EXIT_INTERRUPTED
    assert venv_bootstrap.EXIT_VENV_FAILED not in errors.EXIT_CODES
    assert venv_bootstrap.EXIT_PIP_FAILED not in errors.EXIT_CODES


def test_one_line_collapses_whitespace_and_appends_the_hint():
    exc = errors.ConfigurationError("bad\n  value\tfor  x", hint="try\n--this")
    assert exc.one_line() == "configuration error: bad value for x (try --this)"
    assert str(exc) == "bad\n  value\tfor  x"
    assert exc.message == "bad\n  value\tfor  x" and exc.hint == "try\n--this"


def test_one_line_without_hint():
    assert errors.WaitTimeout("took too long").one_line() == "timeout: took too long"
    assert errors.HgAutomationError("x").one_line() == "error: x"


def test_labels_are_distinct_for_distinct_codes():
    by_label: dict[str, set[int]] = {}
    for cls in _declaring_classes():
        by_label.setdefault(cls.label, set()).add(cls.exit_code)
    assert all(len(codes) == 1 for codes in by_label.values()), by_label


def test_aws_error_carries_the_aws_code():
    assert errors.AWSError("x").code == ""
    exc = errors.AWSError("gone", code="InvalidInstanceID.NotFound", hint="h")
    assert exc.code == "InvalidInstanceID.NotFound" and exc.hint == "h"
    assert isinstance(errors.AWSCredentialsError("x"), errors.AWSError)
    assert isinstance(errors.AWSEndpointError("x"), errors.AWSError)


def test_remote_command_error_keeps_command_status_and_tail():
    exc = errors.RemoteCommandError("failed", command="make", status=2, output_tail="a\nb")
    assert (exc.command, exc.status, exc.output_tail) == ("make", 2, "a\nb")
    assert errors.RemoteCommandError("x").status is None


def test_host_key_errors_are_connection_errors():
    exc = errors.HostKeyError("changed", hostname="[h]:2222", offered="ssh-ed25519 SHA256:x")
    assert isinstance(exc, errors.HostConnectionError)
    assert exc.hostname == "[h]:2222" and exc.offered == "ssh-ed25519 SHA256:x"
    mismatch = errors.HostKeyMismatchError("m", hostname="h", offered="o", expected="e")
    assert isinstance(mismatch, errors.HostKeyError) and mismatch.expected == "e"
    assert mismatch.exit_code == errors.UnknownHostKeyError.exit_code == 9


def test_tests_failed_is_not_collected_by_pytest():
    assert errors.TestsFailed.__test__ is False
