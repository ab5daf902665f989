"""The chunk/neighbour overlap against hand-counted and naively computed values, and on a tiny
database where one held-out document is a copy of a database document and another is unrelated."""

import numpy as np
import pytest

from nvrepro.core.tooling.validation import ConfigError
from nvrepro.retro.overlap import OverlapConfig, chunk_overlap, split_by_overlap

PAD = 258


def ids(text: str, length: int | None = None) -> list[int]:
    out = list(text.encode())
    return out + [PAD] * ((length or len(out)) - len(out))


def naive_overlap(chunk: str, neighbours: list[str], n: int) -> float:
    """Share of the positions of ``chunk`` whose n-character string occurs in some neighbour."""
    starts = range(len(chunk) - n + 1)
    if not starts:
        return float("nan")
    return sum(any(chunk[i:i + n] in nb for nb in neighbours) for i in starts) / len(starts)


def test_hand_counted_examples():
    # "abcdefgh" has six 3-grams; "xxabcdyy" holds abc and bcd: 2/6; a pad splits "cde|fgh": none across it
    got = chunk_overlap([ids("abcdefgh")], [[ids("xxabcdyy"), ids("zzzzzzzz")]], 3, PAD)
    assert got[0] == pytest.approx(2 / 6)
    split = np.array([ids("cd") + [PAD] + ids("efgh")])
    assert chunk_overlap([ids("abcdefgh")], [split], 3, PAD)[0] == pytest.approx(2 / 6)  # efg, fgh only
    # an exact copy scores 1, text with no common character 0, a chunk shorter than n is undefined
    assert chunk_overlap([ids("in the beginning")], [[ids("so in the beginning God")]], 8, PAD)[0] == 1.0
    assert chunk_overlap([ids("abcdefgh")], [[ids("12345678")]], 2, PAD)[0] == 0.0
    assert np.isnan(chunk_overlap([ids("ab", 8)], [[ids("ab")]], 3, PAD)[0])


def test_matches_a_naive_string_search():
    rng = np.random.default_rng(0)
    alphabet = np.array(list("abcd "))
    for _ in range(50):
        chunk = "".join(rng.choice(alphabet, rng.integers(0, 17)))
        nbs = ["".join(rng.choice(alphabet, 32)) for _ in range(2)]
        n = int(rng.integers(1, 6))
        got = chunk_overlap([ids(chunk, 16)], [[ids(nb) for nb in nbs]], n, PAD)[0]
        want = naive_overlap(chunk, nbs, n)
        assert (np.isnan(got) and np.isnan(want)) or got == pytest.approx(want)


def test_split_and_errors():
    from nvrepro.retro.overlap import DocumentOverlap

    docs = [DocumentOverlap(3, 0.9, np.ones(2)), DocumentOverlap(5, 0.1, np.zeros(2)),
            DocumentOverlap(7, float("nan"), np.full(1, np.nan)), DocumentOverlap(9, 0.5, np.ones(1))]
    assert split_by_overlap(docs, 0.5) == ([3, 9], [5, 7])
    with pytest.raises(ConfigError, match="threshold"):
        OverlapConfig(threshold=0.0)
    with pytest.raises(ConfigError, match="ngram"):
        chunk_overlap([ids("abc")], [[ids("abc")]], 0, PAD)
    with pytest.raises(ConfigError, match="neighbours"):
        chunk_overlap([ids("abc")], [ids("abc")], 2, PAD)


def test_a_copied_document_overlaps_and_an_unrelated_one_does_not(tmp_path):
    pytest.importorskip("faiss")
    pytest.importorskip("sentence_transformers")
    from nvrepro.core.data.corpus import split_indices
    from nvrepro.retro.data import RetroDataModule
    from nvrepro.retro.overlap import document_overlap

    from .conftest import DOCS, write_db_yaml

    docs = list(DOCS)
    assert split_indices(8, 0.25, 0)[1] == [2, 4]  # held out with seed 0
    docs[2] = docs[6]  # a copy of a database document
    docs[4] = "Qzx vvj kkp wwy 9071 3358 ##@@ ~~^^ Qzx vvj kkp wwy"  # shares no 8 bytes with any document
    dm = RetroDataModule(write_db_yaml(tmp_path, docs, chunk_len=16), seq_chunks=2)
    out = document_overlap(dm.open(), cfg=OverlapConfig(ngram=8, threshold=0.5))
    assert [o.document for o in out] == [2, 4]
    assert out[0].overlap == 1.0 and out[1].overlap == 0.0
    assert split_by_overlap(out, 0.5) == ([2], [4])
