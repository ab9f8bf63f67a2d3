"""``python -m elluminate.server``."""

import sys

from .cli import main

sys.exit(main())
