"""Splitting prompts into (context, instruction), for chat messages and open-instruct's flattened strings."""

import pytest

from flip_reward.core.conversation import PromptError, split_conversation


def flatten(messages):
    """open-instruct's flattening of a prompt, as its reward path builds ``query``."""
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages)


MULTI_TURN = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "4"},
    {"role": "user", "content": "Now write a limerick about it.\nKeep it clean.\n\nThanks!"},
]


def test_single_user_message():
    assert split_conversation([{"role": "user", "content": "Write a haiku"}]) == ("", "Write a haiku")


def test_multi_turn_messages_keep_multiline_instruction():
    context, instruction = split_conversation(MULTI_TURN)
    assert instruction == "Now write a limerick about it.\nKeep it clean.\n\nThanks!"
    assert context == "system: You are terse.\n\nuser: What is 2+2?\n\nassistant: 4"


def test_flattened_string_matches_messages():
    assert split_conversation(flatten(MULTI_TURN)) == split_conversation(MULTI_TURN)


def test_content_parts_are_joined():
    prompt = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe"},
                {"type": "image_url", "image_url": {}},
                {"type": "text", "text": "this chart."},
            ],
        }
    ]
    assert split_conversation(prompt) == ("", "Describe\nthis chart.")


def test_plain_string_without_roles_is_the_instruction():
    assert split_conversation("Summarise this:\nuser-facing text") == ("", "Summarise this:\nuser-facing text")


def test_last_user_message_wins_even_after_assistant():
    prompt = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "ok"}]
    assert split_conversation(prompt) == ("", "first")


def test_a_null_content_is_empty_text():
    """An assistant turn that only called a tool (OpenAI's shape) and a null a columnar format wrote for a missing
    content are turns without text, not a bad prompt; a null last user message is an empty instruction."""
    call = {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}
    prompt = [
        {"role": "user", "content": "Is it cold in Oslo?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "content": "-3 C", "tool_call_id": "c1"},
        {"role": "user", "content": "Then suggest a warm drink."},
    ]
    assert split_conversation(prompt) == (
        "user: Is it cold in Oslo?\n\nassistant: \n\ntool: -3 C",
        "Then suggest a warm drink.",
    )
    with pytest.raises(PromptError, match="^the last user message is empty$"):
        split_conversation([{"role": "user", "content": None}])


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ([{"role": "assistant", "content": "hi"}], "prompt has no user message"),
        ([{"role": "user", "content": "   "}], "the last user message is empty"),
        ([{"content": "no role"}], "message 0 must be an object with a string 'role'"),
        ([{"role": "user"}], "message 0 has no 'content'"),
        ([{"role": "user", "content": 42}], "message content must be a string or a list of text parts, got int"),
        (42, "prompt must be a string or a list of messages, got int"),
        ("system: only a system prompt", "prompt has no user message"),
    ],
)
def test_bad_prompts_raise_clear_errors(prompt, message):
    with pytest.raises(PromptError) as error:
        split_conversation(prompt)
    assert str(error.value) == message
