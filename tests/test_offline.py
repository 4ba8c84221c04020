"""No network at import or construction: a fresh interpreter whose sockets refuse any non-loopback address."""

import os
import subprocess
import sys

from conftest import REPO

GUARD = """
import socket
_connect = socket.socket.connect
def guarded(self, address):
    if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1", "localhost"):
        raise AssertionError(f"network access to {address}")
    return _connect(self, address)
socket.socket.connect = guarded
socket.getaddrinfo = lambda host, *a, **k: (_ for _ in ()).throw(AssertionError(f"DNS lookup of {host}"))
"""

CHECK = (
    GUARD
    + """
import sys
import flip_reward
heavy = ("litellm", "openai", "aiohttp", "transformers")
assert not [name for name in heavy if name in sys.modules], "heavy imports at package import"
flip = flip_reward.FlipReward("hosted_vllm/judge", "http://127.0.0.1:9/v1")
# constructing a judge imports the HTTP clients, so that the first reward does not do it on the event loop
assert all(name in sys.modules for name in ("litellm", "openai", "aiohttp")), "HTTP clients not ready"
from flip_reward.evaluation.baselines import PointwiseJudgeReward
PointwiseJudgeReward("openai/gpt-4o-mini", None)
print("offline ok")
"""
)


def test_import_and_construction_touch_no_network():
    env = {key: value for key, value in os.environ.items() if key != "LITELLM_LOCAL_MODEL_COST_MAP"}
    completed = subprocess.run(
        [sys.executable, "-c", CHECK], cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip() == "offline ok"
