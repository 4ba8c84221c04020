"""Helpers for the Open Instruct integration tests: finding upstream, and a stand-in of its verifier contract.

``STANDIN_GROUND_TRUTH_UTILS`` is a minimal stand-in for upstream ``open_instruct/ground_truth_utils.py``, written
for these tests from the contract documented in /work/shared/NOTES.md (VerifierConfig.from_args, VerificationResult,
VerifierFunction with async_call, build_all_verifiers over direct subclasses, apply_verifiable_reward multiplying by
``reward_mult``). It is not upstream code; tests use it where upstream cannot be imported.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MIRROR = Path("/work/.mirror/allenai+open-instruct/repo")

STANDIN_GROUND_TRUTH_UTILS = '''
"""Stand-in for open_instruct.ground_truth_utils (the documented verifier contract, written for tests)."""
import asyncio
import dataclasses
from abc import ABC, abstractmethod


@dataclasses.dataclass
class VerifierConfig:
    @classmethod
    def from_args(cls, *sources):
        names = {field.name for field in dataclasses.fields(cls)}
        values = {}
        for source in sources:
            if source is not None:
                values.update({name: getattr(source, name) for name in names if hasattr(source, name)})
        return cls(**values)


@dataclasses.dataclass
class VerificationResult:
    score: float
    cost: float = 0.0
    reasoning: str | None = None


class VerifierFunction(ABC):
    def __init__(self, name, weight=1.0, verifier_config=None):
        self.name, self.weight, self.verifier_config = name, weight, verifier_config

    @classmethod
    def get_config_class(cls):
        return VerifierConfig

    @abstractmethod
    def __call__(self, tokenized_prediction, prediction, label, query=None, rollout_state=None):
        ...

    async def async_call(self, tokenized_prediction, prediction, label, query=None, rollout_state=None):
        return await asyncio.get_running_loop().run_in_executor(
            None, self.__call__, tokenized_prediction, prediction, label, query, rollout_state)


class ExactMatchVerifier(VerifierFunction):
    def __init__(self, verifier_config=None):
        super().__init__("exact_match", verifier_config=verifier_config)

    def __call__(self, tokenized_prediction, prediction, label, query=None, rollout_state=None):
        return VerificationResult(score=float(prediction.strip() == str(label).strip()))


def build_all_verifiers(args, streaming_config=None):
    verifiers = {}
    for subclass in VerifierFunction.__subclasses__():
        instance = subclass(subclass.get_config_class().from_args(args, streaming_config))
        verifiers[instance.name.lower()] = instance
    return verifiers


async def apply_verifiable_reward(reward_fn_mapping, responses, decoded_responses, ground_truths, datasets,
                                  reward_mult=1.0, queries=None, rollout_states=None):
    queries = queries or [None] * len(responses)
    calls, owners = [], []
    for index, (tokens, text, truth, name, query) in enumerate(
            zip(responses, decoded_responses, ground_truths, datasets, queries)):
        truths = [truth] if isinstance(truth, str) else truth
        names = [name] if isinstance(name, str) else name
        for one_truth, one_name in zip(truths, names):
            verifier = reward_fn_mapping.get(one_name.lower())
            if verifier is not None:
                calls.append(verifier.async_call(tokenized_prediction=tokens, prediction=text, label=one_truth,
                                                 query=query, rollout_state=None))
                owners.append((index, verifier))
    results = await asyncio.gather(*calls)
    rewards = [0.0] * len(responses)
    per_verifier = [{} for _ in responses]
    for (index, verifier), result in zip(owners, results):
        value = reward_mult * result.score * verifier.weight
        rewards[index] += value
        per_verifier[index][verifier.name] = per_verifier[index].get(verifier.name, 0.0) + value
    return rewards, per_verifier
'''

STANDIN_GRPO_FAST = '''
"""Stand-in for open_instruct/grpo_fast.py: reports what the launcher handed it (then, with STANDIN_STALL_S, stalls
like a run whose every reward is 0.0)."""
import json
import os
import sys
import time
from types import SimpleNamespace

from open_instruct.ground_truth_utils import build_all_verifiers

if __name__ == "__main__":
    verifiers = build_all_verifiers(SimpleNamespace(seed=1), None)
    print(json.dumps({"argv": sys.argv, "verifiers": sorted(verifiers), "main": __name__,
                      "pythonpath": os.environ.get("PYTHONPATH", "")}), flush=True)
    time.sleep(float(os.environ.get("STANDIN_STALL_S", "0")))
'''


def write_standin_checkout(root: Path) -> Path:
    """A fake open-instruct checkout (stand-in modules only) under ``root``; returns its directory."""
    package = root / "open_instruct"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "ground_truth_utils.py").write_text(STANDIN_GROUND_TRUTH_UTILS)
    (package / "grpo_fast.py").write_text(STANDIN_GRPO_FAST)
    return root


def standin_modules() -> dict[str, types.ModuleType]:
    """Fresh in-memory ``open_instruct`` and ``open_instruct.ground_truth_utils`` stand-in modules."""
    package = types.ModuleType("open_instruct")
    package.__path__ = []
    package.__spec__ = importlib.machinery.ModuleSpec("open_instruct", None, is_package=True)
    utils = types.ModuleType("open_instruct.ground_truth_utils")
    utils.__spec__ = importlib.machinery.ModuleSpec("open_instruct.ground_truth_utils", None)
    exec(
        compile(  # noqa: S102  (builds the stand-in module from its source above)
            STANDIN_GROUND_TRUTH_UTILS, "<standin ground_truth_utils>", "exec", dont_inherit=True
        ),
        utils.__dict__,
    )
    package.ground_truth_utils = utils
    return {"open_instruct": package, "open_instruct.ground_truth_utils": utils}


NO_CHECKOUT = (
    "OPEN_INSTRUCT_DIR is not set: point it at an open-instruct checkout "
    "(OPEN_INSTRUCT_REPO=... scripts/setup_open_instruct.sh --clone-only makes one)"
)


def upstream_checkout() -> Path | None:
    """The upstream checkout to test against: ``$OPEN_INSTRUCT_DIR``, None when unset (the tests that need it are
    skipped with NO_CHECKOUT); a value that is no checkout is an error, never a skip."""
    value = os.environ.get("OPEN_INSTRUCT_DIR", "").strip()
    if not value:
        return None
    if not (Path(value) / "open_instruct" / "ground_truth_utils.py").is_file():
        raise FileNotFoundError(f"OPEN_INSTRUCT_DIR={value} holds no open_instruct/ground_truth_utils.py")
    return Path(value)


def import_upstream() -> tuple[types.ModuleType | None, str]:
    """Upstream ``open_instruct.ground_truth_utils`` (checkout put on sys.path), or None and the reason."""
    checkout = upstream_checkout()
    if checkout is None and importlib.util.find_spec("open_instruct") is None:
        return None, NO_CHECKOUT
    if checkout is not None and str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    try:
        return importlib.import_module("open_instruct.ground_truth_utils"), ""
    except ImportError as error:
        return None, (
            f"open_instruct.ground_truth_utils does not import ({error}); install its CPU dependencies: "
            "pip install ray wandb beaker-py tiktoken langdetect sympy antlr4-python3-runtime==4.11 "
            "immutabledict nltk rich python-dateutil absl-py"
        )
