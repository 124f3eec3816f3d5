"""`bootstrap-windows-dev`: building the Windows development image."""

from __future__ import annotations

from hgautomation.commands import not_available


def main(ctx, args) -> int:
    raise not_available("bootstrap-windows-dev", "building the Windows development image")
