"""Known verdicts for the scripted loopback judge (a test double, not a judge) across FLIP and the three baselines.

``Verdicts`` answers each request by its method (told apart by the static system prompt): FLIP infers
``flip[response]``, pointwise rates ``points[response]``, pairwise prefers the higher ``ranks`` (A on equal ranks:
a position bias), listwise picks the highest rank (the first shown on equal ranks). ``faults`` maps
(method, response text) to a Reply or raw text that replaces the answer; for pairwise the key is the text shown as A,
for listwise the text shown first.
"""

from __future__ import annotations

import json
import re

from flip_reward.serving.scripted_judge import Reply, flip_answer, judged_response

_LISTED = re.compile(r'<response index="\d+">\n(.*?)\n</response>', re.DOTALL)


def method_of(request: dict) -> str:
    system = request["messages"][0]["content"]
    for key, method in (
        ("INFERRED INSTRUCTION", "flip"),
        ('"SCORE"', "pointwise"),
        ("BETTER_RESPONSE", "pairwise"),
        ("BEST_RESPONSE_INDEX", "listwise"),
    ):
        if key in system:
            return method
    raise AssertionError(f"unknown judge request: {system[:80]!r}")


def tagged(request: dict, tag: str) -> str:
    """The text inside ``<tag>`` of the request's user message."""
    return re.search(rf"<{tag}>\n(.*?)\n</{tag}>", request["messages"][-1]["content"], re.DOTALL).group(1)


def shown(request: dict) -> list[str]:
    """The responses of a listwise request, in the order shown."""
    return _LISTED.findall(request["messages"][-1]["content"])


def answer(key: str, value: object) -> str:
    return json.dumps({"REASONING": "Scripted.", key: value})


class Verdicts:
    def __init__(self, flip=None, points=None, ranks=None, faults=None):
        self.flip, self.points, self.ranks = flip or {}, points or {}, ranks or {}
        self.faults = faults or {}

    def __call__(self, request: dict) -> Reply | str:
        method = method_of(request)
        if method == "flip":
            key = judged_response(request)
        elif method == "pointwise":
            key = tagged(request, "response")
        elif method == "pairwise":
            key = tagged(request, "response_a")
        else:
            key = shown(request)[0]
        if (method, key) in self.faults:
            return self.faults[(method, key)]
        answers = {"flip": self.inferred, "pointwise": self.rating, "pairwise": self.preference, "listwise": self.pick}
        return answers[method](request)

    def inferred(self, request: dict) -> str:
        return flip_answer(self.flip[judged_response(request)])

    def rating(self, request: dict) -> str:
        return answer("SCORE", self.points[tagged(request, "response")])

    def preference(self, request: dict) -> str:
        a, b = tagged(request, "response_a"), tagged(request, "response_b")
        return answer("BETTER_RESPONSE", "A" if self.ranks[a] >= self.ranks[b] else "B")

    def pick(self, request: dict) -> str:
        ranks = [self.ranks[text] for text in shown(request)]
        return answer("BEST_RESPONSE_INDEX", ranks.index(max(ranks)))
