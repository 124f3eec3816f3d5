"""hgautomation.console: what each verbosity shows, where, and in which form."""

from __future__ import annotations

import io
import re

import pytest

from hgautomation import console

from .helpers import CapturedConsole


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def _say_everything(con: console.Console) -> None:
    con.info("info")
    con.detail("detail")
    con.warn("careful")
    con.result("answer")
    con.remote_line("box: ", "remote")
    con.remote_line("", "bare")


@pytest.mark.parametrize("verbosity,err", [
    (console.QUIET, ["warning: careful"]),
    (console.NORMAL, ["info", "warning: careful", "box: remote", "bare"]),
    (console.VERBOSE, ["info", "detail", "warning: careful", "box: remote", "bare"]),
])
def test_verbosity_levels(verbosity, err):
    con = CapturedConsole(verbosity)
    _say_everything(con)
    assert con.err_text.splitlines() == err
    assert con.out_text == "answer\n"  # results always, and only, on stdout


def test_default_streams_are_the_process_streams(capsys):
    con = console.Console()
    con.info("to stderr")
    con.result("to stdout")
    captured = capsys.readouterr()
    assert (captured.err, captured.out) == ("to stderr\n", "to stdout\n")


def test_step_reports_success():
    con = CapturedConsole(console.NORMAL)
    with con.step("build"):
        con.info("working")
    lines = con.err_text.splitlines()
    assert lines[:2] == ["==> build", "working"]
    assert re.fullmatch(r"    build: done in \d+\.\ds", lines[2])


def test_step_reports_failure_and_reraises():
    con = CapturedConsole(console.NORMAL)
    with pytest.raises(KeyboardInterrupt), con.step("upload"):
        raise KeyboardInterrupt
    lines = con.err_text.splitlines()
    assert lines[0] == "==> upload"
    assert re.fullmatch(r"    upload: failed after \d+\.\ds", lines[1])
    assert len(lines) == 2


def test_quiet_steps_say_nothing():
    con = CapturedConsole(console.QUIET)
    with con.step("x"):
        pass
    assert con.err_text == ""


def test_table_alignment_title_and_trailing_spaces():
    con = CapturedConsole()
    con.table(["name", "size"], [("a.whl", 1234), ("longer-name.msi", 5)], title="Files")
    assert con.out_text.splitlines() == [
        "Files",
        "name             size",
        "---------------  ----",
        "a.whl            1234",
        "longer-name.msi  5",
    ]
    assert con.err_text == ""


def test_a_table_can_leave_out_its_empty_columns():
    con = CapturedConsole()
    con.table(["id", "expires", "state"], [("ami-1", "", "available"), ("ami-2", "", "")],
              drop_empty=True)
    assert con.out_text.splitlines() == ["id     state", "-----  ---------",
                                         "ami-1  available", "ami-2"]
    con = CapturedConsole()
    con.table(["id", "expires"], [], drop_empty=True)  # no rows: the headers stay
    assert con.out_text.startswith("id  expires\n")


def test_clip_cuts_free_text_unless_verbose():
    con = CapturedConsole(console.NORMAL)
    assert con.clip("short", 10) == "short"
    assert con.clip("a reason far too long", 10) == "a reaso..."
    assert CapturedConsole(console.VERBOSE).clip("a reason far too long", 10) \
        == "a reason far too long"


def test_empty_table():
    con = CapturedConsole()
    con.table(("a", "bb"), [])
    assert con.out_text == "a  bb\n-  --\n(nothing)\n"


def test_progress_without_terminal_reports_a_summary_line_in_verbose_mode():
    con = CapturedConsole(console.VERBOSE)
    with con.progress("big.whl", total=3_000_000) as bar:
        bar.update(1_000_000)
        bar.advance(2_000_000)
        assert bar.completed == 3_000_000
    (line,) = con.err_text.splitlines()
    assert re.fullmatch(r"    big\.whl: 3\.0 MB in \d+\.\ds \(\d+\.\d MB/s\)", line)


def test_progress_is_silent_when_nothing_moved_or_not_bytes():
    con = CapturedConsole(console.VERBOSE)
    with con.progress("nothing", total=10):
        pass
    with con.progress("waiting", unit="seconds") as bar:
        bar.advance(5)
    assert con.err_text == ""
    normal = CapturedConsole(console.NORMAL)
    with normal.progress("x.whl", total=10) as bar:
        bar.update(10)
    assert normal.err_text == ""


def test_waiting_without_terminal_says_so_every_30_seconds():
    con = CapturedConsole(console.NORMAL)
    for elapsed in (0, 10, 29.9, 30, 45, 61, 95):
        con.waiting("i-1 running", elapsed)
    con.waiting_done()
    con.waiting("image available", 31)
    assert con.err_text.splitlines() == [
        "    still waiting: i-1 running (30s)",
        "    still waiting: i-1 running (1m01s)",
        "    still waiting: i-1 running (1m35s)",
        "    still waiting: image available (31s)",
    ]


def test_waiting_on_a_terminal_draws_and_clears_a_spinner():
    con = console.Console(console.NORMAL, err=TTY(), out=io.StringIO())
    con.waiting("i-1 running", 5)
    con.waiting("i-1 running", 3725)
    con.waiting_done()
    con.waiting_done()  # nothing shown any more: nothing to clear
    assert con.err.getvalue() == ("\r    / i-1 running (5s)\x1b[K"
                                  "\r    - i-1 running (1h02m)\x1b[K"
                                  "\r\x1b[K")


def test_quiet_waits_are_silent():
    con = console.Console(console.QUIET, err=TTY(), out=io.StringIO())
    con.waiting("x", 100)
    con.waiting_done()
    assert con.err.getvalue() == ""


def test_configure_replaces_the_shared_console(monkeypatch):
    monkeypatch.setattr(console, "_current", console.get())
    configured = console.configure(console.VERBOSE)
    assert console.get() is configured and configured.verbosity == console.VERBOSE


def test_partial_remote_lines_continue_in_place():
    con = CapturedConsole(console.NORMAL)
    con.remote_partial("[a] ", "..")
    con.remote_partial("[a] ", ".")
    con.remote_line("[a] ", "... done", shown=3)
    assert con.err_text == "[a] ... done\n"


def test_partial_line_interrupted_keeps_every_prefix():
    con = CapturedConsole(console.NORMAL)
    con.remote_partial("[a] ", "..")
    con.remote_partial("[b] ", "x")  # another shard's output: a's line is ended first
    con.info("a message")
    con.remote_line("[a] ", "..ok", shown=2)
    con.remote_line("[b] ", "xy", shown=1)
    assert con.err_text.splitlines() == ["[a] ..", "[b] x", "a message", "[a] ok", "[b] y"]


def test_quiet_shows_no_partial_lines():
    con = CapturedConsole(console.QUIET)
    con.remote_partial("", "..")
    con.remote_line("", "..x", shown=2)
    assert con.err_text == ""


@pytest.mark.parametrize("verbosity", [console.QUIET, console.NORMAL, console.VERBOSE])
def test_the_log_gets_everything_whatever_the_verbosity(tmp_path, verbosity):
    con = console.Console(verbosity, err=io.StringIO(), out=io.StringIO())
    log = tmp_path / "run.log"
    con.open_log(log, "header line")
    _say_everything(con)
    con.trace("aws ec2.DescribeInstances")
    con.remote_partial("box: ", "...")
    con.remote_line("box: ", "...done", shown=3)
    con.table(["a", "b"], [["1", "2"]])
    con.close_log()
    con.trace("after close: nowhere")  # no error, no line
    lines = [re.sub(r"^\d\d:\d\d:\d\d ", "", ln) for ln in log.read_text().splitlines()]
    assert lines == ["header line", "info", "detail", "warning: careful", "answer",
                     "box: remote", "bare", "aws ec2.DescribeInstances", "box: ...done",
                     "a  b", "-  -", "1  2"]
    assert oct(log.stat().st_mode & 0o777) == "0o600"
    assert "aws ec2" not in con.err.getvalue()  # traces are for the log only


def test_json_mode_moves_results_and_tables_to_stderr():
    con = console.Console(console.NORMAL, err=io.StringIO(), out=io.StringIO())
    con.machine = True
    con.result("answer")
    con.table(["a"], [["1"]])
    con.emit({"b": [1], "a": None})
    assert con.out.getvalue() == '{\n  "a": null,\n  "b": [\n    1\n  ]\n}\n'
    assert "answer" in con.err.getvalue() and "1" in con.err.getvalue()
    plain = console.Console(console.NORMAL, err=io.StringIO(), out=io.StringIO())
    plain.emit({"a": 1})  # without -T json: nothing
    assert plain.out.getvalue() == ""


def test_digest_is_short_unless_verbose():
    sha = "ab" * 32
    assert console.Console(console.NORMAL).digest(sha) == sha[:12]
    assert console.Console(console.VERBOSE).digest(sha) == sha


def test_plural():
    assert console.plural(1, "instance") == "1 instance"
    assert console.plural(0, "instance") == "0 instances"
    assert console.plural(2, "host") == "2 hosts"
