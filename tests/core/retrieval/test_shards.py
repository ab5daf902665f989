"""Shards on disk against the arrays they were cut from; exact search over shards against numpy."""

import numpy as np
import pytest

from nvrepro.core.retrieval.index import exact_search_shards
from nvrepro.core.retrieval.shards import ShardedArray, write_shards


def test_shards_hold_the_rows_in_order_whatever_the_batches(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((103, 5)).astype(np.float32)
    ids = np.arange(103)
    cuts = [0, 7, 8, 50, 51, 103]  # uneven batches, one of a single row
    batches = ({"x": x[a:b], "id": ids[a:b]} for a, b in zip(cuts, cuts[1:]))
    assert write_shards(tmp_path, batches, shard_size=25) == [25, 25, 25, 25, 3]
    arr = ShardedArray(tmp_path, "x")
    assert len(arr) == 103 and arr.shape == (103, 5) and len(arr.paths) == 5
    np.testing.assert_array_equal(arr.load(), x)
    np.testing.assert_array_equal(ShardedArray(tmp_path, "id").load(), ids)
    rows = rng.permutation(103)[:40]
    np.testing.assert_array_equal(arr.take(rows), x[rows])  # order as asked, across shards
    assert [o for o, _ in arr.shards()] == [0, 25, 50, 75, 100]
    with pytest.raises(IndexError, match="rows"):
        arr.take([103])
    with pytest.raises(ValueError, match="different lengths"):
        write_shards(tmp_path / "bad", [{"a": np.zeros(2), "b": np.zeros(3)}], 4)
    with pytest.raises(FileNotFoundError, match="no shards"):
        ShardedArray(tmp_path, "nothing")


def test_exact_search_over_shards_equals_one_numpy_search(tmp_path):
    rng = np.random.default_rng(1)
    base = rng.standard_normal((500, 16)).astype(np.float32)
    queries = rng.standard_normal((20, 16)).astype(np.float32)
    write_shards(tmp_path, [{"v": base}], shard_size=64)
    scores, ids = exact_search_shards(ShardedArray(tmp_path, "v").shards(), queries, 7)
    sims = queries @ base.T
    expected = np.argsort(-sims, axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(ids, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(sims, expected, 1), rtol=1e-6)
