"""One module per flow; each exposes ``main(ctx, args) -> int`` style handlers."""
