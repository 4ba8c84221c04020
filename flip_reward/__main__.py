"""``python -m flip_reward``: the ``flip-reward`` command, as the launchers and demos run it in a child process (no
module outside ``cli/`` imports the command-line package)."""

import sys

from .cli import main

sys.exit(main())
