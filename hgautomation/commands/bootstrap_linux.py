"""`bootstrap-linux-dev`: building Linux development images."""

from __future__ import annotations

from hgautomation.commands import not_available


def main(ctx, args) -> int:
    raise not_available("bootstrap-linux-dev", "building Linux development images")
