"""Answer metrics with the standard normalisation of SQuAD (Rajpurkar et al. 2016), which most
open-domain QA papers, RankRAG and InstructRetro among them, report.

``normalize_answer``: lowercase, drop ASCII punctuation, drop the articles *a*, *an*, *the*,
collapse whitespace. ``exact_match``: 1.0 when the normalised strings are equal. ``token_f1``: the
harmonic mean of precision and recall of the normalised tokens, counted as a multiset. With
several gold answers a prediction scores the best of them. Following SQuAD 2.0, an empty
normalised answer scores 1.0 against an empty gold and 0.0 against anything else.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Iterable

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """``text`` lowercased, without punctuation or articles, single-spaced."""
    if not isinstance(text, str):
        raise TypeError(f"answer: expected a string, got {type(text).__name__}")
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _golds(gold: str | Iterable[str]) -> list[str]:
    golds = [gold] if isinstance(gold, str) else list(gold)
    if not golds:
        raise ValueError("gold: at least one reference answer is needed")
    return golds


def exact_match(prediction: str, gold: str | Iterable[str]) -> float:
    """1.0 if ``prediction`` equals a gold answer after :func:`normalize_answer`, else 0.0."""
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(g) for g in _golds(gold)))


def _f1(pred_tokens: list[str], gold_tokens: list[str]) -> float:
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    common = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred_tokens), common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, gold: str | Iterable[str]) -> float:
    """Token-level F1 of ``prediction`` against the best-matching gold answer (normalised)."""
    pred = normalize_answer(prediction).split()
    return max(_f1(pred, normalize_answer(g).split()) for g in _golds(gold))
