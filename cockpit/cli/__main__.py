"""``python -m cockpit.cli``: the ``cockpit`` program."""

import sys

from cockpit.cli import main

sys.exit(main())
