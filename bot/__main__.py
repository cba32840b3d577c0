"""``python -m bot``: the ``gridbot`` command, for environments where its script is not on PATH."""

import sys

from bot.cli import main

sys.exit(main())
