"""A package of handlers, scanned by the bus tests."""
