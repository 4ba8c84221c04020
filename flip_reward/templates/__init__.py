"""Chat templates read back: a templated prompt into chat messages and prompt + response into the response, for
every caller that receives templated text (the reward service's OpenRLHF protocol, trainer adapters)."""

from flip_reward.templates.families import FAMILIES, GROUPS, holds_markup
from flip_reward.templates.pinned import PinnedTemplate, load_policy_template
from flip_reward.templates.reader import FamilyReader, Reading, TemplateError, response_after

__all__ = [
    "FAMILIES",
    "GROUPS",
    "FamilyReader",
    "PinnedTemplate",
    "Reading",
    "TemplateError",
    "holds_markup",
    "load_policy_template",
    "response_after",
]
