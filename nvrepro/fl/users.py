"""Deterministic synthetic private users, and the public text next to them (arXiv 2305.12132, Sec. 3).

The paper trains on-device LMs on users' private text and asks how much public text helps. Here a
*user* writes sentences from a handful of topics (:data:`TOPICS`, each a set of templates with
slots such as ``{name}`` or ``{place}``). Every user has

* a private vocabulary: per slot a few invented words (names, places, pets, ...) built from
  syllables with a seeded numpy rng, distinct from every other user's and from the public words;
* a topic mixture drawn from a Dirichlet with a small concentration, so users write about
  different things (non-IID by construction, in both topics and words).

A slot is filled with one of the user's private words with probability ``private_rate`` (else a
public word). Public text (:func:`public_texts`) is the World English Bible (``web_bible``) plus
sentences from the same templates filled with public words only, so no private word ever appears
in public text (checked in the tests, Bible included).

Everything is a pure function of ``(seed, user_id)``: user ``k``'s words depend on users
``0..k-1`` only through the uniqueness check, so a user is the same whatever ``num_users`` is.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

from nvrepro.core.tooling.validation import require, require_positive_int

# Templates per topic; slots are {name}, {place}, {pet}, {food}, {team}.
TOPICS: dict[str, tuple[str, ...]] = {
    "family": (
        "I called {name} this morning and we talked about {place}.",
        "{name} is coming over for dinner with {name}.",
        "Tell {name} that I miss the old days in {place}.",
        "My sister {name} finally moved to {place}.",
    ),
    "food": (
        "We should cook {food} again this weekend.",
        "The {food} at {place} was better than last time.",
        "{name} brought {food} to the party.",
        "I am craving {food} right now.",
    ),
    "pets": (
        "{pet} chewed my shoes again.",
        "Taking {pet} for a walk around {place}.",
        "{name} says {pet} needs a bath.",
        "{pet} slept on the couch all day.",
    ),
    "sports": (
        "Did you see {team} play last night?",
        "{team} will win the cup this year.",
        "Watching {team} with {name} at {place}.",
        "Tickets for {team} are sold out.",
    ),
    "travel": (
        "Our train to {place} leaves at noon.",
        "I booked a room in {place} for the summer.",
        "{name} and I are driving to {place} tomorrow.",
        "The weather in {place} is lovely today.",
    ),
}
SLOTS = ("name", "place", "pet", "food", "team")

# Public fillers: ordinary words anyone may write (also used inside users' sentences).
PUBLIC_WORDS: dict[str, tuple[str, ...]] = {
    "name": ("Anna", "Peter", "Maria", "David", "Sarah", "Thomas", "Laura", "Daniel"),
    "place": ("London", "the city", "the beach", "the park", "Chicago", "the lake", "Berlin"),
    "pet": ("the dog", "the cat", "our puppy", "the kitten", "the rabbit"),
    "food": ("pizza", "pasta", "soup", "pancakes", "tacos", "curry", "salad"),
    "team": ("the Lions", "the Eagles", "the Tigers", "the Rovers", "the Giants"),
}

# Invented words are syllable strings; private words per slot for each user.
SYLLABLES = ("zor", "kel", "vyn", "qua", "mib", "trox", "yul", "fen", "drav", "ix", "pol", "gur",
             "sna", "wex", "lom", "brik", "ost", "jav", "nuz", "cyr")
PRIVATE_WORDS_PER_SLOT = {"name": 3, "place": 2, "pet": 1, "food": 2, "team": 1}
_SLOT_RE = re.compile(r"\{(\w+)\}")
_WORD_RE = re.compile(r"[A-Za-z]+")


@dataclass(frozen=True)
class UserProfile:
    """One synthetic user: private words per slot and a topic mixture (over :data:`TOPICS`)."""

    user_id: int
    words: dict[str, tuple[str, ...]]
    topic_weights: tuple[float, ...]

    @property
    def vocabulary(self) -> frozenset[str]:
        """Every private word of this user."""
        return frozenset(w for ws in self.words.values() for w in ws)


def _invent_word(rng: np.random.Generator) -> str:
    n = int(rng.integers(2, 5))  # 2-4 syllables: 20^2 + 20^3 + 20^4 = 168,400 possible words
    return "".join(SYLLABLES[i] for i in rng.integers(0, len(SYLLABLES), size=n)).capitalize()


def _check_seed(seed: int) -> None:
    require(isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0, "seed",
            f"must be a non-negative integer, got {seed!r}")


# Users of each population so far, with every word they took: grown on demand, never rebuilt.
_POPULATIONS: dict[int, tuple[list[UserProfile], set[str]]] = {}
MAX_USERS = 10_000  # a quarter of the invented-word space at most, so a user's draws rarely collide


def _population(seed: int, size: int) -> list[UserProfile]:
    """Users ``0..size-1`` of population ``seed``; user k's words avoid users 0..k-1 and every public word."""
    if seed not in _POPULATIONS:  # no invented word may be a public word, the Bible's included
        public = {w.lower() for ws in PUBLIC_WORDS.values() for w in ws} | {w.lower() for w in words_of(_bible(None))}
        _POPULATIONS[seed] = ([], public)
    users, taken = _POPULATIONS[seed]
    for user_id in range(len(users), size):
        rng = np.random.default_rng([seed, user_id])
        words = {}
        for slot in SLOTS:
            chosen: list[str] = []
            while len(chosen) < PRIVATE_WORDS_PER_SLOT[slot]:
                word = _invent_word(rng)
                if word.lower() not in taken:
                    taken.add(word.lower())
                    chosen.append(word)
            words[slot] = tuple(chosen)
        weights = rng.dirichlet(np.full(len(TOPICS), 0.3))
        users.append(UserProfile(user_id, words, tuple(float(w) for w in weights)))
    return users


def user_profile(user_id: int, seed: int = 0) -> UserProfile:
    """User ``user_id`` of population ``seed`` (the same whatever the population size)."""
    require(isinstance(user_id, int) and not isinstance(user_id, bool) and 0 <= user_id < MAX_USERS, "user_id",
            f"must be an integer in [0, {MAX_USERS}), got {user_id!r}")
    _check_seed(seed)
    return _population(seed, user_id + 1)[user_id]


def _fill(template: str, rng: np.random.Generator, pick) -> str:
    return _SLOT_RE.sub(lambda m: pick(m.group(1), rng), template)


def user_texts(user_id: int, num_sentences: int, seed: int = 0, private_rate: float = 0.7) -> list[str]:
    """``num_sentences`` sentences written by user ``user_id`` of population ``seed``.

    Topics are drawn from the user's mixture; each slot gets one of the user's private words with
    probability ``private_rate``, else a public word. Deterministic in all arguments.
    """
    require_positive_int(num_sentences, "num_sentences")
    require(0.0 <= private_rate <= 1.0, "private_rate", f"must be in [0, 1], got {private_rate!r}")
    profile = user_profile(user_id, seed)
    rng = np.random.default_rng([seed, user_id, 1])
    topics = list(TOPICS)

    def pick(slot: str, r: np.random.Generator) -> str:
        pool = profile.words[slot] if r.random() < private_rate else PUBLIC_WORDS[slot]
        return pool[int(r.integers(len(pool)))]

    out = []
    for t in rng.choice(len(topics), size=num_sentences, p=np.asarray(profile.topic_weights)):
        templates = TOPICS[topics[int(t)]]
        out.append(_fill(templates[int(rng.integers(len(templates)))], rng, pick))
    return out


@functools.lru_cache(maxsize=2)
def _bible(max_documents: int | None) -> tuple[str, ...]:
    from nvrepro.core.data.corpus import load_corpus

    return tuple(load_corpus("web_bible", max_documents=max_documents))


def public_texts(num_sentences: int = 1000, seed: int = 0, include_bible: bool = True,
                 max_bible_documents: int | None = None) -> list[str]:
    """Public text: the Bible chapters (``web_bible``, optionally the first ``max_bible_documents``)
    followed by ``num_sentences`` template sentences over uniformly drawn topics, slots filled with
    :data:`PUBLIC_WORDS` only. No user's private word appears in it."""
    require_positive_int(num_sentences, "num_sentences")
    _check_seed(seed)
    rng = np.random.default_rng([seed, 2**31])
    templates = [t for ts in TOPICS.values() for t in ts]

    def pick(slot: str, r: np.random.Generator) -> str:
        return PUBLIC_WORDS[slot][int(r.integers(len(PUBLIC_WORDS[slot])))]

    generated = [_fill(templates[int(i)], rng, pick) for i in rng.integers(len(templates), size=num_sentences)]
    return (list(_bible(max_bible_documents)) if include_bible else []) + generated


def words_of(texts) -> set[str]:
    """The set of alphabetic words in ``texts`` (case kept)."""
    return {w for text in texts for w in _WORD_RE.findall(text)}
