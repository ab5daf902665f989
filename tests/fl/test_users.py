"""Synthetic users: deterministic, non-IID, and their private words never in public text."""

from collections import Counter

import numpy as np
import pytest

from nvrepro.core.tooling.validation import ConfigError
from nvrepro.fl.users import PUBLIC_WORDS, public_texts, user_profile, user_texts, words_of


def test_users_are_deterministic_and_independent_of_population_size():
    assert user_texts(3, 20, seed=1) == user_texts(3, 20, seed=1)
    assert user_texts(3, 20, seed=1) != user_texts(3, 20, seed=2)
    assert user_profile(70, seed=0) == user_profile(70, seed=0)


def test_private_vocabularies_are_disjoint_and_users_are_non_iid():
    vocabs = [user_profile(u).vocabulary for u in range(30)]
    for i in range(30):
        for j in range(i + 1, 30):
            assert not vocabs[i] & vocabs[j]
    # word distributions differ: total variation between users' unigram frequencies is large
    counts = [Counter(w for t in user_texts(u, 200) for w in t.split()) for u in range(6)]
    for i in range(6):
        for j in range(i + 1, 6):
            vocab = set(counts[i]) | set(counts[j])
            p = np.array([counts[i][w] for w in vocab]) / sum(counts[i].values())
            q = np.array([counts[j][w] for w in vocab]) / sum(counts[j].values())
            assert 0.5 * np.abs(p - q).sum() > 0.2
    # and topics: each user's mixture is far from uniform
    assert all(max(user_profile(u).topic_weights) > 0.3 for u in range(6))


def test_no_private_word_in_public_text():
    public = words_of(public_texts(500, seed=0))
    assert len(public) > 10_000  # the Bible is in
    public_lower = {w.lower() for w in public}
    private = set().union(*(user_profile(u).vocabulary for u in range(200)))
    assert not {w.lower() for w in private} & public_lower
    # the generated public sentences use the public fillers
    generated = words_of(public_texts(200, include_bible=False))
    assert {"pizza", "London"} <= generated


def test_user_texts_mix_private_and_public_words():
    text = " ".join(user_texts(0, 300))
    assert any(w in text for w in user_profile(0).vocabulary)
    assert any(w in text for ws in PUBLIC_WORDS.values() for w in ws)
    assert all(w not in " ".join(user_texts(0, 50, private_rate=0.0)) for w in user_profile(0).vocabulary)


@pytest.mark.parametrize("kwargs, field", [({"num_sentences": 0}, "num_sentences"),
                                           ({"num_sentences": 5, "seed": -1}, "seed"),
                                           ({"num_sentences": 5, "private_rate": 2.0}, "private_rate")])
def test_errors_name_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        user_texts(0, **kwargs)
