"""The RETRO study's claims on hand-made metrics, its exercises, and its smoke run's shape."""

import numpy as np
import pytest

from nvrepro.core.lm.layers.chunked_cross_attention import shifted_chunk_of
from nvrepro.retro import study
from nvrepro.retro.study_exercises import check_first_position, check_overlap_prediction, check_shift


def metrics(gpt_losses, retro_losses, overlap, rep_gpt=(0.5, 0.6, 0.4), rep_retro=(0.2, 0.3, 0.1)):
    """Hand-made metrics: one token per document, so a document's loss is its nll."""
    arm = lambda losses: {"nll": list(losses), "count": [1] * len(losses)}  # noqa: E731
    return {"widths": {"64": {"gpt": arm(gpt_losses), "retro": arm(retro_losses)}}, "main_width": 64,
            "documents": list(range(len(gpt_losses))), "overlap": list(overlap), "overlap_threshold": 0.5,
            "generation": {"repetition": {"gpt": list(rep_gpt), "retro": list(rep_retro)}}}


def test_claims_follow_the_intervals():
    rng = np.random.default_rng(0)
    gpt = 2.0 + rng.normal(0, 0.05, 12)
    overlap = [0.9] * 6 + [0.1] * 6
    helped = gpt - np.r_[np.full(6, 0.5), np.full(6, 0.05)] + rng.normal(0, 0.01, 12)
    m = metrics(gpt, helped, overlap)
    assert study.PERPLEXITY.judge(m).held is True
    assert study.OVERLAP.judge(m).held is True
    assert study.REPETITION.judge(m).held is True
    hurt = metrics(gpt, gpt + 0.3, overlap, rep_gpt=(0.1, 0.2, 0.1), rep_retro=(0.6, 0.7, 0.8))
    assert study.PERPLEXITY.judge(hurt).held is False and study.REPETITION.judge(hurt).held is False
    flat = metrics(gpt, gpt - 0.2 + rng.normal(0, 0.01, 12), overlap)  # the same gain in both groups
    assert study.OVERLAP.judge(flat).held in (False, None)
    assert study.OVERLAP.judge(metrics(gpt, helped, [0.1] * 12)).held is None  # no near-duplicate group


def test_exercise_checkers_use_the_models_own_causality(capsys):
    assert check_first_position(None).ok is None
    assert check_first_position(2 * 64 + 63, chunk=2, chunk_len=64).ok is True
    assert check_first_position(2 * 64, chunk=2, chunk_len=64).ok is False
    assert check_shift(shifted_chunk_of).ok is True
    assert check_shift(lambda p, m: p // m).ok is False  # no shift: sees its own chunk's neighbours
    assert check_overlap_prediction(None, {}).ok is None


def test_width_overrides_and_profiles():
    assert study.width_overrides(96) == {"d_model": 96, "attention": {"n_heads": 3, "n_kv_heads": 3, "head_dim": 32},
                                         "ffn": {"hidden": 384}}
    with pytest.raises(ValueError, match="d_model"):
        study.width_overrides(100)
    with pytest.raises(Exception, match="profile"):
        study.plan("huge")
