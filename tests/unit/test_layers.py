"""The package's layering, read from the source: who may import whom, who sees argparse."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "hgautomation"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _runtime_nodes(tree: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:`` (never imported at run time)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def imports_of(name: str) -> set[str]:
    """hgautomation modules *name* imports at run time (also inside functions)."""
    tree = ast.parse(MODULES[name].read_text())
    found: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("hgautomation"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.startswith("hgautomation"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: imports_of(name) for name in MODULES}


def test_the_graph_is_read():
    # A broken reader would make every test below pass vacuously.
    assert "hgautomation.aws.session" in GRAPH["hgautomation.aws.account"]
    assert "hgautomation.linux" in GRAPH["hgautomation.linux.ec2"]
    assert len(MODULES) > 40


FORBIDDEN_FOR_AWS = ("linux", "windows", "commands", "publish", "ssh", "hgrepo", "hosts",
                     "cli")


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("hgautomation.aws")))
def test_aws_looks_only_down(name):
    bad = sorted(m for m in GRAPH[name]
                 if any(m == f"hgautomation.{f}" or m.startswith(f"hgautomation.{f}.")
                        for f in FORBIDDEN_FOR_AWS))
    assert not bad, f"{name} imports {bad}"


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    assert _cycles() == []


def test_cycle_finder_finds_a_cycle(monkeypatch):
    monkeypatch.setitem(GRAPH, "hgautomation.errors", {"hgautomation.console"})
    monkeypatch.setitem(GRAPH, "hgautomation.console", {"hgautomation.errors"})
    assert ["hgautomation.console", "hgautomation.errors"] in _cycles()


def _sees_argparse(tree: ast.AST) -> list[str]:
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            names = [a.arg for a in node.args.args + node.args.kwonlyargs]
            if "args" in names:
                problems.append(f"parameter 'args' of {getattr(node, 'name', 'lambda')}")
        if isinstance(node, ast.Attribute) and node.attr == "Namespace":
            problems.append(f"argparse.Namespace at line {node.lineno}")
    return problems


CLI_LAYER = ("hgautomation.cli", "hgautomation.arguments")


@pytest.mark.parametrize("name", sorted(
    n for n in MODULES
    if n not in CLI_LAYER and not n.startswith("hgautomation.commands")))
def test_only_cli_and_commands_see_argparse(name):
    assert _sees_argparse(ast.parse(MODULES[name].read_text())) == []


def test_argparse_detector_detects():
    tree = ast.parse("def f(ctx, args):\n    return argparse.Namespace()\n")
    assert len(_sees_argparse(tree)) == 2
