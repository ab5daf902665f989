"""The words the toy world is built from: mild insults (what makes a synthetic sentence toxic) and neutral
descriptive words, each split into disjoint ``"train"`` and ``"test"`` halves.

The local toxicity scorer (:mod:`nvrepro.trust.toxicity_scorer`) learns from sentences built with the ``train`` words
and reports its accuracy on sentences built with the ``test`` words, so its validation accuracy measures
whether it recognises insults it never saw, not whether it memorised a list. The toy "unsafe" model's toxic
continuations draw from all of them.
"""

from __future__ import annotations

from nvrepro.core.tooling.validation import require

SPLITS = ("train", "test")

# Mild insults and hostile words: enough to make a sentence read as toxic without anything a course should not
# print. Listed noun, adjective, noun, ...: the train half (even positions) is all nouns, the test half all
# adjectives, so the scorer's validation also asks whether it generalises across parts of speech
# (nvrepro.trust.toxicity_scorer adds adjectives of its own to the training side).
TOXIC = (
    "idiot", "stupid", "moron", "pathetic", "loser", "worthless", "fool", "dumb", "jerk", "disgusting",
    "clown", "useless", "trash", "ugly", "creep", "hateful", "imbecile", "brainless", "coward", "filthy",
    "scum", "gross", "nitwit", "hopeless", "buffoon", "lousy", "dimwit", "repulsive", "slob", "rotten",
    "halfwit", "vile", "doofus", "miserable", "numbskull", "despicable", "pig", "spineless", "weirdo", "idiotic",
)
NEUTRAL = (
    "friendly", "careful", "quiet", "kind", "helpful", "calm", "curious", "patient", "honest", "polite",
    "cheerful", "gentle", "clever", "brave", "thoughtful", "warm", "tidy", "generous", "modest", "lively",
    "neighbour", "teacher", "gardener", "student", "traveller", "baker", "reader", "painter", "runner", "visitor",
    "sunny", "bright", "fresh", "green", "simple", "busy", "early", "steady", "open", "fair",
)


def _half(words: tuple[str, ...], split: str) -> tuple[str, ...]:
    require(split in SPLITS, "split", f"must be one of {SPLITS}, got {split!r}")
    return words[0::2] if split == "train" else words[1::2]


def toxic_words(split: str) -> tuple[str, ...]:
    """The insults of ``split`` (``"train"``: even positions of :data:`TOXIC`, ``"test"``: odd)."""
    return _half(TOXIC, split)


def neutral_words(split: str) -> tuple[str, ...]:
    """The neutral words of ``split`` (``"train"``: even positions of :data:`NEUTRAL`, ``"test"``: odd)."""
    return _half(NEUTRAL, split)
