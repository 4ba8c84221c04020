"""``python -m flip_reward.cli``: the ``flip-reward`` command."""

import sys

from flip_reward.cli import main

sys.exit(main())
