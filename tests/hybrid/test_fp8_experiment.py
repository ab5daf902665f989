"""The FP8 study of notebook 04: its smoke run over seeds, gap and interval arithmetic, the seed band,
the format explorer, the 8B exclusion plan and the checkers."""

import math

import pytest
import torch

from nvrepro.core.lm.config import model_config_from_yaml
from nvrepro.core.data import TextDataModule
from nvrepro.core.training.precision.stats import tensor_stats
from nvrepro.core.tooling.validation import ConfigError
from nvrepro.hybrid import exercises
from nvrepro.hybrid.fp8_experiment import (FP8_LOSS_GAP, FP8_UNDERFLOW, LOSS_GAP_TOLERANCE, NEMOTRON_8B,
                                           SeededOrderText, backend_agreement, exclusion_plan,
                                           format_explorer_widget, format_resolution, format_shares,
                                           fp8_training, gap_curves, load_fp8_study, loss_gap_metrics,
                                           mean_flushed, moving_average, resolution_table, seed_gaps)
from nvrepro.hybrid.figures import plot_fp8_format



@pytest.fixture(scope="module")
def smoke():
    return fp8_training("smoke", seed=0, n_seeds=2)  # two seeds keep the test fast; the profile has three


def test_smoke_run_pairs_the_arms_within_a_seed(smoke):
    assert smoke["seeds"] == [0, 1] and [r["seed"] for r in smoke["runs"]] == [0, 1]
    steps = smoke["config"]["trainer"]["max_steps"]
    n_layers = len(smoke["config"]["model"]["pattern"])
    for run in smoke["runs"]:
        arms = run["arms"]
        assert list(arms) == ["bf16", "fp8_recipe", "fp8_all", "fp8_delayed"]
        assert all(len(r["loss"]) == steps and all(math.isfinite(v) for v in r["loss"]) for r in arms.values())
        assert arms["bf16"]["loss"][0] == pytest.approx(math.log(260), rel=0.01)  # uniform over 260 bytes at init
        fp8_layers = {int(n.split(".")[1]) for n in arms["fp8_recipe"]["fp8_linears"]}
        assert fp8_layers == set(range(1, n_layers - 1))  # the YAML's N = 1 at both ends
        assert len(arms["fp8_all"]["fp8_linears"]) > len(arms["fp8_recipe"]["fp8_linears"])
        assert not arms["bf16"]["fp8_linears"]
        # same weights, same first batch: FP8 rounding moves the first loss only slightly
        for arm in ("fp8_recipe", "fp8_all", "fp8_delayed"):
            assert arms[arm]["loss"][0] == pytest.approx(arms["bf16"]["loss"][0], abs=2e-3)
            assert arms[arm]["loss"] != arms["bf16"]["loss"]
    # a new seed: a new initialisation and new batches, far larger changes than FP8's
    first = [r["arms"]["bf16"]["loss"][0] for r in smoke["runs"]]
    assert abs(first[0] - first[1]) > 2e-3


def test_seed_changes_the_training_batches_not_the_held_out_ones():
    data_args = load_fp8_study(profile="smoke")["data"]
    plain = TextDataModule(**data_args)
    plain.setup("fit")
    seeded = SeededOrderText(**data_args)
    seeded.setup("fit")

    def first(loader):
        return next(iter(loader))["input_ids"]

    assert torch.equal(first(seeded.train_dataloader()), first(plain.train_dataloader()))  # order_seed = seed
    seeded.order_seed = plain.seed + 1
    assert not torch.equal(first(seeded.train_dataloader()), first(plain.train_dataloader()))
    for a, b in zip(seeded.val_dataloader(), plain.val_dataloader()):
        assert torch.equal(a["input_ids"], b["input_ids"])


def test_a_seed_reruns_to_the_same_numbers(smoke):
    again = fp8_training("smoke", seed=1, n_seeds=1, arms=("bf16", "fp8_delayed"))
    assert again["seeds"] == [1]
    for arm in ("bf16", "fp8_delayed"):
        assert again["runs"][0]["arms"][arm]["loss"] == smoke["runs"][1]["arms"][arm]["loss"]
        assert again["runs"][0]["arms"][arm]["val_loss"] == smoke["runs"][1]["arms"][arm]["val_loss"]


def test_stats_cover_every_block_linear_and_mark_the_excluded_ones(smoke):
    stats, arms = smoke["stats"], smoke["runs"][0]["arms"]
    recipe = set(arms["fp8_recipe"]["fp8_linears"])
    assert {s["name"] for s in stats} >= recipe and len(stats) == len(arms["fp8_all"]["fp8_linears"])
    assert all(s["fp8"] == (s["name"] in recipe) for s in stats)
    for s in stats:
        for role in ("input", "weight", "grad"):
            assert s[role]["amax"] > 0 and 0 <= s[role]["flushed_e5m2"] <= s[role]["flushed_e4m3"] <= 1


def test_grad_sample_is_the_gradient_the_stats_measured(smoke):
    sample, stats = smoke["grad_sample"], smoke["stats"]
    fp8_rows = [s for s in stats if s["fp8"]]
    row = next(s for s in fp8_rows if s["name"] == sample["name"])
    assert row["grad"]["flushed_e4m3"] == max(s["grad"]["flushed_e4m3"] for s in fp8_rows)
    cfg = smoke["config"]
    tokens = cfg["data"]["batch_size"] * cfg["data"]["seq_len"]
    assert sample["values"].numel() % tokens == 0
    # the same gradient through a second path (the stats hooks): same amax and flushed share
    again = tensor_stats(sample["values"])
    assert again["amax"] == pytest.approx(row["grad"]["amax"], rel=1e-6)
    assert again["flushed_e4m3"] == pytest.approx(row["grad"]["flushed_e4m3"], abs=1e-9)


# --- gap arithmetic, intervals over seeds, the band ------------------------------------------------

def runs_from(bf16_val, arm_vals, bf16_loss=None, arm_loss=None):
    """Hand-made runs: one seed per entry of ``bf16_val``; ``arm_vals``: {arm: held-out loss per seed}."""
    bf16_loss = bf16_loss or [2.0] * 5
    out = []
    for i, v in enumerate(bf16_val):
        arms = {"bf16": {"loss": list(bf16_loss), "val_loss": v}}
        for arm, vals in arm_vals.items():
            arms[arm] = {"loss": list(arm_loss or bf16_loss), "val_loss": vals[i]}
        out.append({"seed": i, "arms": arms})
    return {"runs": out}


def test_seed_gaps_closed_form():
    m = runs_from([2.0, 2.2, 2.5], {"fp8_recipe": [2.002, 2.2, 2.4]},
                  bf16_loss=[3.0, 2.0, 2.0, 2.0, 4.0], arm_loss=[3.0, 2.0, 2.0, 2.0, 4.4])
    g = seed_gaps(m)
    assert g["heldout"]["fp8_recipe"] == pytest.approx([0.001, 0.0, -0.04])
    assert g["tail_steps"] == 1 and g["train_tail"]["fp8_recipe"] == pytest.approx([0.1, 0.1, 0.1])
    assert len(g["bf16_pairs"]) == 6  # ordered pairs of 3 seeds
    pair = next(p for p in g["bf16_pairs"] if p["seeds"] == [1, 0])
    assert pair["gap"] == pytest.approx((2.0 - 2.2) / 2.2)
    assert g["band"] == pytest.approx(0.25)  # seed 0 -> seed 2: (2.5 - 2.0) / 2.0


def test_resolution_table_verdicts():
    # band: BF16 held-out losses 2.0, 2.02, 1.99 -> largest |gap| (2.02 - 1.99) / 1.99
    m = runs_from([2.0, 2.02, 1.99], {"fp8_recipe": [2.0, 2.02, 1.99], "fp8_all": [2.2, 2.222, 2.189],
                                      "fp8_delayed": [2.02, 2.0, 1.99]})
    table = resolution_table(m)
    assert table["band"] == pytest.approx(0.03 / 1.99) and table["n_pairs"] == 6
    rows = {r["comparison"]: r for r in table["rows"]}
    assert list(rows) == ["fp8_recipe - bf16", "fp8_all - bf16", "fp8_delayed - bf16", "fp8_all - fp8_recipe",
                          "fp8_delayed - fp8_recipe", "fp8_delayed - fp8_all"]
    recipe = rows["fp8_recipe - bf16"]  # identical losses: a zero-width interval at 0
    assert recipe["told_apart"] is None and recipe["within_band"] is True and recipe["within_tolerance"] is True
    worse = rows["fp8_all - bf16"]  # +10% in every seed: told apart, beyond the band and the 0.1%
    assert worse["gap"].value == pytest.approx(0.1) and worse["told_apart"] is True
    assert worse["within_band"] is False and worse["within_tolerance"] is False
    noisy = rows["fp8_delayed - bf16"]  # +1%, -0.99%, 0: an interval across 0, the band and the 0.1%
    assert noisy["per_seed"] == pytest.approx([0.01, -0.02 / 2.02, 0.0])
    assert noisy["told_apart"] is None and noisy["within_band"] is None and noisy["within_tolerance"] is None
    diff = rows["fp8_all - fp8_recipe"]  # paired difference of gaps, seed by seed
    assert diff["per_seed"] == pytest.approx([0.1, 0.1, 0.1])
    text = format_resolution(table)
    assert "fp8_delayed - fp8_all" in text and "straddles" in text and "3 seeds" in text


def test_gap_curves_closed_form():
    m = runs_from([2.0, 2.0], {"fp8_x": [2.0, 2.0]}, bf16_loss=[2.0, 2.0, 4.0, 4.0, 4.0],
                  arm_loss=[2.2, 2.0, 4.0, 4.4, 3.6])
    c = gap_curves(m["runs"], window=2)
    assert c["gap"]["fp8_x"]["mean"] == pytest.approx([0.1, 0.05, 0.0, 0.05, 0.0])
    assert c["loss"]["bf16"] == pytest.approx([2.0, 2.0, 3.0, 4.0, 4.0])
    assert moving_average([1.0, 2.0, 3.0, 4.0], 3) == pytest.approx([1.0, 1.5, 2.0, 3.0])


def test_loss_gap_claim_on_seed_intervals_and_the_band():
    # recipe gaps of +0.01% in each seed, BF16 band 1%: inside the band (held) and inside the 0.1%
    inside = FP8_LOSS_GAP.judge(runs_from([2.0, 2.02, 2.01], {"fp8_recipe": [2.0002, 2.020202, 2.010201]}))
    assert inside.held is True and inside.evidence["within_tolerance"] is True
    assert inside.evidence["band"] == pytest.approx(0.01)
    # +5% in each seed against a 0.05% band: wholly outside
    outside = FP8_LOSS_GAP.judge(runs_from([2.0, 2.001, 2.0005], {"fp8_recipe": [2.1, 2.10105, 2.100525]}))
    assert outside.held is False and outside.evidence["told_apart"] is True
    # gaps of -1%, +1%, 0 against a 0.5% band: the interval straddles the band's edges
    straddling = FP8_LOSS_GAP.judge(runs_from([2.0, 2.01, 2.005], {"fp8_recipe": [1.98, 2.0301, 2.005]}))
    gap = straddling.to_dict()["evidence"]["gap"]
    assert gap["low"] < -straddling.evidence["band"] and straddling.held is None
    assert "Student-t over 3 seeds" in straddling.reason
    assert FP8_LOSS_GAP.judge(runs_from([2.0], {"fp8_recipe": [2.0]})).held is None  # one seed: no interval
    assert str(round(100 * LOSS_GAP_TOLERANCE, 3)) in FP8_LOSS_GAP.text  # the paper's bar, from paper_facts


def test_loss_gap_claim_on_diverged_runs():
    diverged = runs_from([2.0, 2.01], {"fp8_recipe": [2.0, "nan"]})  # how a sidecar stores NaN
    assert FP8_LOSS_GAP.judge(diverged).held is False
    assert FP8_LOSS_GAP.judge(runs_from([2.0, "inf"], {"fp8_recipe": [2.0, 2.0]})).held is None


def test_loss_gap_metrics_keep_what_the_claim_reads(smoke):
    m = loss_gap_metrics(smoke)
    assert m["seeds"] == [0, 1] and set(m["runs"][0]["arms"]["bf16"]) == {"loss", "val_loss", "seconds", "fp8_linears"}
    judged = FP8_LOSS_GAP.judge(m)
    assert judged.evidence["gap"].n == 2


def test_underflow_claim_is_an_exact_comparison():
    def layers(e4m3: float, e5m2: float) -> list[dict]:
        zero = {"flushed_e4m3": 0.0, "flushed_e5m2": 0.0}
        return [{"input": zero, "weight": zero, "grad": {"flushed_e4m3": e4m3, "flushed_e5m2": e5m2}},
                {"input": zero, "weight": zero, "grad": {"flushed_e4m3": 3 * e4m3, "flushed_e5m2": 0.0}}]
    assert mean_flushed(layers(0.01, 0.002))["grad_e4m3"] == pytest.approx(0.02)  # (0.01 + 0.03) / 2
    assert FP8_UNDERFLOW.judge({"layers": layers(0.01, 0.002)}).held is True  # 0.001 < 0.02
    assert FP8_UNDERFLOW.judge({"layers": layers(0.0, 0.002)}).held is False  # 0.001 > 0
    assert FP8_UNDERFLOW.judge({"layers": layers(0.0, 0.0)}).held is False  # equal: not fewer


# --- the format explorer ---------------------------------------------------------------------------

def test_format_shares_by_hand():
    # E4M3: max 448, smallest normal 2^-6 = 0.015625, smallest subnormal 2^-9 (flush below 2^-10)
    x = torch.tensor([448.0, 1.0, 0.01, 1e-4, 0.0, -3.0])  # amax 448: the current scale is 1
    s = format_shares(x, "e4m3", 0)
    assert s["scale"] == 1.0 and s["n_nonzero"] == 5
    assert (s["flushed"], s["subnormal"], s["normal"], s["overflow"]) == pytest.approx((0.2, 0.2, 0.6, 0.0))
    assert s["edges"] == pytest.approx({"flush_below": 2.0 ** -10, "normal_from": 2.0 ** -6, "max": 448.0})
    up = format_shares(x, "e4m3", 1)  # scale 2: 448 saturates, 0.01 -> 0.02 is normal, 1e-4 -> 2e-4 still flushes
    assert (up["flushed"], up["subnormal"], up["normal"], up["overflow"]) == pytest.approx((0.2, 0.0, 0.6, 0.2))
    assert up["edges"]["max"] == 224.0
    # E5M2: smallest subnormal 2^-16, so 1e-4 * 57344 / 448 = 0.0128 is a normal number there
    assert format_shares(x, "e5m2", 0)["flushed"] == 0.0
    with pytest.raises(ConfigError, match="fmt"):
        format_shares(x, "e3m4")


def test_format_shares_against_torch_casts():
    gen = torch.Generator().manual_seed(0)
    x = torch.exp(torch.empty(20_000).uniform_(-30, 0, generator=gen)) * torch.randn(20_000, generator=gen).sign()
    for fmt, dtype in (("e4m3", torch.float8_e4m3fn), ("e5m2", torch.float8_e5m2)):
        for shift in (-4, 0):  # no overflow: a naive cast without saturation is exact here
            s = format_shares(x, fmt, shift)
            scale = torch.finfo(dtype).max / x.abs().max() * 2.0 ** shift
            q = (x * scale).to(dtype).float().abs()
            assert s["flushed"] == pytest.approx(float((q == 0).float().mean()), abs=1e-4)
            sub = (q > 0) & (q < torch.finfo(dtype).smallest_normal)
            assert s["subnormal"] == pytest.approx(float(sub.float().mean()), abs=1e-4)
            assert s["overflow"] == 0.0
    assert format_shares(x, "e4m3", 0)["flushed"] > format_shares(x, "e5m2", 0)["flushed"] > 0


def test_format_plot_draws_one_panel_per_setting():
    x = torch.tensor([448.0, 1.0, 0.01, 1e-4, -3.0])
    fig = plot_fp8_format(x, [format_shares(x, "e4m3", 0), format_shares(x, "e5m2", 2)], "a tensor")
    assert len(fig.axes) == 2 and "E5M2" in fig.axes[1].get_title()


def test_format_explorer_widget_redraws_on_its_controls(capsys):
    pytest.importorskip("ipywidgets")
    x = torch.tensor([448.0, 1.0, 0.01, 1e-4, -3.0])
    widget = format_explorer_widget(x, "a tensor")
    fmt, shift = widget.children[:2]
    fmt.value, shift.value = "e4m3", 1  # scale x2: 448 saturates (see test_format_shares_by_hand)
    assert widget.kwargs == {"fmt": "e4m3", "scale_shift": 1}
    assert "saturated 20.000%" in capsys.readouterr().out


# --- the 8B plan, the backends, the checkers ---------------------------------------------------------

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


def test_bad_arguments_name_themselves():
    with pytest.raises(ConfigError, match="n_seeds"):
        fp8_training("smoke", n_seeds=0)
    with pytest.raises(ConfigError, match="arms"):
        fp8_training("smoke", arms=("fp16",))


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
