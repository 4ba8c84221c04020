"""Token-level F1 between an inferred and an original instruction (SQuAD answer normalisation).

This is the FLIP reward itself, so it is exact and dependency-free: lowercase, strip ASCII punctuation, drop the
articles a/an/the, split on whitespace, and count the multiset overlap of the remaining tokens.
"""

from __future__ import annotations

import re
import string
from collections import Counter

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(s: str) -> str:
    """Lowercase, remove ASCII punctuation and the articles a/an/the, and collapse whitespace.

    >>> normalize_answer("  The Cat's   hat, an APPLE!")
    'cats hat apple'
    """
    text = s.lower().translate(_PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def f1_score(prediction: str, ground_truth: str) -> dict[str, float]:
    """F1, precision and recall of the normalised tokens of ``prediction`` against ``ground_truth``.

    precision = overlap / |prediction tokens|, recall = overlap / |ground-truth tokens|,
    f1 = 2 * precision * recall / (precision + recall), where overlap counts shared tokens with multiplicity.
    All three are 0.0 when either side normalises to nothing or no token is shared.

    >>> scores = f1_score("Write a poem about the sea", "write a short poem about the sea")
    >>> round(scores["f1"], 4), scores["precision"], scores["recall"]
    (0.8889, 1.0, 0.8)
    """
    prediction_tokens = normalize_answer(prediction).split()
    truth_tokens = normalize_answer(ground_truth).split()
    overlap = sum((Counter(prediction_tokens) & Counter(truth_tokens)).values())
    if overlap == 0:
        return {"f1": 0.0, "precision": 0.0, "recall": 0.0}
    precision = overlap / len(prediction_tokens)
    recall = overlap / len(truth_tokens)
    return {"f1": 2 * precision * recall / (precision + recall), "precision": precision, "recall": recall}
