"""hgautomation.linux: run-tests.py's JSON report, the test command line, Python paths."""

from __future__ import annotations

import json

import pytest

from hgautomation import errors, linux

RESULTS = {
    "test-b.t": {"result": "failure", "time": "1.5", "diff": "-x\n+y\n"},
    "test-a.t": {"result": "success", "time": "0.3"},
    "test-c.t#case": {"result": "skip", "time": "0.0"},
    "test-d.t": {"result": "success", "time": "2.0"},
}


def _write(tmp_path, text, name="report.json"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- Report.load ----------------------------------------------------------------------

def test_load_run_tests_format(tmp_path):
    # run-tests.py writes "testreport =" then the JSON (indent=4).
    path = _write(tmp_path, "testreport =" + json.dumps(RESULTS, indent=4))
    report = linux.Report.load(path)
    assert report.results == RESULTS
    assert report.passed == ["test-a.t", "test-d.t"]
    assert report.failed == ["test-b.t"]
    assert report.skipped == ["test-c.t#case"]


@pytest.mark.parametrize("prefix", ["", "  \n", "testreport = ", "\ntestreport=\n"])
def test_load_accepts_plain_json_and_whitespace(tmp_path, prefix):
    report = linux.Report.load(_write(tmp_path, prefix + json.dumps(RESULTS)))
    assert report.results == RESULTS


def test_equals_signs_inside_the_json_are_kept(tmp_path):
    data = {"test-x.t": {"result": "failure", "diff": "a = b\n"}}
    report = linux.Report.load(_write(tmp_path, "testreport =" + json.dumps(data)))
    assert report.results == data


def test_empty_report_has_no_results(tmp_path):
    report = linux.Report.load(_write(tmp_path, "testreport ={}"))
    assert (report.passed, report.failed, report.skipped) == ([], [], [])


@pytest.mark.parametrize("text", [
    "", "testreport =", "testreport ={\"test-a.t\": {\"result\": ", "not json",
    "testreport = {'single': 'quotes'}", "\xff\xfe garbage",
])
def test_unparsable_report_is_an_artifact_error(tmp_path, text):
    path = _write(tmp_path, text)
    with pytest.raises(errors.ArtifactError, match="cannot parse test report") as raised:
        linux.Report.load(path)
    assert raised.value.exit_code == 13
    assert str(path) in raised.value.message


@pytest.mark.parametrize("text", ["[]", "testreport =[1, 2]", "\"text\"", "42", "null"])
def test_report_that_is_not_an_object_is_an_artifact_error(tmp_path, text):
    with pytest.raises(errors.ArtifactError, match="unexpected test report format"):
        linux.Report.load(_write(tmp_path, text))


def test_truncated_prefix_is_an_artifact_error(tmp_path):
    with pytest.raises(errors.ArtifactError):
        linux.Report.load(_write(tmp_path, "testreport"))


def test_entries_that_are_not_objects_are_an_artifact_error(tmp_path):
    path = _write(tmp_path, 'testreport ={"test-a.t": "success"}')
    with pytest.raises(errors.ArtifactError):
        linux.Report.load(path).failed  # noqa: B018 - the property does the parsing


def test_merge_later_runs_win(tmp_path):
    first = linux.Report({"test-a.t": {"result": "failure"}, "test-b.t": {"result": "skip"}})
    second = linux.Report({"test-a.t": {"result": "success"}, "test-c.t": {"result": "failure"}})
    first.merge(second)
    assert first.passed == ["test-a.t"]
    assert first.failed == ["test-c.t"]
    assert first.skipped == ["test-b.t"]
    assert second.results == {"test-a.t": {"result": "success"},
                              "test-c.t": {"result": "failure"}}


def test_unknown_outcomes_are_in_no_list():
    report = linux.Report({"test-a.t": {"result": "ignored"}, "test-b.t": {}})
    assert (report.passed, report.failed, report.skipped) == ([], [], [])
    assert report.names("ignored") == ["test-a.t"]


def test_write_then_load_round_trips(tmp_path):
    path = tmp_path / "merged.json"
    linux.Report(dict(RESULTS)).write(path)
    assert path.read_text().endswith("}\n")
    assert linux.Report.load(path).results == RESULTS


def test_fresh_reports_do_not_share_results():
    a, b = linux.Report(), linux.Report()
    a.results["x"] = {"result": "success"}
    assert b.results == {}


# -- test_command ----------------------------------------------------------------------------

def _inner_argv(argv: list[str]) -> list[str]:
    """The run-tests.py argv inside the argv test_command() builds."""
    assert argv[:2] == ["sh", "-c"] and argv[3:5] == ["sh", "/hgwork/src/tests"]
    assert argv[2] == ('cd "$1" && rm -f report.json && shift && if [ -d /hgdev/wheelhouse ]; '
                       'then export PIP_FIND_LINKS=/hgdev/wheelhouse; fi && exec "$@"')
    assert argv[5:7] == ["env", "TMPDIR=/hgwork/tmp"]
    return argv[7:]


def test_test_command_without_shards():
    argv = _inner_argv(linux.test_command("/usr/bin/python3", ["-j4"], None))
    assert argv == ["/usr/bin/python3", "run-tests.py", "--json", "-j4"]


def test_local_runs_the_work_trees_build():
    argv = _inner_argv(linux.test_command("python3", ["-j4"], (1, 2), local=True))
    assert argv == ["python3", "run-tests.py", "--json", "--local", "--shard-index", "1",
                    "--shard-total", "2", "-j4"]
    # Said already by the user: not twice.
    argv = _inner_argv(linux.test_command("python3", ["-l"], None, local=True))
    assert argv == ["python3", "run-tests.py", "--json", "-l"]


@pytest.mark.parametrize("flags,full,mode,extras,why", [
    ([], False, "default", (), ""),
    (["-j8", "test-a.t"], False, "default", (), ""),
    (["--pure"], False, "pure", (), ""),
    (["--rust", "--rhg", "--chg"], False, "rust", ("chg", "rhg"), ""),
    (["--no-rust"], False, "default", (), ""),
    (["--with-hg=/usr/bin/hg"], False, None, (), "--with-hg names the hg to test"),
    (["--with-hg", "/usr/bin/hg"], False, None, (), "--with-hg names the hg to test"),
    (["--hg-wheel=x.whl"], False, None, (), "--hg-wheel names the hg to test"),
    (["--pure"], True, None, (), "--full-install: run-tests.py installs the revision"),
    (["test-pure.t"], False, "default", (), ""),  # a test name, not a flag
])
def test_build_plan(flags, full, mode, extras, why):
    plan = linux.build_plan(flags, full_install=full)
    assert (plan.mode, plan.extras, plan.why) == (mode, extras, why)
    assert plan.local is (mode is not None)


def test_one_shard_of_one_is_no_sharding():
    argv = _inner_argv(linux.test_command("python3", [], (1, 1)))
    assert argv == ["python3", "run-tests.py", "--json"]


def test_test_command_with_a_shard():
    argv = _inner_argv(linux.test_command("python3", ["--retest"], (2, 4)))
    assert argv == ["python3", "run-tests.py", "--json", "--shard-index", "2",
                    "--shard-total", "4", "--retest"]


def test_flags_are_quoted_not_interpreted():
    flags = ["-k", "a b", "--opt=$(rm -rf /)", "it's", "test-x.t;reboot"]
    argv = _inner_argv(linux.test_command("python3", flags, None))
    assert argv[3:] == flags


def test_the_command_runs_under_the_watching_wrapper():
    # No stdin: the communicator's wrapper watches the channel and stops the group.
    from hgautomation.ssh.runner import wire_command

    wire = wire_command(linux.test_command("python3", [], None), watch=True)
    assert "(cat <&3 >/dev/null 2>&1; kill -TERM -$$) >/dev/null 2>&1 &" in wire
    assert wire.endswith(" </dev/null")


@pytest.mark.parametrize("version,path", [
    ("system3", "/usr/bin/python3"),
    ("3.12", "/hgdev/pyenv/shims/python3.12"),
    ("3.9", "/hgdev/pyenv/shims/python3.9"),
    ("pypy3.10", "/hgdev/pyenv/shims/pypy3.10"),
])
def test_python_path(version, path):
    assert linux.python_path(version) == path


def test_timing_line_separates_sync_build_and_tests():
    from hgautomation.commands.run_tests_linux import ShardResult, timing_line

    a = ShardResult("a", sync_seconds=1.5, build_seconds=0.4, test_seconds=10.0,
                    build=linux.BuildOutcome("reused", "k", 0.3))
    b = ShardResult("b", sync_seconds=2.0, build_seconds=60.0, test_seconds=8.0,
                    build=linux.BuildOutcome("built", "k", 59.0))
    assert timing_line([a, b], 75.0) == ("timing: connect/sync 2.0s, build 60.0s (built, reused), "
                                         "tests 10.0s, other 3.0s, total 75.0s")
    plain = ShardResult("c", sync_seconds=1.0, test_seconds=2.0)
    assert timing_line([plain], 3.5) == ("timing: connect/sync 1.0s, build - (run-tests.py "
                                         "installs), tests 2.0s, other 0.5s, total 3.5s")
