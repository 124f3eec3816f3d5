"""PowerShell parsed for real: tree-sitter-powershell's grammar (a test dependency).

`syntax_errors` lists ERROR and MISSING nodes; `unchecked_native_calls` finds every
command that runs a native program (``& $exe ...``, ``hg.exe ...``, ``icacls ...``)
whose next statement in the same block is not ``Assert-LastExit``.
"""

from __future__ import annotations

import functools
import re

CHECK_FUNCTION = "assert-lastexit"
# Verb-Noun is a cmdlet or one of our functions; these bare words are cmdlet aliases.
_CMDLET = re.compile(r"^[A-Za-z]+-[A-Za-z][A-Za-z0-9]*$")
_ALIASES = {
    "cd", "chdir", "ls", "dir", "gci", "gi", "cp", "copy", "rm", "del", "rmdir", "mv", "move",
    "cat", "type", "echo", "write", "pwd", "mkdir", "md", "ni", "sleep", "start", "sort",
    "select", "where", "%", "?", "iex", "cls", "clear",
}


@functools.cache
def _parser():
    import tree_sitter_powershell
    from tree_sitter import Language, Parser

    return Parser(Language(tree_sitter_powershell.language()))


def parse(text: str):
    return _parser().parse(text.encode("utf-8"))


def _walk(node):
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.children))


def syntax_errors(text: str) -> list[tuple[int, str, str]]:
    """(line, node type, text) of every ERROR or MISSING node; [] for a clean parse."""
    tree = parse(text)
    return [(n.start_point[0] + 1, "MISSING " + n.type if n.is_missing else n.type,
             n.text.decode("utf-8", "replace")[:60])
            for n in _walk(tree.root_node) if n.type == "ERROR" or n.is_missing]


def _commands(statement):
    """The commands a statement runs at its own level (not inside nested blocks)."""
    stack = [statement]
    while stack:
        n = stack.pop()
        if n.type == "command":
            yield n
            continue
        if n.type in ("statement_block", "script_block", "script_block_expression"):
            continue
        stack.extend(n.children)


def is_native(command) -> bool:
    kinds = [c.type for c in command.children]
    if "command_invokation_operator" in kinds:
        return True
    name = next((c for c in command.children if c.type == "command_name"), None)
    if name is None:
        return False
    word = name.text.decode()
    return not (_CMDLET.match(word) or word.lower() in _ALIASES)


def _is_check(statement) -> bool:
    commands = list(_commands(statement)) if statement is not None else []
    if len(commands) != 1:
        return False
    name = next((c for c in commands[0].children if c.type == "command_name"), None)
    return name is not None and name.text.decode().lower() == CHECK_FUNCTION


def unchecked_native_calls(text: str) -> list[tuple[int, str]]:
    """(line, command) of native calls not followed by ``Assert-LastExit``."""
    tree = parse(text)
    bad = []
    for block in _walk(tree.root_node):
        if block.type != "statement_list":
            continue
        statements = [c for c in block.children if c.is_named and c.type != "comment"]
        for i, statement in enumerate(statements):
            for command in _commands(statement):
                if is_native(command):
                    following = statements[i + 1] if i + 1 < len(statements) else None
                    if not _is_check(following):
                        bad.append((command.start_point[0] + 1,
                                    " ".join(command.text.decode().split())))
    return sorted(bad)
