"""Is a judge usable before a run starts: it answers at its base URL and serves the model the run will request.

A wrong model name does not fail a request loudly enough: every judgment becomes a counted 404 and a training run
goes on with reward 0.0 for every sample. So the training scripts' dry run, their launch and ``flip-reward train``
all ask ``GET /v1/models`` first and stop with one line naming what is served.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from flip_reward.judge.urls import redact, redact_url, split_credentials

PROVIDER_PREFIXES = ("hosted_vllm/", "openai/")


class JudgeProbeError(RuntimeError):
    """The judge cannot be used: unreachable, not an OpenAI-compatible server, or serving other models."""


def served_name(model: str) -> str:
    """The model name the server knows for a litellm model string (its provider prefix removed)."""
    for prefix in PROVIDER_PREFIXES:
        if model.startswith(prefix):
            return model[len(prefix) :]
    return model


def served_models(base_url: str, timeout: float = 5.0) -> list[str]:
    """The model ids ``GET {base_url}/models`` lists; JudgeProbeError when it does not answer with them. Credentials
    in ``base_url`` go as HTTP basic auth, and no message shows them (``redact_url``)."""
    address, credentials = split_credentials(base_url.rstrip("/") + "/models")
    url = redact_url(base_url.rstrip("/") + "/models")
    headers = {"Authorization": credentials.header()} if credentials else {}
    secrets = credentials.secrets() if credentials else ()
    try:
        with urllib.request.urlopen(urllib.request.Request(address, headers=headers), timeout=timeout) as response:
            body = json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as error:
        hint = (
            " (does the base URL end in /v1?)" if error.code == 404 and not base_url.rstrip("/").endswith("/v1") else ""
        )
        raise JudgeProbeError(f"{url} answered HTTP {error.code}{hint}") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise JudgeProbeError(f"{url} is not reachable ({redact(str(error), *secrets)})") from None
    entries = body.get("data") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        raise JudgeProbeError(f"{url} did not answer an OpenAI model list")
    return [str(entry.get("id")) for entry in entries if isinstance(entry, dict)]


def check_serves(base_url: str, model: str, timeout: float = 5.0) -> list[str]:
    """The models served at ``base_url``; JudgeProbeError unless ``model`` (a litellm string) is one of them."""
    served = served_models(base_url, timeout)
    if served_name(model) not in served:
        served_list = ", ".join(served) or "no model"
        raise JudgeProbeError(f"{redact_url(base_url)} serves {served_list}, not {served_name(model)!r} (from {model})")
    return served
