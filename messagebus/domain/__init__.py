"""The pure domain layer: messages, models, metadata and transaction status (no I/O)."""
