"""``python -m infrastructure.cli``: the ``artifacts`` command without installing it."""

import sys

from infrastructure.cli import main

sys.exit(main())
