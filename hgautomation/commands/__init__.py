"""One module per flow; each exposes ``main(ctx, args) -> int`` style handlers."""

from __future__ import annotations

from hgautomation.errors import NotAvailable


def not_available(command: str, what: str) -> NotAvailable:
    """The error a subcommand raises while its flow is not implemented."""
    return NotAvailable(f"{command}: {what} is not implemented yet")
