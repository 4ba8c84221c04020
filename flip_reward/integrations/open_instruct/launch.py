"""Run upstream open-instruct's ``grpo_fast.py``, unchanged, with the ``general-flip`` verifier registered.

    python -m flip_reward.integrations.open_instruct.launch <grpo_fast.py arguments>

The plugin is imported first, then ``open_instruct.grpo_fast`` runs as ``__main__`` (``runpy``), exactly as
``python open_instruct/grpo_fast.py ARGS`` would, so its ``build_all_verifiers`` call sees ``FlipVerifier``.
Verifiers are built once in this driver and reach the vLLM Ray actors pickled inside the reward config; unpickling
imports ``flip_reward`` there, so the package must be installed on every Ray node (nothing else is needed in the
actors: they never call ``build_all_verifiers``). ``OPEN_INSTRUCT_DIR`` names a checkout to use when upstream is
not installed; it is added to ``PYTHONPATH``, which grpo_fast forwards to every Ray worker with the rest of the
environment (``FLIP_*`` and ``HOSTED_VLLM_API_BASE`` included).
"""

from __future__ import annotations

import importlib.util
import os
import runpy
import sys

from flip_reward.core.settings import FlipSettings, FlipSettingsError
from flip_reward.exit_codes import EXIT_JUDGE_DOWN
from flip_reward.integrations.open_instruct.watchdog import JudgeWatchdog
from flip_reward.judge.urls import redact_url

ENTRY_MODULE = "open_instruct.grpo_fast"


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    arguments = list(sys.argv[1:] if argv is None else argv)
    from flip_reward.integrations import open_instruct as plugin

    plugin.add_checkout_to_path()
    try:
        plugin.register()
        spec = importlib.util.find_spec(ENTRY_MODULE)
    except ImportError as error:
        raise SystemExit(f"flip-reward launch: {error}") from None
    if spec is None or spec.origin is None:
        raise SystemExit(f"flip-reward launch: {ENTRY_MODULE} not found; {plugin.SETUP_HINT}")
    try:
        settings = FlipSettings.from_env()
    except FlipSettingsError as error:
        raise SystemExit(f"flip-reward launch: {error}") from None
    print(
        "flip-reward: verifier 'general-flip' registered with open-instruct at "
        f"{os.path.dirname(os.path.dirname(spec.origin))}; FLIP settings: {settings}",
        file=sys.stderr,
        flush=True,
    )
    watchdog = start_watchdog(settings)
    # As `python open_instruct/grpo_fast.py` would: the script's directory first on sys.path (Ray passes it on to
    # the workers, as it does for upstream's own launches), the script's path as argv[0].
    sys.path.insert(0, os.path.dirname(spec.origin))
    sys.argv = [spec.origin, *arguments]
    try:
        runpy.run_module(ENTRY_MODULE, run_name="__main__", alter_sys=True)
    except KeyboardInterrupt:
        if watchdog is not None and watchdog.tripped:
            raise SystemExit(EXIT_JUDGE_DOWN) from None
        raise
    finally:
        if watchdog is not None:
            watchdog.stop()


def start_watchdog(settings: object) -> JudgeWatchdog | None:
    """The judge watchdog for the run's judge URL (HOSTED_VLLM_API_BASE), unless FLIP_MAX_OUTAGE_S is 0 or there
    is no URL to probe."""
    url = settings.hosted_vllm_api_base
    if not url or not settings.max_outage_s:
        return None
    print(
        f"flip-reward: watching the judge at {redact_url(url)}: the run stops if it stays unreachable for "
        f"{settings.max_outage_s} s (FLIP_MAX_OUTAGE_S)",
        file=sys.stderr,
        flush=True,
    )
    return JudgeWatchdog(url, settings.max_outage_s).start()


if __name__ == "__main__":
    main()
