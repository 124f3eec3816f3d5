"""No function in hgautomation/ takes more than MAX_PARAMETERS parameters: a longer list
is a record waiting to be named (as ``instances.LaunchSpec`` was for 19 of them)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "hgautomation"
MAX_PARAMETERS = 10

# Accepted offenders (none): a name here is a debt, to be fixed in its module and
# removed (the test fails on a listed name that no longer offends, so it only shrinks).
ALLOWED: frozenset[str] = frozenset()


def parameter_count(args: ast.arguments) -> int:
    """Positional and keyword-only parameters but self/cls; *args and **kwargs count 1."""
    names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    return (sum(1 for n in names if n not in ("self", "cls"))
            + (args.vararg is not None) + (args.kwarg is not None))


def offenders(source: str, module: str, limit: int = MAX_PARAMETERS) -> dict[str, int]:
    """``module.Qual.name`` -> parameter count of every function of *source* over *limit*."""
    found: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}.{child.name}"
                count = parameter_count(child.args)
                if count > limit:
                    found[name] = count
                visit(child, name)
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}.{child.name}")
            else:
                visit(child, prefix)

    visit(ast.parse(source), module)
    return found


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_offenders() -> dict[str, int]:
    found: dict[str, int] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        found.update(offenders(path.read_text(), _module_name(path)))
    return found


def test_no_function_takes_more_than_ten_parameters():
    found = package_offenders()
    new = {name: n for name, n in found.items() if name not in ALLOWED}
    listed = ", ".join(f"{name} ({n})" for name, n in sorted(new.items()))
    assert not new, f"more than {MAX_PARAMETERS} parameters (make a record): {listed}"
    fixed = sorted(ALLOWED - set(found))
    assert not fixed, f"no longer offending, remove from ALLOWED: {', '.join(fixed)}"


SYNTHETIC = '''
def fine(a, b, c, d, e, f, g, h, i, j): pass
def eleven(a, b, c, d, e, f, g, h, i, j, k): pass
def star(a, b, c, d, e, f, g, h, i, *args, **kwargs): pass
def keywords(a, /, b, *, c, d, e, f, g, h, i, j, k): pass
class C:
    def method(self, a, b, c, d, e, f, g, h, i, j): pass
    @classmethod
    def wide(cls, a, b, c, d, e, f, g, h, i, j, k): pass
    async def run(self, a, b, c, d, e, f, g, h, i, j, k, l): pass
def outer():
    def inner(a, b, c, d, e, f, g, h, i, j, k): pass
    return lambda a, b, c, d, e, f, g, h, i, j, k: None
'''


def test_the_check_fires_on_a_synthetic_module():
    """What breaking looks like: these are the names the package test would list."""
    assert offenders(SYNTHETIC, "m") == {
        "m.eleven": 11, "m.star": 11, "m.keywords": 11, "m.C.wide": 11, "m.C.run": 12,
        "m.outer.inner": 11}


def test_the_check_reads_the_package():
    # A broken reader would let the package test pass vacuously.
    assert offenders((PACKAGE / "aws" / "instances.py").read_text(), "x", limit=2)
    assert len(list(PACKAGE.rglob("*.py"))) > 40
