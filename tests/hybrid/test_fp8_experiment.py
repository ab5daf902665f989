"""The FP8 study of notebook 04: its smoke run, gap arithmetic, 8B exclusion plan and checkers."""

import math

import pytest
import torch

from nvrepro.core.lm.config import model_config_from_yaml
from nvrepro.hybrid import exercises
from nvrepro.hybrid.fp8_experiment import (FP8_LOSS_GAP, FP8_UNDERFLOW, NEMOTRON_8B, backend_agreement,
                                           exclusion_plan, fp8_training, loss_gaps, mean_flushed, moving_average)


@pytest.fixture(scope="module")
def smoke():
    return fp8_training("smoke", seed=0)


def test_smoke_run_trains_four_paired_arms(smoke):
    arms = smoke["arms"]
    assert list(arms) == ["bf16", "fp8_recipe", "fp8_all", "fp8_delayed"]
    steps = smoke["config"]["trainer"]["max_steps"]
    assert all(len(r["loss"]) == steps and all(math.isfinite(v) for v in r["loss"]) for r in arms.values())
    assert arms["bf16"]["loss"][0] == pytest.approx(math.log(260), rel=0.01)  # uniform over 260 bytes at init
    n_layers = len(smoke["config"]["model"]["pattern"])
    fp8_layers = {int(n.split(".")[1]) for n in arms["fp8_recipe"]["fp8_linears"]}
    assert fp8_layers == set(range(1, n_layers - 1))  # the YAML's N = 1 at both ends
    assert len(arms["fp8_all"]["fp8_linears"]) > len(arms["fp8_recipe"]["fp8_linears"]) and not arms["bf16"]["fp8_linears"]
    # FP8 rounding changes the numbers, but only slightly at this size
    assert arms["fp8_recipe"]["loss"] != arms["bf16"]["loss"]
    assert arms["fp8_recipe"]["loss"][-1] == pytest.approx(arms["bf16"]["loss"][-1], rel=0.02)


def test_smoke_run_is_deterministic(smoke):
    again = fp8_training("smoke", seed=0, arms=("bf16", "fp8_delayed"))
    for arm in again["arms"]:
        assert again["arms"][arm]["loss"] == smoke["arms"][arm]["loss"]


def test_stats_cover_every_block_linear_and_mark_the_excluded_ones(smoke):
    stats = smoke["stats"]
    recipe = set(smoke["arms"]["fp8_recipe"]["fp8_linears"])
    assert {s["name"] for s in stats} >= recipe and len(stats) == len(smoke["arms"]["fp8_all"]["fp8_linears"])
    assert all(s["fp8"] == (s["name"] in recipe) for s in stats)
    for s in stats:
        for role in ("input", "weight", "grad"):
            assert s[role]["amax"] > 0 and 0 <= s[role]["flushed_e5m2"] <= s[role]["flushed_e4m3"] <= 1


def test_gap_arithmetic_closed_form():
    result = {"arms": {"bf16": {"loss": [2.0, 2.0, 4.0, 4.0, 4.0], "val_loss": 2.0},
                       "fp8_x": {"loss": [2.2, 2.0, 4.0, 4.4, 3.6], "val_loss": 2.1}}}
    g = loss_gaps(result, window=2)
    raw = [0.1, 0.0, 0.0, 0.1, -0.1]
    assert g["arms"]["fp8_x"]["curve"] == pytest.approx([0.1, 0.05, 0.0, 0.05, 0.0])
    assert g["arms"]["fp8_x"]["final"] == pytest.approx(raw[-1])  # the last fifth of 5 steps: 1 step
    assert g["arms"]["fp8_x"]["val"] == pytest.approx(0.05)
    assert moving_average([1.0, 2.0, 3.0, 4.0], 3) == pytest.approx([1.0, 1.5, 2.0, 3.0])


def test_8b_exclusion_plan_from_the_widths():
    cfg = model_config_from_yaml(NEMOTRON_8B)
    d, m, a, f = cfg.d_model, cfg.mamba, cfg.attention, cfg.ffn
    params = {"M": d * (2 * m.d_inner + 2 * m.n_groups * m.d_state + m.n_heads) + m.d_inner * d,
              "*": 2 * d * a.n_heads * a.head_dim + 2 * d * a.n_kv_heads * a.head_dim,
              "-": 2 * d * f.hidden}
    plan = exclusion_plan(NEMOTRON_8B)
    ends = cfg.pattern[:4] + cfg.pattern[-4:]
    assert [k for _, k in plan["bf16_layers"]] == list(ends)
    bf16 = sum(params[k] for k in ends)
    assert plan["fp8_param_fraction"] == pytest.approx(1 - bf16 / sum(params[k] for k in cfg.pattern))


def test_backends_agree():
    out = backend_agreement()
    assert 1e-3 < out["emulated_vs_fp32"]["output"] < 0.1
    if out["torchao"] is None:
        pytest.skip(f"torchao could not run here: {out['torchao_error']}")
    assert out["torchao"]["emulated_vs_torchao"]["output"] < 1e-5
    assert out["torchao"]["emulated_vs_torchao"]["weight_grad"] < 1e-5


def test_checkers():
    assert exercises.check_underflow_prediction(None, verbose=False).ok is None
    assert exercises.check_underflow_prediction("e4m3", verbose=False)
    assert not exercises.check_underflow_prediction("e5m2", verbose=False)

    def fp8_round(x, dtype):
        amax = float(x.abs().max())
        s = torch.tensor(torch.finfo(dtype).max / amax if amax > 0 else 1.0)
        return (x * s).to(dtype).float() / s

    def unguarded(x, dtype):
        s = torch.finfo(dtype).max / x.abs().max()
        return (x * s).to(dtype).float() / s

    def not_implemented(x, dtype):
        raise NotImplementedError

    assert exercises.check_current_scaling_fn(fp8_round, verbose=False)
    verdict = exercises.check_current_scaling_fn(unguarded, verbose=False)
    assert verdict.ok is False and "amax = 0" in verdict.message
    assert exercises.check_current_scaling_fn(not_implemented, verbose=False).ok is None

    pattern = model_config_from_yaml(NEMOTRON_8B).pattern
    n = exercises.EXCLUSION_QUESTION["n"]
    count = sum({"M": 2, "*": 4, "-": 2}[c] for c in pattern[:n] + pattern[-n:])
    assert exercises.check_excluded_linears(count, verbose=False)
    wrong = exercises.check_excluded_linears(4 * n, verbose=False)
    assert wrong.ok is False and "attention layer has 4" in wrong.message


# --- the claims of fp8_loss_gap and fp8_underflow (hand-made metrics) --------------------------

def gap_metrics(tail_gaps: list[float], head=(0.05, -0.05, 0.04, 0.03, -0.02)) -> dict:
    """BF16 at loss 2.0 every step; the recipe's paired relative gap is ``head`` (ignored: before
    the tail) then ``tail_gaps``, the last ``len(tail_gaps)`` steps the claim reads."""
    gaps = list(head) + list(tail_gaps)
    return {"arms": {"bf16": {"loss": [2.0] * len(gaps)}, "fp8_recipe": {"loss": [2.0 * (1 + g) for g in gaps]}},
            "gaps": {"tail_steps": len(tail_gaps)}}


def test_loss_gap_claim_on_the_tail_interval():
    # Every resampled mean lies between the smallest and the largest tail gap, so tails wholly
    # inside (-0.1%, 0.1%) hold and tails wholly beyond +0.1% fail, whatever the resamples.
    inside = FP8_LOSS_GAP.judge(gap_metrics([0.0005, -0.0004, 0.0002, 0.0003, -0.0001, 0.0004]))
    assert inside.held is True
    assert inside.to_dict()["evidence"]["gap"]["value"] == pytest.approx(0.0009 / 6)
    assert FP8_LOSS_GAP.judge(gap_metrics([0.002, 0.003, 0.0025, 0.0021, 0.0029, 0.0022])).held is False
    assert FP8_LOSS_GAP.judge(gap_metrics([-0.002, -0.003, -0.0025, -0.0021])).held is False


def test_loss_gap_claim_undecided_when_the_interval_straddles_the_tolerance():
    # mean exactly 0.1% (alternating 0.05% and 0.15%): the interval reaches both sides of 0.1%
    straddling = FP8_LOSS_GAP.judge(gap_metrics([0.0005, 0.0015] * 6))
    gap = straddling.to_dict()["evidence"]["gap"]
    assert gap["low"] < 0.001 < gap["high"] and straddling.held is None
    assert FP8_LOSS_GAP.judge(gap_metrics([0.0])).held is None  # one tail step: no interval


def test_underflow_claim_is_an_exact_comparison():
    def layers(e4m3: float, e5m2: float) -> list[dict]:
        zero = {"flushed_e4m3": 0.0, "flushed_e5m2": 0.0}
        return [{"input": zero, "weight": zero, "grad": {"flushed_e4m3": e4m3, "flushed_e5m2": e5m2}},
                {"input": zero, "weight": zero, "grad": {"flushed_e4m3": 3 * e4m3, "flushed_e5m2": 0.0}}]
    assert mean_flushed(layers(0.01, 0.002))["grad_e4m3"] == pytest.approx(0.02)  # (0.01 + 0.03) / 2
    assert FP8_UNDERFLOW.judge({"layers": layers(0.01, 0.002)}).held is True  # 0.001 < 0.02
    assert FP8_UNDERFLOW.judge({"layers": layers(0.0, 0.002)}).held is False  # 0.001 > 0
    assert FP8_UNDERFLOW.judge({"layers": layers(0.0, 0.0)}).held is False  # equal: not fewer


def test_loss_gap_claim_on_diverged_runs():
    diverged = gap_metrics([0.0, 0.0, 0.0])
    diverged["arms"]["fp8_recipe"]["loss"][-1] = "nan"  # how a sidecar stores NaN
    assert FP8_LOSS_GAP.judge(diverged).held is False
    baseline = gap_metrics([0.0, 0.0, 0.0])
    baseline["arms"]["bf16"]["loss"][-1] = "inf"
    assert FP8_LOSS_GAP.judge(baseline).held is None
