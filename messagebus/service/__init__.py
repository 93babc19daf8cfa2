"""The service layer: repositories, unit of work, message bus and event stream.

``_async`` is the source; ``_sync`` is generated from it by unasync (``nox -s unasync``).
"""
