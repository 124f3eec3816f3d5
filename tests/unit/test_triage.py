"""hgautomation.triage: new, flaky and pre-existing failures told apart (runs faked)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hgautomation import triage
from hgautomation.commands import try_agent
from hgautomation.server import jobs, model


@dataclass
class Report:
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


class Runs:
    """A fake runner: which tests fail on each call, and what it was asked."""

    def __init__(self, *failing: set[str] | None):
        self.failing = list(failing)
        self.asked: list[list[str]] = []

    def __call__(self, tests):
        self.asked.append(list(tests))
        failing = self.failing.pop(0)
        if failing is None:
            return None  # the run broke: no report
        return Report([t for t in tests if t not in failing],
                      [t for t in tests if t in failing])


def test_test_arguments():
    assert [triage.is_test_arg(a) for a in
            ("test-a.t", "tests/test-b.py", "test-c.t#case", "-j8", "--with-hg=/x/hg",
             "8", "--test-list", "list.txt")] == [True, True, True, False, False, False,
                                                  False, False]
    assert triage.rerun_flags(["-j8", "test-a.t", "--with-hg=/hg", "test-b.t"],
                              ["test-b.t"]) == ["-j8", "--with-hg=/hg", "test-b.t"]
    assert triage.rerun_flags(["-j8"], ["test-x.t"]) == ["-j8", "test-x.t"]


def test_flaky_preexisting_and_new():
    again = Runs({"test-pre.t", "test-new.t"})  # test-flaky.t passes the second time
    base = Runs({"test-pre.t"})
    found = triage.triage(["test-flaky.t", "test-pre.t", "test-new.t"], again, base)
    assert found == triage.Triage(new=("test-new.t",), flaky=("test-flaky.t",),
                                  preexisting=("test-pre.t",))
    assert again.asked == [["test-flaky.t", "test-pre.t", "test-new.t"]]
    assert base.asked == [["test-pre.t", "test-new.t"]]  # only what still fails


def test_nothing_left_after_the_rerun_skips_the_base():
    base = Runs()
    found = triage.triage(["test-a.t"], Runs(set()), base)
    assert found == triage.Triage(flaky=("test-a.t",))
    assert base.asked == []


def test_no_base_means_every_remaining_failure_is_new():
    found = triage.triage(["test-a.t", "test-b.t"], Runs({"test-a.t"}), None)
    assert found == triage.Triage(new=("test-a.t",), flaky=("test-b.t",))


def test_broken_runs_tell_nothing():
    """A re-run without a report makes nothing flaky; a base run without one makes
    nothing pre-existing: everything stays new."""
    found = triage.triage(["test-a.t"], Runs(None), Runs(None))
    assert found == triage.Triage(new=("test-a.t",))


def test_too_many_failures_are_not_rerun():
    failed = [f"test-{i}.t" for i in range(triage.MAX_RETRIED + 1)]
    again = Runs()
    found = triage.triage(failed, again, Runs())
    assert found.new == tuple(failed) and again.asked == []
    assert "not re-run" in found.note
    assert triage.triage([], again, None) == triage.Triage()


def test_history_of_each_test():
    found = triage.Triage(new=("test-n.t",), flaky=("test-f.t",), preexisting=("test-p.t",))
    results = triage.history(["test-ok.t"], found)
    assert results == {"test-ok.t": "passed", "test-n.t": "failed", "test-f.t": "flaky",
                       "test-p.t": "preexisting"}
    assert set(results.values()) == set(model.HISTORY_RESULTS)


def test_the_agent_summary_line():
    result = jobs.JobResult(model.PASSED, passed=5, skipped=1, flaky=("test-f.t",),
                            preexisting=("test-p.t", "test-q.t"))
    assert try_agent.summary(result) == ("5 passed, 0 failed, 1 skipped, 1 flaky, "
                                         "2 pre-existing")
    assert try_agent.summary(jobs.JobResult(model.FAILED, passed=1, failed=("t.t",))) == \
        "1 passed, 1 failed, 0 skipped"
    assert try_agent.summary(jobs.JobResult(model.ERROR, error="boom")) == "boom"
