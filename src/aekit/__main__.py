"""``python -m aekit`` is the ``aekit`` command."""

import sys

from .cli import main

sys.exit(main())
