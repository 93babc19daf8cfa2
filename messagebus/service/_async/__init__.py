"""The asynchronous service layer, the source of the generated ``_sync`` package."""
