"""`try`: submitting to the Try server."""

from __future__ import annotations

from hgautomation.commands import not_available


def main(ctx, args) -> int:
    raise not_available("try", "submitting to the Try server")
