"""``python -m messagebus.relay``: the outbox relay's command line, under a short name.

The command lives in :mod:`messagebus.adapters.sqlalchemy.outbox.cli`; this module only
runs it, so that ``python -m messagebus.relay`` works without the adapter's long path.
"""

import sys

from messagebus.adapters.sqlalchemy.outbox.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
