"""``python -m messagebus``: the ``messagebus`` command, see :mod:`messagebus.cli`."""

import sys

from messagebus.cli import main

if __name__ == "__main__":
    sys.exit(main())
