"""One docstring markup: reST. Code in a docstring is ``double-backticked`` (or a role
such as :func:`name`); a Markdown-style `single` backtick is a slip."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "hgautomation"
SINGLE = re.compile(r"(?<![`:\w])`([^`\n]+)`(?![`_])")


def single_backticks(source: str) -> list[tuple[int, str]]:
    """(line, text) of every single-backtick span in the docstrings of ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                start = node.body[0].lineno
                for offset, line in enumerate(doc.splitlines()):
                    found += [(start + offset, m.group(0)) for m in SINGLE.finditer(line)]
    return found


def test_docstrings_use_rest_markup():
    slips = [f"{path.relative_to(PACKAGE.parent)}:{line}: {text}"
             for path in sorted(PACKAGE.rglob("*.py"))
             for line, text in single_backticks(path.read_text())]
    assert not slips, "single backticks in docstrings (use ``code``):\n" + "\n".join(slips)


def test_the_check_fires():
    source = '"""A module of `x`."""\n\ndef f():\n    """Uses ``y`` and :func:`z`."""\n'
    assert single_backticks(source) == [(1, "`x`")]
