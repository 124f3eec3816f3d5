"""EC2 housekeeping: terminate our instances, purge our resources."""

from __future__ import annotations

from hgautomation.commands import not_available


def terminate(ctx, args) -> int:
    raise not_available("terminate-ec2-instances", "terminating instances")


def purge(ctx, args) -> int:
    raise not_available("purge-ec2-resources", "purging resources")
