"""``python -m loguru_vlogs``: the command line."""

import sys

from .cli import main

sys.exit(main())
