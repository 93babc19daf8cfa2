"""``python -m messagebus.adapters.faststream``: the same as ``messagebus-consume``."""

import sys

from .cli import main

sys.exit(main())
