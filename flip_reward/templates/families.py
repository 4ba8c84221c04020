"""The chat template families the reader knows: each one's markup (a Grammar), its conventions, which user turn a
system prompt is folded into, whether its markers are plain text to its tokenizer, and the texts that mark a turn
it cannot read exactly; written from the public formats of the models named. Also every family's stop tokens."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from flip_reward.templates.conventions import Affix, DefaultSystem, SystemPreamble, ToolResults, Wrapped
from flip_reward.templates.scanner import Generation, Grammar

FOLD_SEPARATOR = "\n\n"  # what templates that fold a system prompt into a user turn put between the two


@dataclass(frozen=True)
class Family:
    """One template family (``group``, e.g. ``mistral``) in one of its variants (``name``, e.g. ``mistral-v3``).

    ``roles`` maps a role as written to a message role; ``fold`` names the user turn ("first" or "last") that the
    template folds a system prompt into, if it does; ``finish`` rewrites a response written in the family's own
    response markup (gpt-oss channels) into plain text with ``<think>`` for its reasoning. ``text_markers`` is set
    where the model's tokenizer has no special token for the turn markers (a user may type them, so a split that no
    special token marks is two readings); ``unreadable`` maps a text to why a turn holding it (as the template wrote
    it) cannot be read exactly: a tool list, a tool call chain, a ``/nothink`` the user may have typed."""

    name: str
    group: str
    grammar: Grammar
    roles: Mapping[str, str] = field(default_factory=dict)
    conventions: tuple = ()
    fold: str | None = None
    finish: Callable[[str], str] | None = None
    text_markers: bool = False
    unreadable: Mapping[str, str] = field(default_factory=dict)

    def role(self, written: str) -> str:
        return self.roles.get(written, written)


def _chat(start: str, end: str, roles: tuple[str, ...] = ("system", "user", "assistant", "tool")) -> dict:
    """Headers and footers of templates that write every turn as ``start`` + role + ``end`` (footer added apart)."""
    return {role: f"{start}{role}{end}" for role in roles}


def _same(footer: str, headers: Mapping[str, str]) -> dict:
    return dict.fromkeys(headers, footer)


def _generations(header: str, *prefills: str, closed: tuple[str, ...] = ()) -> tuple[Generation, ...]:
    """The plain generation prompt ``header``, with each of ``prefills`` opened after it (put back in front of the
    response) and each of ``closed`` (an empty thinking block: thinking off) after it."""
    return (
        Generation(header),
        *(Generation(header + prefill, prefill) for prefill in prefills),
        *(Generation(header + text) for text in closed),
    )


def harmony_response(text: str) -> str:
    """gpt-oss's channels as plain text: analysis as ``<think>...</think>``, then the final message."""
    if not text.startswith("<|channel|>"):
        return text
    parts = []
    for message in text.split("<|start|>assistant"):
        channel, _, content = message.removeprefix("<|channel|>").partition("<|message|>")
        content = content.removesuffix("<|end|>")
        parts.append(f"<think>{content}</think>" if channel.startswith("analysis") else content)
    return "".join(parts)


CHATML = _chat("<|im_start|>", "\n")
CHATML_DEFAULT_SYSTEMS = (
    re.compile(re.escape("You are Qwen, created by Alibaba Cloud. You are a helpful assistant.")),
    re.compile(re.escape("You are a helpful assistant.")),
    re.compile(re.escape("You are a helpful AI assistant named SmolLM, trained by Hugging Face")),
    re.compile(
        r"You are OLMo, a helpful function-calling AI assistant built by Ai2\. Your date cutoff is [A-Za-z]+ \d{4},"
        r" and your model weights are available at https://huggingface\.co/allenai\. You do not currently have"
        r" access to any functions\. <functions></functions>"
    ),
    re.compile(""),  # Nemotron 3 writes an empty system turn
)
LLAMA3_PREAMBLE = re.compile(
    r"(?:Environment: ipython\n)?(?:Tools: [^\n]*\n)?Cutting Knowledge Date: [^\n]*\nToday Date: [^\n]*\n\n"
)
LLAMA3_TOOLS_IN_USER = "Given the following functions, please respond with a JSON for a function call"
GRANITE_DEFAULT_SYSTEMS = (
    re.compile(
        r"Knowledge Cutoff Date: [A-Za-z]+ \d{4}\.[ \n]Today's Date: [A-Za-z]+ \d{1,2}, \d{4}\.[ \n]"
        r"You are Granite, developed by IBM\. You are a helpful AI assistant\."
    ),
    re.compile(re.escape("You are Granite, developed by IBM. You are a helpful AI assistant.")),
)
HARMONY_SYSTEM = re.compile(
    r"You are ChatGPT, a large language model trained by OpenAI\.\nKnowledge cutoff: \d{4}-\d{2}\n"
    r"Current date: \d{4}-\d{2}-\d{2}\n\nReasoning: (?:low|medium|high)\n\n# Valid channels: analysis, commentary,"
    r" final\. Channel must be included for every message\."
)
DEEPSEEK_BOS, DEEPSEEK_EOS = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"
TULU_HEADERS = {role: f"<|{role}|>\n" for role in ("system", "user", "assistant")}
MISTRAL_ROLES = ("user", "assistant")


def _tulu(name: str, eos: str) -> Family:
    footers = {"system": "\n", "user": "\n", "assistant": eos + "\n"}
    grammar = Grammar(TULU_HEADERS, footers, (Generation("<|assistant|>\n"),), ("", "<|endoftext|>"))
    return Family(name, "tulu", grammar, text_markers=True)


def _mistral(
    name: str,
    user: tuple[str, str],
    assistant_header: str,
    fold: str | None,
    system: tuple[str, str] | None = None,
    text_markers: bool = False,
) -> Family:
    headers = {"user": user[0], "assistant": assistant_header}
    footers = {"user": user[1], "assistant": "</s>"}
    if system:
        headers["system"], footers["system"] = system
    grammar = Grammar(headers, footers, (Generation(""),), ("<s>", ""))
    return Family(name, "mistral", grammar, fold=fold, text_markers=text_markers)


FAMILIES: tuple[Family, ...] = (
    Family(
        "chatml",
        "chatml",
        Grammar(
            CHATML,
            _same("<|im_end|>\n", CHATML),
            _generations(
                "<|im_start|>assistant\n", "<think>\n", "<think>", closed=("<think>\n\n</think>\n\n", "<think></think>")
            ),
            ("", "<|startoftext|>"),
        ),
        conventions=(
            DefaultSystem(CHATML_DEFAULT_SYSTEMS),
            Affix("system", (" You do not currently have access to any functions. <functions></functions>",), "end"),
            Affix("assistant", ("<think>\n\n</think>\n\n", "<think></think>")),
            ToolResults("user", "<tool_response>\n", "\n</tool_response>", "\n", ("", "\n")),
        ),
    ),
    Family(
        "phi4",
        "phi4",
        Grammar(
            _chat("<|im_start|>", "<|im_sep|>"),
            _same("<|im_end|>", CHATML),
            (Generation("<|im_start|>assistant<|im_sep|>"),),
        ),
    ),
    Family(
        "llama3",
        "llama3",
        Grammar(
            _chat("<|start_header_id|>", "<|end_header_id|>\n\n", ("system", "user", "assistant", "ipython", "tool")),
            dict.fromkeys(("system", "user", "assistant", "ipython", "tool"), "<|eot_id|>"),
            (Generation("<|start_header_id|>assistant<|end_header_id|>\n\n"),),
            ("", "<|begin_of_text|>"),
        ),
        roles={"ipython": "tool"},
        conventions=(SystemPreamble(LLAMA3_PREAMBLE),),
        unreadable={LLAMA3_TOOLS_IN_USER: "the template put its tool list into the user turn"},
    ),
    _tulu("tulu", "<|endoftext|>"),
    _tulu("tulu-llama", "<|end_of_text|>"),
    Family(
        "phi3",
        "phi3",
        Grammar(TULU_HEADERS, _same("<|end|>\n", TULU_HEADERS), (Generation("<|assistant|>\n"),), ("", "<s>")),
    ),
    _mistral("mistral-v1", ("[INST] ", " [/INST]"), "", "first", text_markers=True),  # [INST] is text in v1
    _mistral("mistral-v3", ("[INST] ", "[/INST]"), " ", "last"),
    _mistral("mistral-tekken", ("[INST]", "[/INST]"), "", "last"),
    _mistral("mistral-v7", ("[INST]", "[/INST]"), "", None, ("[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]")),
    Family(
        "gemma",
        "gemma",
        Grammar(
            {"user": "<start_of_turn>user\n", "model": "<start_of_turn>model\n"},
            dict.fromkeys(("user", "model"), "<end_of_turn>\n"),
            (Generation("<start_of_turn>model\n"),),
            ("<bos>", ""),
        ),
        roles={"model": "assistant"},
        fold="first",
    ),
    Family(
        "deepseek-v2",
        "deepseek",
        Grammar(
            {"user": "User: ", "assistant": "Assistant: "},
            {"user": "\n\n", "assistant": DEEPSEEK_EOS},
            (Generation("Assistant:"),),
            (DEEPSEEK_BOS,),
            bare_system="\n\n",
        ),
        text_markers=True,
    ),
    Family(
        "deepseek-v3",
        "deepseek",
        Grammar(
            {"user": "<｜User｜>", "assistant": "<｜Assistant｜>"},
            {"user": "", "assistant": DEEPSEEK_EOS},
            _generations("<｜Assistant｜>", "<think>\n", "<think>", closed=("</think>",)),
            (DEEPSEEK_BOS,),
            bare_system="",
        ),
        conventions=(Affix("assistant", ("</think>",)),),
    ),
    Family(
        "granite",
        "granite",
        Grammar(
            _chat("<|start_of_role|>", "<|end_of_role|>"),
            _same("<|end_of_text|>\n", CHATML),
            (Generation("<|start_of_role|>assistant<|end_of_role|>"),),
        ),
        conventions=(DefaultSystem(GRANITE_DEFAULT_SYSTEMS),),
    ),
    Family(
        "glm45",
        "glm45",
        Grammar(
            {
                "system": "<|system|>\n",
                "user": "<|user|>\n",
                "assistant": "<|assistant|>",
                "observation": "<|observation|>",
            },
            dict.fromkeys(("system", "user", "assistant", "observation"), ""),
            _generations("<|assistant|>", closed=("\n<think></think>",)),
            ("[gMASK]<sop>",),
        ),
        roles={"observation": "tool"},
        unreadable={" /nothink": "the user may have written /nothink (the template then adds none)"},
        conventions=(
            Affix("assistant", ("\n<think></think>\n", "\n<think></think>")),
            Affix("user", ("/nothink",), "end", generations=("<|assistant|>\n<think></think>",)),
        ),
    ),
    Family(
        "harmony",
        "harmony",
        Grammar(
            {
                "system": "<|start|>system<|message|>",
                "developer": "<|start|>developer<|message|>",
                "user": "<|start|>user<|message|>",
                "assistant": "<|start|>assistant<|channel|>final<|message|>",
            },
            dict.fromkeys(("system", "developer", "user", "assistant"), "<|end|>"),
            (Generation("<|start|>assistant"),),
        ),
        conventions=(DefaultSystem((HARMONY_SYSTEM,)), Wrapped("developer", "system", "# Instructions\n\n", "\n\n")),
        finish=harmony_response,
        unreadable=dict.fromkeys(("<|end|><|start|>", "<|call|>"), "a tool call chain, which the reader does not read"),
    ),
    Family(
        "kimi",
        "kimi",
        Grammar(
            {
                "system": "<|im_system|>system<|im_middle|>",
                "user": "<|im_user|>user<|im_middle|>",
                "assistant": "<|im_assistant|>assistant<|im_middle|>",
                "tool": "<|im_system|>tool<|im_middle|>",
            },
            dict.fromkeys(("system", "user", "assistant", "tool"), "<|im_end|>"),
            (Generation("<|im_assistant|>assistant<|im_middle|>"),),
        ),
        conventions=(
            DefaultSystem(
                (
                    re.compile(re.escape("You are a helpful assistant")),
                    re.compile(re.escape("You are Kimi, an AI assistant created by Moonshot AI.")),
                )
            ),
        ),
    ),
)
GROUPS: tuple[str, ...] = tuple(dict.fromkeys(family.group for family in FAMILIES))
# The end-of-turn and end-of-text tokens of the families, taken off the end of every response whatever its family:
# a model trained on one family's template may close with another's eos (ChatML on a Llama 3 base).
EVERY_STOP: tuple[str, ...] = (
    "<|im_end|>",
    "<|endoftext|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|end_of_text|>",
    "<|end|>",
    "</s>",
    "<end_of_turn>",
    "<eos>",
    DEEPSEEK_EOS,
    "<|user|>",
    "<|observation|>",
    "<|return|>",
    "<|call|>",
)


def _markers(family: Family) -> set[str]:
    grammar = family.grammar
    texts = {*grammar.headers.values(), *grammar.footers.values(), *grammar.prefixes, grammar.bare_system or ""}
    return {text.strip() for text in texts | {generation.text for generation in grammar.generations}}


# Every text the families write around a turn (headers, footers, BOS, generation prompts) and every stop token.
MARKUP: tuple[str, ...] = tuple(sorted(set().union(*map(_markers, FAMILIES), EVERY_STOP) - {""}))


def holds_markup(text: str) -> bool:
    """Whether ``text`` holds a known family's turn markup, so that it cannot be taken as plain text."""
    return any(marker in text for marker in MARKUP)
