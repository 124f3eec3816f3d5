"""hgautomation.windows.powershell: quoting, rendering, -EncodedCommand, the native-call checker."""

from __future__ import annotations

import base64
import binascii

import pytest
from harness import ps_tree

from hgautomation.windows import powershell as ps

QUOTES = "'\u2018\u2019\u201a\u201b"


def unquote(literal: str) -> str:
    """Read a PowerShell single-quoted literal that spans all of `literal` (language rules)."""
    assert literal[0] in QUOTES and literal[-1] in QUOTES
    body, out, i = literal[1:-1], [], 0
    while i < len(body):
        if body[i] in QUOTES:
            assert i + 1 < len(body) and body[i + 1] in QUOTES, f"lone quote in {literal!r}"
            i += 1
        out.append(body[i])
        i += 1
    return "".join(out)


# -- quote --------------------------------------------------------------------------------

@pytest.mark.parametrize("value,literal", [
    ("plain", "'plain'"),
    ("", "''"),
    ("it's", "'it''s'"),
    ("\u2018a\u2019", "'\u2018\u2018a\u2019\u2019'"),
    ("\u201a\u201b", "'\u201a\u201a\u201b\u201b'"),
    ('"$(x)" `n', "'\"$(x)\" `n'"),  # nothing but quotes is special inside '...'
])
def test_quote(value, literal):
    assert ps.quote(value) == literal
    assert unquote(literal) == value


@pytest.mark.parametrize("value", ["'; Remove-Item C:\\ -Recurse; '", "a\r\nb", "日本語 ✓",
                                   "''''", "\u2019; exit 1; \u2018"])
def test_quote_round_trips(value):
    assert unquote(ps.quote(value)) == value


def test_quote_refuses_nul():
    with pytest.raises(ValueError, match="NUL"):
        ps.quote("a\0b")


# -- render / Script -----------------------------------------------------------------------

def test_render_is_prelude_then_parameters_then_the_script():
    text = ps.render("update_source.ps1", {"Hg": "C:\\hg.exe", "Node": "it's", "Count": 3})
    prelude = ps.read_script("prelude.ps1").rstrip("\n")
    body = ps.read_script("update_source.ps1").rstrip("\n")
    assert text == "\n".join([
        prelude, "", "# -- parameters (generated) --",
        "$Hg = 'C:\\hg.exe'", "$Node = 'it''s'", "$Count = '3'",
        "", "# -- update_source.ps1 --", body, ""])


def test_render_without_parameters():
    text = ps.render("prepare_image.ps1")
    params = text.split("# -- parameters (generated) --\n", 1)[1]
    assert params.startswith("\n# -- prepare_image.ps1 --\n")


@pytest.mark.parametrize("name", ["lower", "A-B", "A B", "", "1A", "A$", "Ä", "A\nB"])
def test_render_refuses_odd_parameter_names(name):
    with pytest.raises(ValueError, match="bad PowerShell parameter name"):
        ps.render("prepare_image.ps1", {name: "x"})


def test_render_unknown_script():
    with pytest.raises(FileNotFoundError):
        ps.render("no-such-script.ps1")


def test_script_load_and_command_line():
    script = ps.Script.load("update_source.ps1", {"Node": "0" * 40})
    assert script.name == "update_source.ps1"
    assert script.text == ps.render("update_source.ps1", {"Node": "0" * 40})
    assert ps.script_from_command_line(script.command_line) == script.text


# -- encoding ------------------------------------------------------------------------------

def test_encode_is_base64_of_utf16le_without_bom():
    assert ps.encode("A") == base64.b64encode(b"A\x00").decode()
    assert ps.encode("€") == base64.b64encode("€".encode("utf-16-le")).decode()
    text = "Write-Output 'Grüße ✓ 漢字 𝄞'\r\n"
    assert ps.decode(ps.encode(text)) == text


@pytest.mark.parametrize("bad", ["not base64!", "QQ", "QQA=\n"])
def test_decode_rejects_bad_base64(bad):
    with pytest.raises((binascii.Error, ValueError)):
        ps.decode(bad)


def test_command_line_words():
    line = ps.command_line("exit 3")
    assert line.split(" ") == ["powershell", "-NoProfile", "-NonInteractive",
                               "-ExecutionPolicy", "Bypass", "-EncodedCommand",
                               ps.encode("exit 3")]


def test_command_line_length_limit():
    overhead = len(ps.command_line(""))
    # Each character is 2 bytes of UTF-16, i.e. 8/3 base64 characters: find the edge.
    fits = "#" * ((ps.MAX_COMMAND_LINE - overhead) * 3 // 8 // 3 * 3)
    assert len(ps.command_line(fits)) <= ps.MAX_COMMAND_LINE
    with pytest.raises(ps.ScriptTooLong, match="limit 32000") as raised:
        ps.command_line(fits + "#" * 6)
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize("line,why", [
    ("powershell -NoProfile -EncodedCommand QQA=", "not a command line"),
    ("pwsh -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand QQA=",
     "not a command line"),
    ("powershell -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand QQA= x",
     "trailing words"),
    ("powershell -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand",
     "trailing words"),
])
def test_script_from_command_line_refuses_others(line, why):
    with pytest.raises(ValueError, match=why):
        ps.script_from_command_line(line)


# -- native calls, on the parsed tree (tests/harness/ps_tree.py) ------------------------------

@pytest.mark.parametrize("statement", [
    "& $Python -m pip install x", "python.exe -V", "C:\\hgdev\\hg.exe log", "icacls x /grant y",
    "$out = & hg.exe id", "$env:X = & git rev-parse HEAD", "msiexec /i x.msi", "git clone x",
])
def test_native_calls(statement):
    assert [line for line, _ in ps_tree.unchecked_native_calls(statement + "\n")] == [1]


@pytest.mark.parametrize("statement", [
    "Set-Location $Source", "Write-Host 'x'", "$x = 'C:\\src'", "$env:PATH = 'x'",
    "if ($x) { Write-Host 1 } else { Write-Host 2 }", "foreach ($a in $b) { Write-Host $a }",
    "exit $code", "throw 'x'", "cd C:\\", "ls", "Remove-Item -Recurse x",
    "[IO.File]::WriteAllText($p, $v)", "$x = @('a', 'b')", "$x", "Get-Item x | Out-Null",
    "@(1, 2) | % { $_ }",
])
def test_not_native_calls(statement):
    assert ps_tree.unchecked_native_calls(statement + "\n") == []


def test_unchecked_native_calls():
    text = ("& hg.exe pull\n"
            "Assert-LastExit 'pull'\n"
            "& hg.exe update\n"
            "Write-Step 'next'\n"
            "$v = & python.exe -V\n"
            "Assert-LastExit 'version'\n"
            "& last.exe\n")
    assert ps_tree.unchecked_native_calls(text) == [(3, "& hg.exe update"), (7, "& last.exe")]


def test_a_check_must_be_a_call_of_assert_last_exit():
    assert ps_tree.unchecked_native_calls("& a.exe\nAssert-LastExitCode 'x'\n") \
        == [(1, "& a.exe")]
    assert ps_tree.unchecked_native_calls("& a.exe\n# Assert-LastExit 'x'\n") \
        == [(1, "& a.exe")]
    assert ps_tree.unchecked_native_calls("& a.exe\n\n# why\nAssert-LastExit 'a'\n") == []


@pytest.mark.parametrize("name", sorted(p.name for p in ps.SCRIPTS_DIR.glob("*.ps1")))
def test_every_shipped_script_checks_its_native_calls(name):
    assert ps_tree.unchecked_native_calls(ps.read_script(name)) == []
