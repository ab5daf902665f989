"""Notebook 01 (Mamba-2's SSD): the scaling experiment (smoke profile), its claim, and the exercise checkers."""

from __future__ import annotations

import math

import pytest
import torch

from nvrepro.hybrid import exercises
from nvrepro.core.tooling.validation import ConfigError
from nvrepro.hybrid.mamba2_ssd import (DECAY_DEFAULTS, FORMS, SSD_SCALING, chunk_blocks, decay_layout, decay_matrix,
                                       decay_widget, equivalence_check, influence_reach, saved_activation_bytes,
                                       scaling_summary, show_decay, ssd_scaling)


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
    one_too_many = exercises.check_decay_prediction(math.exp(5 * 0.5 * (-2.0 + 1.0)), verbose=False)
    assert one_too_many.ok is False and "one decay too many" in one_too_many.message
    above_one = exercises.check_decay_prediction(2.0, verbose=False)
    assert above_one.ok is False and "above 1" in above_one.message


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
    from nvrepro.core.lm.layers.ssd import segsum

    x = torch.randn(2, 9, dtype=torch.float64)
    ref = exercises.segsum_loop(x)
    assert torch.equal(torch.isinf(ref), torch.isinf(segsum(x)))
    torch.testing.assert_close(exercises.reference_segsum(x), ref)


def test_chunk_size_checker():
    assert exercises.check_chunk_size_effect(False, verbose=False).ok is True
    wrong = exercises.check_chunk_size_effect(True, verbose=False)
    assert wrong.ok is False and "does not change" in wrong.message
    assert exercises.check_chunk_size_effect("no", verbose=False).ok is False


# --- the claim of the ssd_scaling figure ------------------------------------------------------

def ssd_metrics(*, err=2e-16, quadratic_bytes=(1000, 4000), chunked_times=(0.010, 0.011, 0.012),
                naive_times=(1.0, 1.1, 0.9)) -> dict:
    """Hand-made ssd_scaling metrics at lengths 1024 and 2048 (JSON-plain, as the sidecar holds).

    Activation memory: recurrence and chunked double with the length (log-log slope exactly 1),
    the quadratic form's given bytes (default x4: slope exactly 2)."""
    def form(saved, times):
        return {"lengths": [1024, 2048], "saved_bytes": list(saved), "seconds": [0.0, sorted(times)[len(times) // 2]],
                "repeat_seconds": [[0.0], list(times)]}
    return {"forms": {"naive": form((8000, 16000), naive_times), "quadratic": form(quadratic_bytes, naive_times),
                      "chunked": form((1000, 2000), chunked_times)},
            "equivalence": {"lengths": [1024, 2048], "max_abs_err": [1e-16, err]}}


def test_ssd_claim_holds_on_exact_parts_and_separated_repeats():
    judgement = SSD_SCALING.judge(ssd_metrics())
    assert judgement.held is True
    timing = judgement.to_dict()["evidence"]["parts"]["chunked faster than the recurrence"]
    # 3 vs 3 repeats, completely separated: one ordering of C(6, 3) = 20 equally likely ones.
    assert timing["evidence"]["p_greater"] == pytest.approx(1 / 20)
    assert timing["evidence"]["median_ratio"] == pytest.approx(1.0 / 0.011)


@pytest.mark.parametrize("change, part", [
    (dict(err=1e-6), "chunked equals the recurrence"),
    # x2.462 per doubling: slope log2(2.462) = 1.30 < 1.5, not clearly superlinear.
    (dict(quadratic_bytes=(1000, 2462)), "quadratic memory superlinear"),
    # slope log2(1000 / 300) = 1.74, but at 2048 below chunked's 2000 bytes: chunked no longer the least.
    (dict(quadratic_bytes=(300, 1000)), "chunked uses the least activation memory"),
    (dict(chunked_times=(2.0, 2.1, 2.2)), "chunked faster than the recurrence"),
])
def test_ssd_claim_fails_on_the_part_that_fails(change, part):
    judgement = SSD_SCALING.judge(ssd_metrics(**change))
    assert judgement.held is False
    parts = judgement.to_dict()["evidence"]["parts"]
    assert [name for name, p in parts.items() if p["held"] is False] == [part]


def test_ssd_claim_is_undecided_with_one_timed_repeat():
    # 1 vs 1 repeat: the best possible one-sided p is 1/2, never below 0.05.
    judgement = SSD_SCALING.judge(ssd_metrics(chunked_times=(0.01,), naive_times=(1.0,)))
    assert judgement.held is None
    timing = judgement.to_dict()["evidence"]["parts"]["chunked faster than the recurrence"]
    assert timing["evidence"]["p_greater"] == 0.5


def test_ssd_smoke_run_records_every_timed_repeat(smoke):
    for data in smoke["forms"].values():
        assert [len(r) for r in data["repeat_seconds"]] == [smoke["config"]["repeats"]] * len(data["lengths"])
        assert data["seconds"] == [sorted(r)[len(r) // 2] for r in data["repeat_seconds"]]


# --- the decay explorer: the mask L and the chunked algorithm's blocks ------------------------

def test_decay_matrix_closed_form():
    a = -torch.rand(11, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    L = decay_matrix(a)
    for i in range(11):
        for j in range(11):
            want = math.exp(sum(a[k].item() for k in range(j + 1, i + 1))) if i >= j else 0.0
            assert L[i, j].item() == pytest.approx(want, rel=1e-12, abs=1e-300)
    # constant decay: L[i, j] = exp((i - j) a) below the diagonal
    Lc = decay_matrix(torch.full((6,), -0.3, dtype=torch.float64))
    assert Lc[5, 1].item() == pytest.approx(math.exp(-1.2)) and Lc[1, 5].item() == 0.0


def test_decay_matrix_bad_input():
    with pytest.raises(ConfigError, match="log_decay"):
        decay_matrix(torch.tensor([-0.1, 0.2]))
    with pytest.raises(ConfigError, match="log_decay"):
        decay_matrix(torch.zeros(2, 2))


@pytest.mark.parametrize("length, q", [(64, 16), (21, 8), (5, 8), (7, 1)])
def test_chunk_blocks_tile_the_lower_triangle(length, q):
    blocks = chunk_blocks(length, q)
    cover = torch.zeros(length, length, dtype=torch.int64)
    for b in blocks:
        (r0, r1), (c0, c1) = b["rows"], b["cols"]
        cover[r0:r1, c0:c1] += 1
        assert (b["kind"] == "diagonal") == (b["rows"] == b["cols"])
    lower = torch.ones(length, length, dtype=torch.int64).tril()
    # every (i, j) with j <= i lies in exactly one block; blocks above the diagonal would be wasted work
    assert torch.equal(cover.tril(), lower) and cover.triu(q).sum() == 0
    c = math.ceil(length / q)
    assert sum(b["kind"] == "diagonal" for b in blocks) == c
    assert sum(b["kind"] == "off-diagonal" for b in blocks) == c * (c - 1) // 2


def test_off_diagonal_blocks_factor_through_the_state():
    # Block (ci > cj) of L = exp(decay from row chunk start to i) x exp(decay over the chunks
    # strictly between) x exp(decay from j to the end of its chunk): an outer product, rank one,
    # which is why the chunked algorithm passes a state instead of forming the block.
    q, a = 4, -torch.rand(14, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    L = decay_matrix(a)
    for b in chunk_blocks(14, q):
        if b["kind"] != "off-diagonal":
            continue
        (r0, r1), (c0, c1) = b["rows"], b["cols"]
        into_row = torch.exp(torch.stack([a[r0:i + 1].sum() for i in range(r0, r1)]))
        out_of_col = torch.exp(torch.stack([a[j + 1:c1].sum() for j in range(c0, c1)]))
        between = torch.exp(a[c1:r0].sum())
        torch.testing.assert_close(L[r0:r1, c0:c1], between * into_row[:, None] * out_of_col[None, :])


def test_influence_reach_closed_form():
    assert influence_reach(0.5, 0.01) == 7  # 0.5**6 = 0.0156 >= 0.01 > 0.5**7 = 0.0078
    assert influence_reach(0.5, 0.25) == 3  # 0.5**2 = 0.25 is not below 0.25
    assert influence_reach(math.exp(-0.1), 0.01) == 47  # ln(100) / 0.1 = 46.05
    assert influence_reach(1.0) == math.inf
    with pytest.raises(ConfigError, match="decay_per_step"):
        influence_reach(1.5)
    with pytest.raises(ConfigError, match="threshold"):
        influence_reach(0.5, 0.0)


def test_decay_layout_defaults_and_reach():
    lay = decay_layout()
    assert lay["decay_per_step"] == pytest.approx(math.exp(DECAY_DEFAULTS["dt"] * DECAY_DEFAULTS["A"]))
    k, L = lay["reach"], lay["L"]
    assert L[k, 0] < lay["threshold"] <= L[k - 1, 0]
    assert lay["half_life"] == pytest.approx(math.log(2) / 0.1)
    # l = 64, Q = 16: the 4 diagonal blocks hold 4 * 16 * 17 / 2 = 544 of the 64 * 65 / 2 = 2080 entries
    assert lay["carried_share"] == pytest.approx(1 - 544 / 2080)
    assert lay["reach_chunks"] == math.ceil(k / 16)
    assert -16 <= DECAY_DEFAULTS["A"] <= -1  # inside Mamba-2's init range of A
    for bad in (dict(A=0.5), dict(dt=0.0), dict(chunk_size=0), dict(length=2.5)):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            decay_layout(**bad)


def test_decay_plot_and_callback(capsys, monkeypatch):
    import matplotlib.pyplot as plt

    from nvrepro.hybrid.figures import plot_decay_matrix

    fig = plot_decay_matrix(decay_layout(A=-2.0, dt=0.5, chunk_size=4, length=16))
    assert len(fig.axes) == 3  # matrix, its colour bar, the decay curve
    plt.close(fig)
    monkeypatch.setattr(plt, "show", lambda *a, **k: plt.close("all"))
    show_decay()
    out = capsys.readouterr().out
    assert "exp(dt*A)" in out and "diagonal blocks" in out
    assert decay_widget() is not None
