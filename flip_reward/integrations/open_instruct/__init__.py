"""Open Instruct integration: importing this package registers the ``general-flip`` verifier with upstream.

When upstream ``open_instruct`` is importable (installed, or a checkout on ``PYTHONPATH``), importing this package
defines ``FlipVerifier``, a direct subclass of upstream's ``VerifierFunction``, which is all ``build_all_verifiers``
needs. Without upstream the package still imports (its ``settings`` and ``launch`` modules work without it) and
``register()`` says what is missing. ``python -m flip_reward.integrations.open_instruct.launch ARGS`` runs upstream's
``grpo_fast.py`` with the verifier registered (and honours ``OPEN_INSTRUCT_DIR``); ``flip-reward launch
open-instruct`` (flip_reward.launch) plans, checks and supervises such a run.
"""

from __future__ import annotations

import importlib.util
import os
import sys

UPSTREAM_COMMIT = "e6c3044aa6201c8bfa4573c1b03142af599e730d"
"""The open-instruct commit this integration is written and tested against (also in open-instruct/PIN)."""

SETUP_HINT = (
    "install upstream with scripts/setup_open_instruct.sh, or set OPEN_INSTRUCT_DIR to an open-instruct "
    f"checkout (commit {UPSTREAM_COMMIT[:12]})"
)


def add_checkout_to_path(checkout: str | None = None) -> str | None:
    """Put an open-instruct checkout (default ``$OPEN_INSTRUCT_DIR``) first on ``sys.path`` and on ``PYTHONPATH``
    (which open-instruct forwards to its Ray workers); returns the directory used, or None."""
    checkout = checkout or os.environ.get("OPEN_INSTRUCT_DIR")
    if not checkout:
        return None
    checkout = os.path.abspath(checkout)
    if checkout not in sys.path:
        sys.path.insert(0, checkout)
    paths = [path for path in os.environ.get("PYTHONPATH", "").split(os.pathsep) if path]
    if checkout not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([checkout, *paths])
    return checkout


def upstream_available() -> bool:
    """Whether ``open_instruct`` can be imported (without importing it)."""
    if "open_instruct" in sys.modules:
        return True
    try:
        return importlib.util.find_spec("open_instruct") is not None
    except (ImportError, ValueError):
        return False


def register() -> type:
    """Define the general-flip verifier (import its module) and return its class; ImportError with setup
    instructions when open_instruct cannot be imported."""
    if not upstream_available():
        raise ImportError(
            f"open_instruct is not importable, so the general-flip verifier is not registered: {SETUP_HINT}"
        )
    from flip_reward.integrations.open_instruct.verifier import FlipVerifier

    return FlipVerifier


if upstream_available():
    from flip_reward.integrations.open_instruct.verifier import (  # defines general-flip
        VERIFIER_NAME,
        FlipVerifier,
        FlipVerifierConfig,
    )

__all__ = [
    "UPSTREAM_COMMIT",
    "add_checkout_to_path",
    "register",
    "upstream_available",
]
if "FlipVerifier" in globals():
    __all__ += ["VERIFIER_NAME", "FlipVerifier", "FlipVerifierConfig"]
