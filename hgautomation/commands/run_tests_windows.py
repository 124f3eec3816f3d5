"""`run-tests-windows`: running tests on Windows."""

from __future__ import annotations

from hgautomation.commands import not_available


def main(ctx, args) -> int:
    raise not_available("run-tests-windows", "running tests on Windows")
