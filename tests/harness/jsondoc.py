"""-T json documents checked against the keys docs/reference.rst documents (its
"Machine-readable output" list), read as a reader of the docs would, not from the product.

docs/reference.rst is generated from the command declarations, and a unit test keeps
the committed file equal to that rendering."""

from __future__ import annotations

import json
import re
from pathlib import Path

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "reference.rst"


def documented() -> dict[str, set[str]]:
    """``{"list-ec2-resources": {...}, "list-ec2-resources.resources[]": {...}, ...}``."""
    section = REFERENCE.read_text().split("\nMachine-readable output\n", 1)[1]
    block = section.split("::\n\n", 1)[1].split("\n\n", 1)[0]
    found = {}
    for line in block.splitlines():
        name, keys = re.fullmatch(r"    ([a-z0-9-]+(?:\.[a-z_]+(?:\[\])?)?): ([a-z0-9_ ]+)",
                                  line).groups()
        found[name] = set(keys.split())
    return found


def check(command: str, stdout: str) -> dict:
    """Parse `stdout` as exactly one JSON document and check every documented level of
    it has exactly the documented keys; returns the document."""
    document = json.loads(stdout)  # one document, nothing else on stdout
    keys = documented()
    assert command in keys, f"docs/reference.rst documents no keys for {command}"
    assert set(document) == keys[command], (command, sorted(document))
    for path, expected in keys.items():
        if not path.startswith(command + "."):
            continue
        field = path[len(command) + 1:]
        if field.endswith("[]"):
            for element in document[field[:-2]]:
                assert set(element) == expected, (path, sorted(element))
        elif document[field] is not None:
            assert set(document[field]) == expected, (path, sorted(document[field]))
    return document
