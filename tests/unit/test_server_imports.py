"""hgautomation/server/* runs on the stock Lambda Python runtime: it may import only the
standard library, boto3/botocore and hgautomation.server itself (read from the source,
every import statement, also those inside functions)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SERVER = Path(__file__).resolve().parents[2] / "hgautomation" / "server"
ALLOWED_THIRD_PARTY = {"boto3", "botocore"}


def imported_modules(path: Path) -> set[str]:
    """The absolute names of every module *path* imports (relative forms resolved)."""
    package = "hgautomation.server"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module == "__future__":
                continue
            if module == "hgautomation":  # `from hgautomation import x`: hgautomation.x
                found.update(f"{module}.{a.name}" for a in node.names)
            else:
                found.add(module)
    return found


def forbidden(name: str) -> bool:
    top = name.split(".")[0]
    if top == "hgautomation":
        return not (name == "hgautomation.server" or name.startswith("hgautomation.server."))
    return top not in sys.stdlib_module_names and top not in ALLOWED_THIRD_PARTY


MODULES = sorted(SERVER.glob("*.py"))


def test_the_server_modules_are_found():
    names = {p.stem for p in MODULES}
    assert {"model", "store", "upload", "web", "pages"} <= names


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_server_imports_only_the_stdlib_boto3_and_itself(path):
    assert sorted(m for m in imported_modules(path) if forbidden(m)) == []


@pytest.mark.parametrize("source, bad", [
    ("import yaml", ["yaml"]),
    ("def f():\n    from hgautomation import errors", ["hgautomation.errors"]),
    ("from .. import console", ["hgautomation.console"]),
    ("from ..aws import session", ["hgautomation.aws"]),
    ("import hgautomation.state", ["hgautomation.state"]),
    ("from moto import mock_aws", ["moto"]),
    ("from . import model\nimport json, boto3\nfrom botocore.config import Config", []),
])
def test_the_check_fires(tmp_path, source, bad):
    """Breaking: a reader that misses imports inside functions or relative ones."""
    path = tmp_path / "mod.py"
    path.write_text(source + "\n")
    assert sorted(m for m in imported_modules(path) if forbidden(m)) == bad
