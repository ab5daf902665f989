"""Hybrid track: the scaling experiment (smoke profile) and the exercise checkers."""

from __future__ import annotations

import math

import pytest
import torch

from nvrepro.hybrid import exercises
from nvrepro.hybrid.experiments import (FORMS, equivalence_check, saved_activation_bytes,
                                        scaling_summary, ssd_scaling)


@pytest.fixture(scope="module")
def smoke():
    return ssd_scaling("smoke", seed=0)


def test_ssd_scaling_smoke_shape(smoke):
    assert {"profile", "seed", "config", "lengths", "forms", "equivalence"} <= smoke.keys()
    assert set(smoke["forms"]) == set(FORMS)
    for data in smoke["forms"].values():
        assert data["lengths"] == smoke["lengths"]
        assert all(s > 0 for s in data["seconds"]) and all(b > 0 for b in data["saved_bytes"])
    assert smoke["equivalence"]["lengths"] == smoke["lengths"]
    assert max(smoke["equivalence"]["max_abs_err"]) < 1e-12


def test_ssd_scaling_memory_is_deterministic_and_linear(smoke):
    again = ssd_scaling("smoke", seed=0, lengths=[128], repeats=1)
    i = smoke["lengths"].index(128)
    for form in FORMS:
        assert again["forms"][form]["saved_bytes"][0] == smoke["forms"][form]["saved_bytes"][i]
    summary = scaling_summary(smoke)
    assert summary["memory_slope"]["chunked"] < 1.2
    assert summary["memory_ratio"]["naive_over_chunked"] > 1


def test_saved_activation_bytes_counts_storages_once():
    x = torch.randn(1000, requires_grad=True)  # 4000 bytes, saved by both multiplications
    assert saved_activation_bytes(lambda t: (t * t).sum(), x) == 4000


def test_equivalence_check():
    assert equivalence_check(0) < 1e-12


def test_unknown_profile():
    with pytest.raises(ValueError, match="profile"):
        ssd_scaling("huge")


def test_decay_checker():
    right = math.exp(4 * 0.5 * (-2.0 + 1.0))
    assert exercises.check_decay_prediction(right, verbose=False).ok is True
    wrong = exercises.check_decay_prediction(0.5, verbose=False)
    assert wrong.ok is False and "exp(" in wrong.message
    assert exercises.check_decay_prediction(None, verbose=False).ok is None


def _cumsum_difference(x):
    cs = torch.cumsum(x, -1)
    T = x.shape[-1]
    return (cs[..., :, None] - cs[..., None, :]).masked_fill(~torch.tril(torch.ones(T, T, dtype=torch.bool)), -math.inf)


def test_segsum_checker(capsys):
    assert exercises.check_segsum(exercises.reference_segsum).ok is True
    assert "correct" in capsys.readouterr().out
    unstable = exercises.check_segsum(_cumsum_difference, verbose=False)
    assert unstable.ok is False and "stable" in unstable.message
    inclusive = exercises.check_segsum(lambda x: _cumsum_difference(x) + x[..., None, :], verbose=False)
    assert inclusive.ok is False and "x[j]" in inclusive.message
    no_mask = exercises.check_segsum(lambda x: _cumsum_difference(x).nan_to_num(neginf=0.0), verbose=False)
    assert no_mask.ok is False and "-inf" in no_mask.message

    def not_done(x):
        raise NotImplementedError

    assert exercises.check_segsum(not_done, verbose=False).ok is None


def test_segsum_reference_matches_loop_and_ssd():
    from nvrepro.core.lm.layers.ssd import _segsum

    x = torch.randn(2, 9, dtype=torch.float64)
    ref = exercises.segsum_loop(x)
    assert torch.equal(torch.isinf(ref), torch.isinf(_segsum(x)))
    torch.testing.assert_close(exercises.reference_segsum(x), ref)


def test_chunk_size_checker():
    assert exercises.check_chunk_size_effect(False, verbose=False).ok is True
    wrong = exercises.check_chunk_size_effect(True, verbose=False)
    assert wrong.ok is False and "does not change" in wrong.message
    assert exercises.check_chunk_size_effect("no", verbose=False).ok is False
