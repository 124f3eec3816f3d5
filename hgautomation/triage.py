"""Telling a try's failures apart: a failed test that passes when run again is *flaky*; one
that still fails and fails on the try's base too is *pre-existing*; the rest are *new*,
and only those fail the job.

Pure logic over two callables that run tests and return a report (anything with
``passed`` and ``failed`` name lists, or None when the run gave none).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# More failures than this are all counted new: a broken build fails everything, and
# re-running hundreds of tests twice would cost more than it could tell.
MAX_RETRIED = 50

Runner = Callable[[Sequence[str]], Any]


@dataclass(frozen=True)
class Triage:
    new: tuple[str, ...] = ()
    flaky: tuple[str, ...] = ()
    preexisting: tuple[str, ...] = ()
    note: str = ""  # why nothing was re-run, when it was not


def is_test_arg(arg: str) -> bool:
    """Whether a run-tests.py argument names a test (``test-foo.t``, ``tests/test-x.py``,
    ``test-bar.t#case``) rather than a flag or a flag's value."""
    return not arg.startswith("-") and os.path.basename(arg).startswith("test-")


def rerun_flags(flags: Sequence[str], tests: Sequence[str]) -> list[str]:
    """``flags`` with their test names replaced by ``tests``."""
    return [f for f in flags if not is_test_arg(f)] + list(tests)


def triage(failed: Sequence[str], run_again: Runner, run_on_base: Runner | None) -> Triage:
    """Re-run ``failed`` once (``run_again``), then run what still fails on the base
    (``run_on_base``; None when the try has no base to compare with)."""
    failed = list(dict.fromkeys(failed))
    if not failed:
        return Triage()
    if len(failed) > MAX_RETRIED:
        return Triage(tuple(failed), note=f"{len(failed)} failures (over {MAX_RETRIED}): "
                                          "not re-run, all counted new")
    again = run_again(failed)
    passed_again = set(again.passed) if again is not None else set()
    flaky = [t for t in failed if t in passed_again]
    still = [t for t in failed if t not in passed_again]
    preexisting: list[str] = []
    if still and run_on_base is not None:
        on_base = run_on_base(still)
        failing_on_base = set(on_base.failed) if on_base is not None else set()
        preexisting = [t for t in still if t in failing_on_base]
    new = [t for t in still if t not in preexisting]
    return Triage(tuple(new), tuple(flaky), tuple(preexisting))


def history(passed: Sequence[str], found: Triage) -> dict[str, str]:
    """Each test's result for the test history (``model.HISTORY_RESULTS``)."""
    results = {name: "passed" for name in passed}
    results.update({name: "failed" for name in found.new})
    results.update({name: "flaky" for name in found.flaky})
    results.update({name: "preexisting" for name in found.preexisting})
    return results
