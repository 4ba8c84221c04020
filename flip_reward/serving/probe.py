"""Is a judge usable before a run starts: it answers at its base URL and serves the model the run will request.

A wrong model name does not fail a request loudly enough: every judgment becomes a counted 404 and a training run
goes on with reward 0.0 for every sample. So the training scripts' dry run, their launch and ``flip-reward train``
all ask ``GET /v1/models`` first and stop with one line naming what is served; ``flip-reward serve`` asks at start
and warns. A user name and password in the base URL are sent as basic authentication, never shown.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request

from flip_reward.judge.urls import redact, redact_url, split_credentials

PROVIDER_PREFIXES = ("hosted_vllm/", "openai/")
OPENAI_COMPATIBLE = tuple(prefix.rstrip("/") for prefix in PROVIDER_PREFIXES)  # litellm providers that list /models


class JudgeProbeError(RuntimeError):
    """The judge cannot be used: unreachable, not an OpenAI-compatible server, or serving other models. The message
    is ``url`` then ``reason``; ``reason`` alone names no URL (for callers that show the judge their own way)."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"{url} {reason}")
        self.reason = reason


def served_name(model: str) -> str:
    """The model name the server knows for a litellm model string (its provider prefix removed)."""
    for prefix in PROVIDER_PREFIXES:
        if model.startswith(prefix):
            return model[len(prefix) :]
    return model


def served_models(base_url: str, timeout: float = 5.0, api_key: str | None = None) -> list[str]:
    """The model ids ``GET {base_url}/models`` lists (with ``api_key`` as a bearer token, or the URL's user name and
    password as basic authentication); JudgeProbeError when it does not answer with them. No message shows the
    credentials (``redact_url``)."""
    address, credentials = split_credentials(base_url.rstrip("/") + "/models")
    url = redact_url(base_url.rstrip("/") + "/models")
    if credentials:
        headers = {"Authorization": credentials.header()}
    else:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    secrets = credentials.secrets() if credentials else (api_key,)
    try:
        with urllib.request.urlopen(urllib.request.Request(address, headers=headers), timeout=timeout) as response:
            body = json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as error:
        hint = (
            " (does the base URL end in /v1?)" if error.code == 404 and not base_url.rstrip("/").endswith("/v1") else ""
        )
        raise JudgeProbeError(url, f"answered HTTP {error.code}{hint}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
        raise JudgeProbeError(url, f"is not reachable ({redact(str(error), *secrets)})") from None
    entries = body.get("data") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        raise JudgeProbeError(url, "did not answer an OpenAI model list")
    return [str(entry.get("id")) for entry in entries if isinstance(entry, dict)]


def check_serves(base_url: str, model: str, timeout: float = 5.0, api_key: str | None = None) -> list[str]:
    """The models served at ``base_url``; JudgeProbeError unless ``model`` (a litellm string) is one of them."""
    served = served_models(base_url, timeout, api_key)
    if served_name(model) not in served:
        listed = ", ".join(served) or "no model"
        raise JudgeProbeError(redact_url(base_url), f"serves {listed}, not {served_name(model)!r} (from {model})")
    return served
