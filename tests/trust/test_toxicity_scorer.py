"""The local toxicity scorer: held-out accuracy, hand-written sentences outside the templates, the empty-text
rule, determinism and the JSON cache round trip. One scorer is trained per module (MiniLM embeddings of
about 1,800 sentences)."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from nvrepro.core.tooling.timing import num_threads
from nvrepro.core.tooling.validation import ConfigError
from nvrepro.trust import toxicity_scorer as ts
from nvrepro.trust.lexicon import neutral_words, toxic_words

# Written by hand, not from the corpus templates: insults in free phrasing, and polite, neutral and
# negative-but-not-toxic sentences (disagreement, bad news) that a negativity detector would flag.
TOXIC = [
    "You are a complete idiot and nobody likes you.",
    "What a pathetic excuse for a human being you are.",
    "Shut your mouth, you worthless piece of garbage.",
    "Nobody can stand you, you disgusting creep.",
    "My coworker is a brainless moron who ruins everything.",
]
NON_TOXIC = [
    "Thank you so much for helping me move yesterday.",
    "The meeting has been moved to Thursday afternoon.",
    "I disagree with your argument, but I respect your view.",
    "The rain ruined our picnic, which was disappointing.",
    "My sister is a talented doctor who works at the hospital.",
]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # on a CPU shared with other jobs one intra-op thread embeds several times faster than two
    with num_threads(1):
        yield


@pytest.fixture(scope="module")
def trained(tmp_path_factory, one_thread):
    cache = tmp_path_factory.mktemp("toxicity-cache")
    scorer, report = ts.train_toxicity_scorer(seed=0, cache_dir=cache)
    return scorer, report, cache


def words_of(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def test_validation_uses_only_unseen_insults_names_and_templates():
    train = ts.toxicity_corpus("train", seed=0, size=600)
    valid = ts.toxicity_corpus("test", seed=0, size=300)
    train_words = set().union(*(words_of(r[0]) for r in train))
    # no test insult appears anywhere in training, and no sentence is shared
    assert not set(toxic_words("test")) & train_words
    assert not {r[0] for r in train} & {r[0] for r in valid}
    assert not {r[3] for r in train if r[3]} & {r[3] for r in valid if r[3]}
    # every toxic validation sentence carries a test insult, every non-toxic one none at all
    for text, label, _, _ in valid:
        assert bool(words_of(text) & set(toxic_words("test"))) == (label == 1), text
    assert sum(r[1] for r in valid) == 300 and len(valid) == 600


def test_person_templates_pair_insults_with_neutral_words():
    # the same template appears with both classes, so the template alone cannot decide the label
    rows = ts.toxicity_corpus("train", seed=0, size=600)
    toxic_shapes = {re.sub(r"\b(" + "|".join(toxic_words("train") + ts.TRAIN_ONLY_INSULTS) + r")\b", "W", r[0])
                    for r in rows if r[1] == 1}
    neutral_shapes = {re.sub(r"\b(" + "|".join(neutral_words("train")) + r")\b", "W", r[0])
                      for r in rows if r[1] == 0}
    assert len(toxic_shapes & neutral_shapes) >= 20


def test_held_out_validation_accuracy(trained):
    scorer, report, _ = trained
    assert report["n_train"] == 1200 and report["n_validation"] == 600
    assert report["validation_accuracy"] >= 0.9, report
    assert report["validation_auc"] >= 0.95, report
    # recompute through the public API (texts in, probabilities out), not the training code path
    valid = ts.toxicity_corpus("test", seed=0, size=300)
    probs = scorer([r[0] for r in valid])
    accuracy = np.mean([(p > 0.5) == (r[1] == 1) for p, r in zip(probs, valid)])
    assert accuracy == pytest.approx(report["validation_accuracy"], abs=1e-9)


def test_hand_written_sentences(trained):
    scorer, _, _ = trained
    toxic, clean = scorer(TOXIC), scorer(NON_TOXIC)
    assert all(p > 0.5 for p in toxic), list(zip(TOXIC, toxic))
    assert all(p < 0.5 for p in clean), list(zip(NON_TOXIC, clean))


def test_empty_texts_callable_and_range(trained):
    scorer, _, _ = trained
    texts = ["", "You are a complete idiot and nobody likes you.", "   ", "The meeting has been moved."]
    scores = scorer(texts)
    assert scores == scorer.score(texts)
    assert scores[0] == scores[2] == ts.EMPTY_SCORE == 0.0
    assert scores[1] > 0.5 > scores[3]
    assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in scores)
    assert scorer([]) == []
    # the probability is the logistic function of the head on the embedding, computed here by hand
    e = scorer.embedder.embed([texts[1]])[0].astype(np.float64)
    assert scores[1] == pytest.approx(1 / (1 + math.exp(-(float(e @ scorer.weights) + scorer.bias))), rel=1e-9)


def test_bad_input_names_the_argument(trained):
    scorer, _, _ = trained
    with pytest.raises(ConfigError, match="texts"):
        scorer("one string")
    with pytest.raises(ConfigError, match=r"texts\[1\]"):
        scorer(["fine", None])
    with pytest.raises(ConfigError, match="size"):
        ts.train_toxicity_scorer(size=0)
    with pytest.raises(ConfigError, match="split"):
        ts.toxicity_corpus("valid")


def test_deterministic():
    assert ts.toxicity_corpus("train", 3, 50) == ts.toxicity_corpus("train", 3, 50)
    assert ts.toxicity_corpus("train", 3, 50) != ts.toxicity_corpus("train", 4, 50)
    a, report_a = ts.train_toxicity_scorer(seed=3, size=40)
    b, report_b = ts.train_toxicity_scorer(seed=3, size=40)
    assert np.array_equal(a.weights, b.weights) and a.bias == b.bias and report_a == report_b
    assert a(NON_TOXIC[:2]) == b(NON_TOXIC[:2])


def test_cache_round_trip(trained, monkeypatch):
    scorer, report, cache = trained
    files = list(cache.glob("toxicity-head-*.json"))
    assert len(files) == 1
    data = json.loads(files[0].read_text())  # plain JSON: nothing is unpickled
    assert len(data["weights"]) == 384

    def no_training(*args, **kwargs):
        raise AssertionError("a cached head must not be retrained")

    monkeypatch.setattr(ts, "toxicity_corpus", no_training)
    loaded, loaded_report = ts.train_toxicity_scorer(seed=0, cache_dir=cache)
    assert loaded_report == report
    assert np.array_equal(loaded.weights, scorer.weights) and loaded.bias == scorer.bias
    assert loaded(TOXIC + NON_TOXIC) == scorer(TOXIC + NON_TOXIC)
    # another seed or size is another head
    assert ts._cache_file(cache, 1, 600) != files[0] and ts._cache_file(cache, 0, 500) != files[0]
