"""Loading a dataset from the Hugging Face Hub without the hub's noise: one quick TCP connect to the hub endpoint
first when no proxy stands between (a machine that cannot reach it is told at once, not after datasets' retries),
and the hub libraries' retry warnings kept off the user's terminal while the dataset loads."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from flip_reward.net import connect_error, proxied
from flip_reward.os_errors import reason

HUB_CONNECT_TIMEOUT = 3.0  # seconds for the one TCP connect to the hub endpoint
HUB_LOGGERS = ("huggingface_hub", "datasets")
DEFAULT_PORTS = {"https": 443, "http": 80}


def hub_unreachable(timeout: float = HUB_CONNECT_TIMEOUT) -> str | None:
    """Why the hub endpoint (``HF_ENDPOINT``, else https://huggingface.co) cannot be reached, from one name lookup
    and TCP connect bounded together by ``timeout`` seconds (``endpoint: reason``), or None when it can; None also,
    unchecked, when datasets is offline (``HF_HUB_OFFLINE`` or ``HF_DATASETS_OFFLINE``: it then reads its local
    cache only, at once) or when a proxy applies to the endpoint (``HTTPS_PROXY`` and the like, unless
    ``NO_PROXY`` names it): datasets goes through the proxy, which a direct connect says nothing about."""
    import datasets.config
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or datasets.config.HF_HUB_OFFLINE or proxied(constants.ENDPOINT):
        return None
    parts = urlsplit(constants.ENDPOINT)
    host, port = parts.hostname or "", parts.port or DEFAULT_PORTS.get(parts.scheme, 443)
    endpoint = f"{parts.scheme}://{host}:{port}"  # no user-info, should the URL hold any
    failures: list[OSError | None] = []
    attempt = threading.Thread(target=lambda: failures.append(connect_error(host, port, timeout)), daemon=True)
    attempt.start()
    attempt.join(timeout)
    if attempt.is_alive():
        return f"{endpoint}: no answer within {timeout:g} s"
    return f"{endpoint}: {reason(failures[0])}" if failures[0] else None


@contextmanager
def quiet_hub_loggers() -> Iterator[None]:
    """The hub libraries' loggers at ERROR for the block (their per-retry warnings say nothing the final error does
    not), restored after."""
    loggers = [logging.getLogger(name) for name in HUB_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def load_hub_dataset(name: str, split: str) -> object:
    """Split ``split`` of the hub dataset ``name`` (``datasets.load_dataset``); ConnectionError at once when the hub
    cannot be reached (``hub_unreachable``)."""
    import datasets

    unreachable = hub_unreachable()
    if unreachable:
        raise ConnectionError(
            f"the Hugging Face Hub cannot be reached ({unreachable}); set HF_HUB_OFFLINE=1 to read a copy cached "
            "locally"
        )
    with quiet_hub_loggers():
        return datasets.load_dataset(name, split=split)
