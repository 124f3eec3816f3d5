"""Remote text on the terminal: escaped (console.printable) and, for a whole reply, bounded.

Without the escaping, the hostile lines below reach the terminal as they are: ESC
sequences that clear the screen or retitle the window, a CR that overwrites the line
with a forged "remote: all tests passed".
"""

from __future__ import annotations

import io
import re

import pytest

from hgautomation import console

from .helpers import CapturedConsole

HOSTILE = ("\x1b[2J\x1b[H"  # clear the screen, cursor home
           "\x1b]0;pwned\x07"  # set the window title
           "ok\rremote: all tests passed\n"  # overwrite the line, then forge a new one
           "\x9b31m\x7f\x00\u202eevil\u2028")  # C1 CSI, DEL, NUL, bidi override, LS


@pytest.mark.parametrize("text,shown", [
    ("plain text, Grüße ✓", "plain text, Grüße ✓"),
    ("a\tb", "a\tb"),  # tabs stay (test output aligns with them)
    ("C:\\Users\\hg", "C:\\Users\\hg"),  # backslashes stay: Windows paths read as they are
    ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
    ("50%\r100%", "50%\\r100%"),
    ("one\ntwo", "one\\ntwo"),
    ("\x00\x07\x08\x0b\x0c\x1f\x7f", "\\x00\\x07\\x08\\x0b\\x0c\\x1f\\x7f"),
    ("\x80\x85\x9b\x9f\xa0", "\\x80\\x85\\x9b\\x9f\xa0"),  # C1 escaped, NBSP kept
    ("\u202eabc\u202c\u2066\u2069\u200e\u200f", "\\u202eabc\\u202c\\u2066\\u2069\\u200e\\u200f"),
    ("a\u2028b\u2029c", "a\\u2028b\\u2029c"),
])
def test_printable(text, shown):
    assert console.printable(text) == shown


def test_printable_leaves_nothing_a_terminal_acts_on():
    every = "".join(chr(c) for c in range(0x3000))
    shown = console.printable(every)
    assert not re.search("[\x00-\x08\x0a-\x1f\x7f-\x9f]", shown)
    assert "\t" in shown


def test_printable_is_character_by_character():
    # remote_line escapes what remote_partial showed and the rest separately.
    for cut in range(len(HOSTILE) + 1):
        assert (console.printable(HOSTILE[:cut]) + console.printable(HOSTILE[cut:])
                == console.printable(HOSTILE))


def test_remote_line_and_partial_are_escaped():
    con = CapturedConsole(console.NORMAL)
    con.remote_line("[a] ", HOSTILE)
    con.remote_partial("[a] ", "\x1b[1m..")
    con.remote_line("[a] ", "\x1b[1m..\x1b[0mdone", shown=6)
    assert con.err_text == ("[a] " + console.printable(HOSTILE) + "\n"
                            "[a] \\x1b[1m..\\x1b[0mdone\n")
    assert "\x1b" not in con.err_text and "\r" not in con.err_text


def test_a_partial_line_cut_off_by_another_is_escaped_too():
    con = CapturedConsole(console.NORMAL)
    con.remote_partial("[a] ", "\x1b[")
    con.info("between")
    con.remote_line("[a] ", "\x1b[2Jx", shown=2)
    assert con.err_text.splitlines() == ["[a] \\x1b[", "between", "[a] 2Jx"]


def test_the_log_gets_remote_lines_escaped(tmp_path):
    con = console.Console(console.QUIET, err=io.StringIO(), out=io.StringIO())
    con.open_log(tmp_path / "run.log", "header")
    con.remote_line("box: ", HOSTILE)
    con.remote_reply("remote: ", [HOSTILE])
    con.close_log()
    text = (tmp_path / "run.log").read_text()
    assert "\x1b" not in text and "\r" not in text and "\x9b" not in text
    assert text.count("\n") == 3  # header and one line each
    assert con.err.getvalue() == ""


# -- remote_reply: bounds --------------------------------------------------------------

def _logged(con_log) -> list[str]:
    return [re.sub(r"^\d\d:\d\d:\d\d ", "", ln) for ln in con_log.read_text().splitlines()]


def test_a_short_reply_is_shown_and_logged_whole(tmp_path):
    con = CapturedConsole(console.NORMAL)
    con.open_log(tmp_path / "run.log", "h")
    con.remote_reply("remote: ", ["queued", "line\none", ""])
    con.close_log()
    assert con.err_text.splitlines() == ["remote: queued", "remote: line\\none", "remote: "]
    assert _logged(tmp_path / "run.log")[1:] == con.err_text.splitlines()


def test_a_reply_of_10000_lines_shows_200(tmp_path):
    con = CapturedConsole(console.NORMAL)
    con.open_log(tmp_path / "run.log", "h")
    con.remote_reply("remote: ", [f"line {n}" for n in range(10_000)])
    con.close_log()
    shown = con.err_text.splitlines()
    assert len(shown) == console.REMOTE_SHOWN_LINES + 1
    assert shown[199] == "remote: line 199"
    assert shown[-1] == "remote: … 9,800 more lines not shown (see the run's log)"
    logged = _logged(tmp_path / "run.log")
    assert logged[10_000] == "remote: line 9999"  # the log has every line


def test_a_10_mb_line_is_cut_on_screen_and_in_the_log(tmp_path):
    con = CapturedConsole(console.NORMAL)
    con.open_log(tmp_path / "run.log", "h")
    con.remote_reply("remote: ", ["\x1b" + "x" * 10_000_000, "after"])
    con.close_log()
    shown = con.err_text.splitlines()
    assert shown[0] == ("remote: \\x1b" + "x" * 499 + " … 9,999,501 more characters not "
                        "shown (see the run's log)")
    assert len(shown) == 2 and shown[1] == "remote: after"
    logged = _logged(tmp_path / "run.log")
    cut = 10_000_001 - console.REMOTE_LOG_CHARS
    assert logged[1].endswith(f"x … {cut:,} more characters not logged")
    assert len(logged[1]) < console.REMOTE_LOG_CHARS + 100
    assert logged[2] == "remote: … 1 more lines not logged (a reply is logged up to " \
                        "1,048,576 characters)"
    assert (tmp_path / "run.log").stat().st_size < 2 * console.REMOTE_LOG_CHARS


def test_a_huge_reply_takes_bounded_time():
    import time

    con = CapturedConsole(console.NORMAL)
    start = time.monotonic()
    con.remote_reply("remote: ", ["x"] * 3_000_000)  # 6 MB of "x", as JSON
    assert time.monotonic() - start < 5
    assert len(con.err_text.splitlines()) == 201


def test_quiet_shows_nothing_of_a_reply(tmp_path):
    con = CapturedConsole(console.QUIET)
    con.open_log(tmp_path / "run.log", "h")
    con.remote_reply("remote: ", ["a"] * 300)
    con.close_log()
    assert con.err_text == ""
    assert len(_logged(tmp_path / "run.log")) == 301
