"""Context guard: trims the middle of an over-long response so the judge request fits the judge's context window.

Token counts come from the judge's tokenizer when it is available locally (loaded once per process, never fetched),
otherwise from a conservative characters-per-token estimate. The start and the end of a response carry most of
the evidence about what was asked, so those are kept.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from flip_reward.judge.client import Judge

logger = logging.getLogger("flip_reward")

OMISSION_MARKER = "\n\n[... {count} tokens omitted ...]\n\n"
SAFETY_MARGIN_TOKENS = 32


_LOADING = threading.Lock()  # one load at a time: transformers' lazy imports break when two threads race them


@lru_cache(maxsize=8)
def load_local_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase | None:
    """The tokenizer at ``name_or_path`` from local files only, or None (logged once) when it cannot be loaded."""
    try:
        with _LOADING:
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(name_or_path, local_files_only=True)
    except Exception as error:  # any failure means "not available locally": fall back to the estimate
        logger.info(
            "judge tokenizer %r not available locally (%s); estimating tokens from characters",
            name_or_path,
            type(error).__name__,
        )
        return None


def tokenizer_is_local(name_or_path: str) -> bool:
    """Whether a tokenizer is on this machine: a directory, or a hub name in the local Hugging Face cache."""
    if Path(name_or_path).is_dir():
        return True
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(name_or_path, "tokenizer_config.json"), str)
    except Exception:  # not a valid repo id, or no huggingface_hub: not local
        return False


def estimate_tokens(text: str, chars_per_token: float = 3.0) -> int:
    """A deliberately high token count without a tokenizer: ``chars_per_token`` ASCII characters per token, but one
    token per digit (tokenizers such as Qwen's split numbers into digits) and per non-ASCII character (CJK)."""
    ascii_text = text.encode("ascii", "ignore")
    digits = len(ascii_text) - len(ascii_text.translate(None, b"0123456789"))
    other = len(ascii_text) - digits
    return int(other / chars_per_token) + digits + (len(text) - len(ascii_text)) + 1


@dataclass(frozen=True)
class ContextGuard:
    """Fits ``response`` into ``max_context_length - max_tokens`` minus the rest of the judge prompt."""

    max_context_length: int
    max_tokens: int
    tokenizer: str | None = None
    chars_per_token: float = 3.0

    @classmethod
    def for_judge(cls, judge: Judge, max_context_length: int, tokenizer: str | None = None) -> ContextGuard:
        """A guard for ``judge``: its answer budget, and the named tokenizer or else the judge model's own (a hub
        name or a directory), which is used only when it is available locally."""
        return cls(max_context_length, judge.config.max_tokens, tokenizer or judge.endpoint.provider_model)

    def count_tokens(self, text: str) -> int:
        tokenizer = load_local_tokenizer(self.tokenizer) if self.tokenizer else None
        if tokenizer is None:
            return estimate_tokens(text, self.chars_per_token)
        return len(tokenizer.encode(text, add_special_tokens=False))

    def budget(self, prompt_overhead: str) -> int:
        """Tokens left for the response once the prompt around it and the answer are accounted for."""
        return self.max_context_length - self.max_tokens - self.count_tokens(prompt_overhead) - SAFETY_MARGIN_TOKENS

    def may_overflow(self, characters: int) -> bool:
        """Whether a response of ``characters`` characters might need trimming (then tokenizing it is worth a worker
        thread: it would block the event loop); a UTF-8 character is at most 4 bytes."""
        return 4 * characters > self.max_context_length - self.max_tokens - SAFETY_MARGIN_TOKENS

    def prepare(self) -> None:
        """Load the tokenizer (if any, from local files only) on a background thread, so that the first long response
        of a process finds it ready instead of loading it on the event loop."""
        if self.tokenizer and tokenizer_is_local(self.tokenizer):
            threading.Thread(target=load_local_tokenizer, args=(self.tokenizer,), daemon=True).start()

    def surely_fits(self, prompt: str) -> bool:
        """True when the whole prompt's UTF-8 length fits: no token is shorter than a byte, so no tokenizing."""
        return len(prompt.encode("utf-8")) <= self.max_context_length - self.max_tokens - SAFETY_MARGIN_TOKENS

    def fit(self, response: str, prompt_overhead: str) -> str:
        """``response`` unchanged when it fits, else its head and tail around an omission marker."""
        return self.fit_within(response, self.budget(prompt_overhead))

    def fit_each(self, responses: Sequence[str], prompt_overhead: str) -> list[str]:
        """Each of several responses shown in one prompt (pairwise, listwise) fitted to an equal share of the budget."""
        share = max(self.budget(prompt_overhead), 0) // max(len(responses), 1)
        return [self.fit_within(response, share) for response in responses]

    def fit_within(self, response: str, budget: int) -> str:
        """``response`` unchanged when it has at most ``budget`` tokens, else trimmed in the middle to that size."""
        tokens = self.count_tokens(response)
        if tokens <= budget:
            return response
        return self._trim_middle(response, tokens, max(budget, 0))

    def _trim_middle(self, response: str, tokens: int, budget: int) -> str:
        marker_tokens = self.count_tokens(OMISSION_MARKER.format(count=tokens))
        keep = max(budget - marker_tokens, 0)
        head, tail = keep - keep // 2, keep // 2
        tokenizer = load_local_tokenizer(self.tokenizer) if self.tokenizer else None
        if tokenizer is None:
            chars = len(response) * head // tokens, len(response) * tail // tokens
            start, end = response[: chars[0]], response[len(response) - chars[1] :] if chars[1] else ""
        else:
            ids = tokenizer.encode(response, add_special_tokens=False)
            start = tokenizer.decode(ids[:head])
            end = tokenizer.decode(ids[len(ids) - tail :]) if tail else ""
        return start + OMISSION_MARKER.format(count=tokens - keep) + end
