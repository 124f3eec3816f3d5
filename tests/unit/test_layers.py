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


def _absolute(name: str, node: ast.ImportFrom) -> str | None:
    """The module a ``from ... import`` names, relative forms resolved against *name*."""
    if node.level == 0:
        return node.module
    package = name.split(".") if MODULES[name].name == "__init__.py" else name.split(".")[:-1]
    base = package[:len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(name: str) -> set[str]:
    """hgautomation modules *name* imports at run time (also inside functions)."""
    tree = ast.parse(MODULES[name].read_text())
    found: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("hgautomation"))
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(name, node)
            if not module or not module.startswith("hgautomation"):
                continue
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                found.add(sub if sub in MODULES else module)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: imports_of(name) for name in MODULES}


def test_the_graph_is_read():
    # A broken reader would make every test below pass vacuously.
    assert "hgautomation.aws.session" in GRAPH["hgautomation.aws.account"]
    assert "hgautomation.linux" in GRAPH["hgautomation.linux.ec2"]
    assert len(MODULES) > 40


# The layer table of docs/design.rst, top to bottom. A module imports only from layers
# below its own. Within a layer, "open" allows any sideways import (cycles are caught
# below); "within" allows imports only inside the same entry (linux/ never imports
# windows/, aws/ never ssh/). Entries name a module or a package with everything under
# it; the longest matching entry places a module. A new module must be placed here
# (the test below fails for a module found in no entry).
LAYERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("start-up", "within", ("venv_bootstrap", "__main__")),
    # The command line and one module per flow. `declare` and `reference` (the
    # per-command declarations and the reference rendered from them) belong here.
    ("entry", "open", ("cli", "arguments", "catalog", "declare", "reference", "commands")),
    ("platforms", "within", ("linux", "windows")),
    ("services", "within", ("publish", "tryserver", "trydeploy")),
    ("hosts and the repository", "within", ("hosts", "hgrepo")),
    ("infrastructure", "within", ("aws", "ssh")),
    ("shared records", "within", ("artifacts", "keygen", "poll", "triage", "windows_builds")),
    ("bottom", "open", ("console", "errors", "state", "options", "platforms", "context",
                        "settings", "streams", "")),  # "": the package's __init__
    # The Try server's Lambda code: zipped and run by the stock runtime (standard
    # library and boto3 only), so it imports nothing of ours but itself.
    ("shipped to Lambda", "within", ("server",)),
    # Run on the hosts as files, so they can import nothing of ours.
    ("scripts shipped to hosts", "within", ("linux.scripts", "windows.scripts",
                                           "aws.scripts")),
)


def _entry_matches(entry: str, name: str) -> bool:
    full = "hgautomation" + (f".{entry}" if entry else "")
    return name == full or (entry != "" and name.startswith(full + "."))


def place(name: str) -> tuple[int, str, str] | None:
    """(rank from the top, the layer's name, the entry) of module *name*; None if unplaced."""
    best = None
    for rank, (layer, _, entries) in enumerate(LAYERS):
        for entry in entries:
            if _entry_matches(entry, name) and (best is None or len(entry) > len(best[2])):
                best = (rank, layer, entry)
    return best


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import in *graph* that the table does not allow, and every unplaced module."""
    found = []
    for name in sorted(graph):
        here = place(name)
        if here is None:
            found.append(f"{name} is in no layer of LAYERS")
            continue
        for imported in sorted(graph[name]):
            there = place(imported)
            if there is None:
                continue  # reported as unplaced on its own
            if there[0] < here[0]:
                found.append(f"{name} ({here[1]}) imports {imported} ({there[1]}), "
                             "a layer above it")
            elif there[0] == here[0] and LAYERS[here[0]][1] == "within" \
                    and there[2] != here[2]:
                found.append(f"{name} imports {imported} sideways ({here[1]})")
    return found


def test_every_module_respects_the_layer_table():
    assert violations(GRAPH) == []


def test_the_table_is_read_as_meant():
    # Spot checks of placement, so a broken `place` cannot pass the test above vacuously.
    assert place("hgautomation.linux.scripts.build")[1] == "scripts shipped to hosts"
    assert place("hgautomation.linux.ec2")[1] == "platforms"
    assert place("hgautomation")[1] == "bottom"
    assert place("hgautomation.commands.publish")[1] == "entry"
    assert place("hgautomation.hostsx") is None


@pytest.mark.parametrize("importer, imported, complaint", [
    # publish/ reading windows/ sideways: what test_aws_looks_only_down missed.
    ("hgautomation.publish.artifacts", "hgautomation.windows.declared", "a layer above"),
    ("hgautomation.linux.ec2", "hgautomation.windows.ec2", "sideways"),
    ("hgautomation.aws.keys", "hgautomation.ssh.hostkeys", "sideways"),
    ("hgautomation.hosts", "hgautomation.hgrepo", "sideways"),
    ("hgautomation.errors", "hgautomation.poll", "a layer above"),
    ("hgautomation.hgrepo", "hgautomation.tryserver", "a layer above"),
    ("hgautomation.ssh.runner", "hgautomation.commands", "a layer above"),
    ("hgautomation.linux.scripts.build", "hgautomation.linux", "a layer above"),
])
def test_the_layer_check_fires(monkeypatch, importer, imported, complaint):
    monkeypatch.setitem(GRAPH, importer, GRAPH[importer] | {imported})
    found = violations(GRAPH)
    assert len(found) == 1 and importer in found[0] and complaint in found[0], found


def test_relative_imports_are_read():
    node = ast.parse("from . import errors").body[0]
    assert _absolute("hgautomation.hosts", node) == "hgautomation"
    assert _absolute("hgautomation.ssh", node) == "hgautomation.ssh"
    node = ast.parse("from ..aws import session").body[0]
    assert _absolute("hgautomation.linux.ec2", node) == "hgautomation.aws"


def test_an_unplaced_module_fails():
    graph = dict(GRAPH, **{"hgautomation.newthing": {"hgautomation.errors"}})
    assert violations(graph) == ["hgautomation.newthing is in no layer of LAYERS"]


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
