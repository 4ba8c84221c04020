"""The FLIP prompt templates: shipped with the package, static instructions first, history optional."""

import pytest
from flip_reward.prompts import chat_messages, load_template, render


def test_system_prompt_is_static_and_names_the_json_keys():
    system = render("FLIP_SYSTEM")
    assert '"REASONING"' in system and '"INFERRED INSTRUCTION"' in system
    assert render("FLIP_SYSTEM", context="anything", response="else") == system


def test_user_prompt_with_and_without_history():
    without = render("FLIP_USER", context="", response="A {braced} reply")
    assert "<history>" not in without
    assert "<reply>\nA {braced} reply\n</reply>" in without
    with_history = render("FLIP_USER", context="user: hi\n\nassistant: hello", response="R")
    assert with_history.startswith("Conversation history before the missing user message:\n<history>\nuser: hi")


def test_chat_messages_roles():
    messages = chat_messages("FLIP_SYSTEM", "FLIP_USER", context="", response="R")
    assert [m["role"] for m in messages] == ["system", "user"]


def test_missing_variable_and_template_raise():
    with pytest.raises(Exception, match="response"):
        render("FLIP_USER", context="")
    with pytest.raises(FileNotFoundError, match="no prompt template NOPE.prompt"):
        load_template("NOPE")
