"""README.rst stays a first page, and what it, docs/ and docstring examples promise
matches the code.

Breaking looks like: README grows back into a manual (over 300 lines), a command
is added to or removed from the CLI without README's table of commands, a link
to docs/ names a file that is not there, an exit code is added without its row
in docs/faults.rst, or the ssh package's example calls something that is gone
or with arguments it no longer takes.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import textwrap
from pathlib import Path

from hgautomation import cli, errors, ssh, venv_bootstrap

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.rst"
DOCS = ROOT / "docs"
MAX_README_LINES = 300
# A reST link target: `text <target>`_ or `text <target>`__.
LINK = re.compile(r"`[^`<]*<([^>`]+)>`__?")


def _section(text: str, title: str) -> str:
    """The body of the top-level section ``title`` (up to the next one)."""
    lines = text.splitlines()
    start = lines.index(title) + 2
    for i in range(start, len(lines) - 1):
        if lines[i + 1] and set(lines[i + 1]) == {"="} and lines[i] and \
                not lines[i].startswith(("=", " ")):
            return "\n".join(lines[start:i])
    return "\n".join(lines[start:])


def _help_commands(overview: str) -> list[str]:
    """Command names of the top-level help's "commands:" block."""
    block = overview.split("\ncommands:\n", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in block.splitlines()
            if line.startswith("  ") and not line.startswith("   ")]


def _table_commands(section: str) -> list[str]:
    """Command names in the first column of the section's simple table."""
    return re.findall(r"^``([a-z][a-z0-9-]*)``\s", section, flags=re.MULTILINE)


def test_readme_is_a_first_page() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, \
        f"README.rst has {len(lines)} lines; move reference material under docs/"


def test_readme_keeps_the_test_command_ci_runs() -> None:
    """.ci/run runs "the test command README.rst gives"."""
    text = README.read_text(encoding="utf-8")
    assert "\n    ./tests/run\n" in text
    assert "./tests/run\n" in (ROOT / ".ci" / "run").read_text()


def test_help_commands_are_parsed_from_the_overview() -> None:
    """The parser below sees every command the top-level help lists."""
    names = _help_commands(cli.overview("x"))
    assert {"run-tests-linux", "publish-windows-artifacts", "try", "help"} <= set(names)
    assert len(names) == len(set(names)) > 10


def test_readme_commands_table_matches_the_top_level_help() -> None:
    section = _section(README.read_text(encoding="utf-8"), "Commands")
    in_readme = _table_commands(section)
    in_help = _help_commands(cli.overview("x"))
    assert len(in_readme) == len(set(in_readme)), "a command is listed twice"
    assert sorted(in_readme) == sorted(in_help), (
        f"README lacks {sorted(set(in_help) - set(in_readme))}; "
        f"README lists unknown {sorted(set(in_readme) - set(in_help))}")


def test_readme_links_to_docs_exist() -> None:
    targets = LINK.findall(README.read_text(encoding="utf-8"))
    docs = [t for t in targets if t.startswith("docs/")]
    assert docs, "README links to nothing under docs/"
    missing = [t for t in docs if not (ROOT / t).is_file()]
    assert missing == []


def test_links_between_docs_exist() -> None:
    missing = []
    for page in sorted(DOCS.glob("*.rst")):
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if "://" not in target and not (DOCS / target).is_file():
                missing.append(f"{page.name} -> {target}")
    assert missing == []


def test_faults_page_lists_every_exit_code() -> None:
    """docs/faults.rst's table of exit codes is exactly what the tool can exit with."""
    section = _section((DOCS / "faults.rst").read_text(encoding="utf-8"), "Exit codes")
    documented = {int(code) for code in re.findall(r"^(\d+)\s{2,}", section, re.MULTILINE)}
    expected = set(errors.EXIT_CODES) | {
        0, errors.INTERNAL_ERROR_EXIT, errors.SIGTERM_EXIT,
        venv_bootstrap.EXIT_VENV_FAILED, venv_bootstrap.EXIT_PIP_FAILED}
    assert documented == expected


def _ssh_example() -> ast.Module:
    """The code block of the ``hgautomation.ssh`` docstring, parsed."""
    block = ssh.__doc__.split("::\n\n", 1)[1].split("\n\n* ", 1)[0]
    return ast.parse(textwrap.dedent(block))


def test_ssh_docstring_example_matches_the_api() -> None:
    owners = {"ssh": ssh, "conn": ssh.Connection}
    fields = {f.name for f in dataclasses.fields(ssh.Target)}
    calls = 0
    for node in ast.walk(_ssh_example()):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id == "target":
            assert node.attr in fields, f"Target has no {node.attr!r}"
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in owners):
            continue
        owner = owners[node.func.value.id]
        function = getattr(owner, node.func.attr, None)
        assert function is not None, f"{node.func.value.id}.{node.func.attr} is gone"
        self_ = [None] if owner is ssh.Connection else []
        inspect.signature(function).bind(
            *self_, *(None for _ in node.args), **{k.arg: None for k in node.keywords})
        if node.func.attr in ("run", "output"):
            assert not isinstance(node.args[0], ast.Constant), "a command is an argv"
        calls += 1
    assert calls >= 10
