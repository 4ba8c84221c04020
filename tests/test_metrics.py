"""The F1 metric: SQuAD normalisation and exact precision/recall/F1 values."""

import subprocess
import sys
from pathlib import Path

import pytest

from flip_reward.core.metrics import f1_score, normalize_answer

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Cat", "cat"),
        ("  an apple,  a PEAR; the plum!  ", "apple pear plum"),
        ("theory of anthems", "theory of anthems"),
        ("don't stop-believing", "dont stopbelieving"),
        ("tabs\tand\nnewlines", "tabs and newlines"),
        ("Ünïcode “quotes” stay", "ünïcode “quotes” stay"),
        ("", ""),
        ("the a an", ""),
    ],
)
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


@pytest.mark.parametrize(
    ("prediction", "truth", "expected"),
    [
        ("Write a poem about the sea", "write a poem about the sea", (1.0, 1.0, 1.0)),
        ("write poem sea", "write a short poem about the sea", (2 * 1.0 * 0.6 / 1.6, 1.0, 0.6)),
        ("write write write", "write a poem", (0.4, 1 / 3, 0.5)),
        ("apple banana", "cherry", (0.0, 0.0, 0.0)),
        ("", "anything", (0.0, 0.0, 0.0)),
        ("anything", "", (0.0, 0.0, 0.0)),
        ("the", "the", (0.0, 0.0, 0.0)),
        ("A B C D", "b c e", (2 / 3, 2 / 3, 2 / 3)),  # "A" is an article
    ],
)
def test_f1_score_values(prediction, truth, expected):
    scores = f1_score(prediction, truth)
    assert (scores["f1"], scores["precision"], scores["recall"]) == pytest.approx(expected, abs=1e-12)


def test_f1_is_symmetric_and_bounded():
    pairs = [("write a haiku about rain", "compose haiku on rain please"), ("x y z", "z z y"), ("a", "b")]
    for left, right in pairs:
        forward, backward = f1_score(left, right), f1_score(right, left)
        assert forward["f1"] == backward["f1"]
        assert forward["precision"] == backward["recall"]
        assert 0.0 <= forward["f1"] <= 1.0


def test_multiset_overlap_counts_duplicates_once_per_occurrence():
    assert f1_score("sea sea sea", "sea sea") == {"f1": 0.8, "precision": 2 / 3, "recall": 1.0}


def test_repo_root_metrics_module_reexports():
    code = (
        "from metrics import f1_score, normalize_answer; print(f1_score('x b', 'b c')['f1'], normalize_answer('The X'))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0.5", "x"]
