"""Reading the PowerShell the tool generates, independently of hgautomation.windows.powershell."""

from __future__ import annotations

import re


def parse_single_quoted(text: str) -> tuple[str, str]:
    """A PowerShell single-quoted literal at the start of `text`: (value, rest).

    Written from the language rules (any of ' ‘ ’ ‚ ‛ opens/closes; a doubled quote
    character is one literal quote), independently of powershell.quote.
    """
    quotes = "'\u2018\u2019\u201a\u201b"
    assert text[0] in quotes, text[:20]
    value, i = [], 1
    while i < len(text):
        c = text[i]
        if c in quotes:
            if i + 1 < len(text) and text[i + 1] in quotes:
                value.append(text[i + 1])
                i += 2
                continue
            return "".join(value), text[i + 1:]
        value.append(c)
        i += 1
    raise AssertionError("unterminated string literal")


def params_of(script: str) -> dict[str, str | list[str]]:
    """The generated `$Name = '<value>'` (or `$Name = @('a', 'b')`) lines of a script."""
    found: dict[str, str | list[str]] = {}
    rest = script.split("# -- parameters (generated) --\n", 1)[1]
    while not rest.startswith("\n"):
        name, rest = re.match(r"^\$([A-Za-z0-9]+) = (.*)$", rest, re.S).groups()
        if rest.startswith("@("):
            items, rest = [], rest[2:]
            while not rest.startswith(")"):
                item, rest = parse_single_quoted(rest)
                items.append(item)
                rest = rest[2:] if rest.startswith(", ") else rest
            found[name], rest = items, rest[1:]
        else:
            found[name], rest = parse_single_quoted(rest)
        assert rest.startswith("\n"), rest[:40]
        rest = rest[1:]
    return found
