"""Judge prompt templates (``*.prompt``, Jinja2) and their loader; the folder ships in the wheel as flip_reward.prompts.

System templates hold only static instructions so that a vLLM judge reuses its prefix cache across requests; the
per-request parts (history, response) live in the user templates.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import jinja2

_ENVIRONMENT = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)


@cache
def load_template(name: str) -> jinja2.Template:
    """The compiled template ``prompts/<name>.prompt``; raises FileNotFoundError naming the missing file."""
    path = files(__name__) / f"{name}.prompt"
    if not path.is_file():
        raise FileNotFoundError(f"no prompt template {name}.prompt in {files(__name__)}")
    return _ENVIRONMENT.from_string(path.read_text(encoding="utf-8"))


def render(name: str, **variables: object) -> str:
    """Render template ``name`` with ``variables``; a variable the template needs but did not get raises."""
    return load_template(name).render(**variables).strip()


def chat_messages(system: str, user: str, **variables: object) -> list[dict[str, str]]:
    """A two-message chat (system template, user template) rendered with the same variables."""
    return [
        {"role": "system", "content": render(system, **variables)},
        {"role": "user", "content": render(user, **variables)},
    ]
