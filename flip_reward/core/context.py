"""Context guard: makes a whole judge request (system prompt, conversation history, responses) fit the judge's
context window next to its answer budget (``max_tokens``).

The oldest turns of the history go first, replaced by a marker saying how many were left out; when the responses
alone are still too long, each loses its middle (the start and the end of a response carry most of the evidence
about what was asked). Token counts come from the judge's tokenizer when it is available locally (loaded once per
process, never fetched), otherwise from a conservative characters-per-token estimate.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from flip_reward.judge.client import Judge

from flip_reward.core.conversation import HISTORY_SEPARATOR
from flip_reward.text import valid_text

logger = logging.getLogger("flip_reward")

OMISSION_MARKER = "\n\n[... {count} tokens omitted ...]\n\n"
HISTORY_MARKER = "[... {count} earlier turns omitted ...]"
SAFETY_MARGIN_TOKENS = 32
DEFAULT_MAX_CONTEXT = 8192  # the judge context (tokens) every command assumes unless told
MIN_RESPONSE_TOKENS = 256  # the least room for a response a judge configuration may leave
TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json")
Build = Callable[[str, list[str]], list[dict[str, str]]]  # (history text, responses) -> judge request


class ContextOverflow(ValueError):
    """A request whose parts that cannot be trimmed (system prompt, instruction) exceed the judge's context."""


@dataclass(frozen=True)
class FittedRequest:
    """A judge request that fits: its ``messages``, the ``responses`` as shown (middles trimmed where needed) and
    how many turns of the history were left out (``omitted_turns``)."""

    messages: list[dict[str, str]]
    responses: list[str]
    omitted_turns: int = 0


def joined(messages: list[dict[str, str]]) -> str:
    """The text of a chat request, for token counts and size checks."""
    return "\n".join(message["content"] for message in messages)


_LOADING = threading.Lock()  # one load at a time: transformers' lazy imports break when two threads race them


@lru_cache(maxsize=8)
def load_local_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase | None:
    """The tokenizer at ``name_or_path`` from local files only, or None (logged once) when it cannot be loaded.
    Callers count tokens off the event loop (``JudgeMethod.fitted``): the first load imports transformers."""
    return _load_tokenizer(name_or_path)[0]


def tokenizer_unavailable(name_or_path: str) -> str | None:
    """Why the tokenizer ``name_or_path`` cannot be loaded from local files (transformers missing, no tokenizer
    there), or None when it can (it is then loaded, once per process): for a tokenizer the user named, whose loss
    must not pass unnoticed."""
    return _load_tokenizer(name_or_path)[1]


@lru_cache(maxsize=8)
def _load_tokenizer(name_or_path: str) -> tuple[PreTrainedTokenizerBase | None, str | None]:
    """``(tokenizer, None)``, or ``(None, why not)`` logged once at INFO (the token counts are then estimated)."""
    why = _why_not_loadable(name_or_path)
    if why is None:
        try:
            with _LOADING:
                from transformers import AutoTokenizer

                return AutoTokenizer.from_pretrained(name_or_path, local_files_only=True), None
        except Exception as error:  # any failure means "not available": fall back to the estimate
            why = f"it could not be loaded ({type(error).__name__}: {str(error).strip().splitlines()[0][:200]})"
    logger.info("judge tokenizer %r not available: %s; estimating tokens from characters", name_or_path, why)
    return None, why


def _why_not_loadable(name_or_path: str) -> str | None:
    """Why ``name_or_path`` is sure not to load (before trying), or None."""
    try:
        installed = importlib.util.find_spec("transformers") is not None
    except (ImportError, ValueError):
        installed = False
    if not installed:
        return "transformers is not installed (pip install 'flip-reward[serve]')"
    if not tokenizer_is_local(name_or_path):
        return "no such directory, nor a hub tokenizer of that name in the local Hugging Face cache"
    path = Path(name_or_path)
    if path.is_dir() and not any((path / name).is_file() for name in TOKENIZER_FILES):
        return f"the directory holds no tokenizer (no {' or '.join(TOKENIZER_FILES)})"
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
    """Fits judge requests into ``max_context_length - max_tokens`` tokens (see the module)."""

    max_context_length: int
    max_tokens: int
    tokenizer: str | None = None
    chars_per_token: float = 3.0

    @classmethod
    def for_judge(cls, judge: Judge, max_context_length: int, tokenizer: str | None = None) -> ContextGuard:
        """A guard for ``judge``: its answer budget, and the named tokenizer or else the judge model's own (a hub
        name or a directory), which is used only when it is available locally."""
        return cls(max_context_length, judge.config.max_tokens, tokenizer or judge.endpoint.provider_model)

    @property
    def room(self) -> int:
        """Tokens a request may take: the context less the answer budget and a margin for counting errors."""
        return self.max_context_length - self.max_tokens - SAFETY_MARGIN_TOKENS

    def check_room(self, empty_request: list[dict[str, str]], method: str) -> None:
        """ValueError unless ``max_tokens`` leaves room in ``max_context_length`` for ``method``'s prompt (its
        request with no history and empty responses, counted high) and MIN_RESPONSE_TOKENS of response: with less,
        every response would be trimmed to nothing."""
        prompt = estimate_tokens(joined(empty_request), self.chars_per_token)
        largest = self.max_context_length - prompt - MIN_RESPONSE_TOKENS - SAFETY_MARGIN_TOKENS
        if self.max_tokens > largest:
            raise ValueError(
                f"max_tokens {self.max_tokens} leaves too little of max_context_length {self.max_context_length} "
                f"for the judge's prompt: the {method} prompt takes about {prompt} tokens and a response needs at "
                f"least {MIN_RESPONSE_TOKENS}; use max_tokens <= {largest} or a larger max_context_length"
            )

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` as the judge sees it (a lone surrogate is sent as U+FFFD, see ``flip_reward.text``)."""
        tokenizer = load_local_tokenizer(self.tokenizer) if self.tokenizer else None
        if tokenizer is None:
            return estimate_tokens(text, self.chars_per_token)
        return len(tokenizer.encode(valid_text(text), add_special_tokens=False))

    def surely_fits(self, prompt: str) -> bool:
        """True when the whole prompt's UTF-8 length fits: no token is shorter than a byte, so no tokenizing. A lone
        surrogate counts the 3 bytes of the U+FFFD it is sent as."""
        return len(prompt.encode("utf-8", "surrogatepass")) <= self.room

    def whole_request(self, build: Build, history: Sequence[str], responses: Sequence[str]) -> FittedRequest | None:
        """``build(history text, responses)`` showing everything when it surely fits (no token is counted, so no
        tokenizer is loaded: cheap enough for an event loop), else None."""
        if sum(map(len, history)) + sum(map(len, responses)) > self.room:  # a character is at least a byte
            return None
        messages = build(HISTORY_SEPARATOR.join(history), list(responses))
        return FittedRequest(messages, list(responses)) if self.surely_fits(joined(messages)) else None

    def fit_request(self, build: Build, history: Sequence[str], responses: Sequence[str]) -> FittedRequest:
        """``build(history text, responses)`` made to fit: whole when it does; else without the oldest turns of
        ``history`` (a marker first says how many), as many as needed and all of them if the responses are too long
        by themselves, and then with each response trimmed in its middle to an equal share of what is left.
        ContextOverflow when even the request with no history and empty responses is too long."""
        responses = list(responses)
        whole = self.whole_request(build, history, responses)
        if whole is not None:
            return whole
        empty = [""] * len(responses)
        fixed = self.count_tokens(joined(build("", empty)))
        if fixed > self.room:
            raise ContextOverflow(
                f"the judge prompt takes {fixed} tokens without history or response, more than the {self.room} "
                f"that max_context_length {self.max_context_length} leaves next to max_tokens {self.max_tokens}"
            )
        wanted = sum(self.count_tokens(response) for response in responses)
        shown, history_tokens, omitted = self._recent_turns(build, history, empty, fixed, self.room - fixed - wanted)
        if wanted > self.room - fixed - history_tokens:
            share = (self.room - fixed - history_tokens) // len(responses)
            responses = [self.fit_within(response, share) for response in responses]
        return FittedRequest(build(HISTORY_SEPARATOR.join(shown), responses), responses, omitted)

    def _recent_turns(
        self, build: Build, history: Sequence[str], empty: list[str], fixed: int, budget: int
    ) -> tuple[list[str], int, int]:
        """The turns of ``history`` to show within ``budget`` tokens: all of them when they fit, else an omission
        marker and the most recent ones that fit; with the tokens they add to the request (the history's wrapper
        and separators included) and how many were left out."""
        if not history:
            return [], 0, 0
        block = [self.count_tokens(turn) + self.count_tokens(HISTORY_SEPARATOR) for turn in history]
        whole = self.count_tokens(joined(build(HISTORY_SEPARATOR.join(history), empty))) - fixed
        if whole <= budget:
            return list(history), whole, 0
        marker = HISTORY_MARKER.format(count=len(history))
        cost, start = self.count_tokens(joined(build(marker, empty))) - fixed, len(history)
        while start > 0 and cost + block[start - 1] <= budget:
            start -= 1
            cost += block[start]
        return [HISTORY_MARKER.format(count=start), *history[start:]], cost, start

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
            ids = tokenizer.encode(valid_text(response), add_special_tokens=False)
            start = tokenizer.decode(ids[:head])
            end = tokenizer.decode(ids[len(ids) - tail :]) if tail else ""
        return start + OMISSION_MARKER.format(count=tokens - keep) + end
