"""Loading a dataset from the Hugging Face Hub without the hub's noise: one quick TCP connect to the hub endpoint
first (a machine that cannot reach it is told at once, not after datasets' retries), and the hub libraries' retry
warnings kept off the user's terminal while the dataset loads."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from flip_reward.data.writing import reason

HUB_CONNECT_TIMEOUT = 3.0  # seconds for the one TCP connect to the hub endpoint
HUB_LOGGERS = ("huggingface_hub", "datasets")
DEFAULT_PORTS = {"https": 443, "http": 80}


def hub_unreachable(timeout: float = HUB_CONNECT_TIMEOUT) -> str | None:
    """Why the hub endpoint (``HF_ENDPOINT``, else https://huggingface.co) cannot be reached, from one TCP connect
    of at most ``timeout`` seconds (``endpoint: reason``), or None when it can, or when ``HF_HUB_OFFLINE`` is set
    (datasets then reads its local cache only, at once)."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return None
    parts = urlsplit(constants.ENDPOINT)
    host, port = parts.hostname or "", parts.port or DEFAULT_PORTS.get(parts.scheme, 443)
    endpoint = f"{parts.scheme}://{host}:{port}"  # no user-info, should the URL hold any
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as error:
        return f"{endpoint}: {reason(error)}"
    return None


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
