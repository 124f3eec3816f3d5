"""`publish-windows-artifacts`: publishing."""

from __future__ import annotations

from hgautomation.commands import not_available


def main(ctx, args) -> int:
    raise not_available("publish-windows-artifacts", "publishing")
