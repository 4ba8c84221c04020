"""Test-only: on PYTHONPATH, makes the top-level modules named in FLIP_TEST_BLOCKED_MODULES (comma-separated)
unimportable with a real ModuleNotFoundError, as in an environment where the extra that provides them is not
installed. Python imports it at start-up (``site``); nothing in flip_reward knows of it."""

import os
import sys
from importlib.abc import MetaPathFinder

BLOCKED = {name for name in os.environ.get("FLIP_TEST_BLOCKED_MODULES", "").split(",") if name}


class BlockedModules(MetaPathFinder):
    """Refuses the blocked modules before any other finder can find them."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return None


sys.meta_path.insert(0, BlockedModules())
