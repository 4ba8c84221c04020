"""Reading a chat-templated text back into turns: what the reward service needs from OpenRLHF's decoded strings.

OpenRLHF sends the prompt after ``apply_chat_template`` and the query as prompt + response decoded with special
tokens kept, so the instruction and the earlier turns are only in the template's markup. Three template families
cover the common policies: ChatML (Qwen, Olmo 3, SmolLM, ...), Llama 3, and the Tulu / OLMo 2 ``<|user|>`` style.
A template that opens ``<think>`` in its generation prompt leaves the response inside the thinking; the response is
then returned with that ``<think>`` put back, so that ``final_answer`` hides the thinking as for any response.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

END_OF_TURN = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "</s>")
_ROLES = "system|user|assistant|tool|developer|ipython"


@dataclass(frozen=True)
class ChatTemplate:
    """One template family: how a finished turn looks (groups: role, content) and its assistant header."""

    name: str
    turn: re.Pattern[str]
    assistant_header: str


TEMPLATES = (
    ChatTemplate(
        "chatml", re.compile(rf"<\|im_start\|>({_ROLES})\n(.*?)<\|im_end\|>", re.DOTALL), "<|im_start|>assistant\n"
    ),
    ChatTemplate(
        "llama3",
        re.compile(rf"<\|start_header_id\|>({_ROLES})<\|end_header_id\|>\n\n(.*?)<\|eot_id\|>", re.DOTALL),
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    ),
    ChatTemplate(
        "tulu",
        re.compile(rf"<\|({_ROLES})\|>\n(.*?)(?=\n?<\|(?:{_ROLES})\|>\n|\Z)", re.DOTALL),
        "<|assistant|>\n",
    ),
)


class TemplateError(ValueError):
    """A templated text that cannot be read as the reward service needs; the message says why."""


def strip_end_of_turn(text: str) -> str:
    """``text`` without the end-of-turn and padding tokens (and whitespace) it ends with."""
    text = text.rstrip()
    while text.endswith(END_OF_TURN):
        text = next(text[: -len(token)] for token in END_OF_TURN if text.endswith(token)).rstrip()
    return text


def template_of(prompt: str) -> ChatTemplate | None:
    """The template family ``prompt`` is written in (the first with a user turn), or None."""
    return next((t for t in TEMPLATES if any(role == "user" for role, _ in t.turn.findall(prompt))), None)


def templated_messages(prompt: str) -> list[dict[str, str]] | None:
    """The finished turns of a templated prompt as chat messages (the open assistant turn at its end is not one),
    or None when it is in no known template.

    >>> templated_messages("<|im_start|>system\\nBe brief.<|im_end|>\\n<|im_start|>user\\nHi<|im_end|>\\n"
    ...                    "<|im_start|>assistant\\n")
    [{'role': 'system', 'content': 'Be brief.'}, {'role': 'user', 'content': 'Hi'}]
    """
    template = template_of(prompt)
    if template is None:
        return None
    turns = [{"role": role, "content": strip_end_of_turn(content)} for role, content in template.turn.findall(prompt)]
    while turns and turns[-1]["role"] == "assistant" and not turns[-1]["content"]:
        turns.pop()  # the Tulu generation prompt, matched as an empty assistant turn
    return turns


def response_of(query: str, prompt: str) -> str:
    """The policy's response in ``query`` (prompt + response as the trainer decoded it): the text after the prompt
    (else after the last assistant header of the prompt's template), end-of-turn tokens removed, with ``<think>``
    put back in front when the prompt's generation prompt opened it.

    >>> response_of("<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\nHello!<|im_end|><|endoftext|>",
    ...             "<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\n")
    'Hello!'
    """
    if query.startswith(prompt):
        response = query[len(prompt) :]
    else:
        template = template_of(prompt)
        header = query.rfind(template.assistant_header) if template else -1
        if header < 0:
            raise TemplateError("does not start with its prompt and holds no assistant turn of the prompt's template")
        response = query[header + len(template.assistant_header) :]
    response = strip_end_of_turn(response)
    return "<think>" + response if prompt.rstrip().endswith("<think>") else response
