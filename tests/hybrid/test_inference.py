"""Inference cost (notebook 03): measured decode experiment, full-scale arithmetic, explorer,
exercise checkers. References are closed forms written out from the configs' widths."""

from __future__ import annotations

import math

import pytest

import itertools

import matplotlib.pyplot as plt
import torch
from scipy import stats

from nvrepro.core.lm.info import count_parameters
from nvrepro.core.tooling.paper_facts import paper_value
from nvrepro.hybrid import exercises, inference
from nvrepro.hybrid.decode_cost import build_pair, copy_to_every_row
from nvrepro.hybrid.figures import plot_cache_explorer, plot_decode_cost, plot_full_scale


@pytest.fixture(scope="module")
def smoke():
    return inference.decode_cost("smoke", seed=0, contexts=[32, 96], steps=2, repeats=1, warmup=0)


@pytest.fixture(scope="module")
def sweep():
    return inference.batch_sweep("smoke", seed=0, batches=[1, 3], context=24, steps=2, repeats=1, warmup=0)


def test_decode_cost_smoke(smoke):
    assert smoke["contexts"] == [32, 96] and smoke["config"]["threads"] == 1
    hyb, tr = smoke["models"]["hybrid"], smoke["models"]["transformer"]
    assert tr["pattern"] == hyb["pattern"].replace("M", "*")
    for m in (hyb, tr):
        assert m["cache_bytes"] == m["predicted_cache_bytes"]
        assert all(s > 0 for s in m["seconds_per_token"])
    # Closed form of the growth per context token (float32): K and V per attention layer.
    a = inference.model_config_from_yaml(inference.TOY_CONFIG).attention
    per_layer = 2 * a.n_kv_heads * a.head_dim * 4
    growth = inference.decode_summary(smoke)["cache_growth_bytes_per_token"]
    assert growth == {"hybrid": hyb["pattern"].count("*") * per_layer,
                      "transformer": tr["pattern"].count("*") * per_layer}
    assert len(smoke["speedup"]) == len(smoke["bytes_read_ratio"]) == 2


def test_decode_cost_is_deterministic_in_memory(smoke):
    again = inference.decode_cost("smoke", seed=0, contexts=[96], steps=2, repeats=1, warmup=0)
    assert again["models"]["hybrid"]["cache_bytes"] == smoke["models"]["hybrid"]["cache_bytes"][1:]


def test_unknown_profile():
    with pytest.raises(ValueError, match="profile"):
        inference.decode_cost("huge")


def test_batch_sweep_smoke(sweep):
    assert sweep["batches"] == [1, 3] and sweep["context"] == 24 and sweep["config"]["threads"] == 1
    models = sweep["models"]
    for m in models.values():
        # every sequence of the batch holds its own cache: b times one sequence's bytes
        assert m["cache_bytes"] == m["predicted_cache_bytes"] and m["cache_bytes"][1] == 3 * m["cache_bytes"][0]
        assert [len(r) for r in m["repeat_seconds_per_step"]] == [1, 1]
        assert m["tokens_per_second"] == pytest.approx([b / s for b, s in zip([1, 3], m["seconds_per_step"])])
    hyb, tr = models["hybrid"], models["transformer"]
    pairs = zip(hyb["cache_bytes"], tr["cache_bytes"])
    assert sweep["bytes_read_ratio"] == pytest.approx(
        [(tr["weight_bytes"] + ct) / (hyb["weight_bytes"] + ch) for ch, ct in pairs])
    with pytest.raises(ValueError, match="batches"):
        inference.batch_sweep("smoke", batches=[0])


def test_copied_prefill_equals_a_batched_prefill():
    """copy_to_every_row must leave the cache a real prefill of the same prompt in every row leaves."""
    cfg = inference.model_config_from_yaml(inference.TOY_CONFIG)
    for model in build_pair(cfg, 16).values():
        prompt = torch.randint(cfg.vocab_size, (1, 10), generator=torch.Generator().manual_seed(1))
        one, copied, real = model.allocate_cache(1, 16), model.allocate_cache(3, 16), model.allocate_cache(3, 16)
        with torch.no_grad():
            model(prompt, one)
            model(prompt.expand(3, -1), real)
        copy_to_every_row(one, copied)
        assert copied.length == real.length == 10
        for a, b in zip(copied.layers, real.layers):
            if a is None:
                continue
            for name in ("k", "v", "conv_state", "ssm_state"):
                if hasattr(a, name):
                    torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=1e-5, atol=1e-5)
            if hasattr(a, "length"):
                assert a.length == b.length


def test_run_adds_the_batch_sweep(monkeypatch):
    calls = []
    monkeypatch.setattr(inference, "decode_cost", lambda profile, seed: calls.append("ctx") or {"contexts": []})
    monkeypatch.setattr(inference, "batch_sweep", lambda profile, seed: calls.append("batch") or {"b": 1})
    assert inference.run("smoke", 3) == {"contexts": [], "batch_sweep": {"b": 1}} and calls == ["ctx", "batch"]


def test_full_scale_bytes_closed_form():
    """Nemotron-H-8B vs Llama-3.1-8B at 65,536 tokens, by hand from the papers' widths."""
    table = inference.full_scale_table()
    pair = table["pairs"]["nemotron_h_8b vs llama_3_1_8b"]
    kv_layer = 2 * 65536 * 8 * 128 * 2  # K and V, 8 KV heads x 128, BF16
    mamba_layer = (128 * 64 + 2 * 8 * 128) * 4 * 2 + 128 * 64 * 128 * 4  # conv window BF16 + SSM FP32
    hyb, llama = pair["models"]["nemotron_h_8b"], pair["models"]["llama_3_1_8b"]
    assert hyb["kv_cache_bytes"] == 4 * kv_layer and llama["kv_cache_bytes"] == 32 * kv_layer
    assert hyb["ssm_state_bytes"] == 24 * mamba_layer and llama["ssm_state_bytes"] == 0
    assert math.isclose(pair["cache_ratio"], 32 * kv_layer / (4 * kv_layer + 24 * mamba_layer))
    expected = (2 * llama["params"] + 32 * kv_layer) / (2 * hyb["params"] + 4 * kv_layer + 24 * mamba_layer)
    assert math.isclose(pair["predicted_speedup"], expected)
    assert math.isclose(pair["weight_ratio"], llama["params"] / hyb["params"])
    assert pair["paper_speedup"] == paper_value("hybrid", "speedup_8b_vs_llama_3_1_8b")
    assert pair["bracket"] is True and pair["judged"] is True


def test_qwen_config_matches_the_published_count():
    """Qwen-2.5-7B by hand: untied embedding and head, 28 x (GQA attention without the q/k/v
    biases, SwiGLU, two RMSNorms), final norm; then within 1% of the published total."""
    d, vocab, ffn, kv = 3584, 152064, 18944, 4 * 128
    layer = (d * d + 2 * d * kv + d * d) + 3 * d * ffn + 2 * d
    by_hand = 2 * vocab * d + 28 * layer + d
    counted = count_parameters(inference.full_scale_config("qwen_2_5_7b"))[0]
    assert counted == by_hand
    published = paper_value("hybrid", "qwen_2_5_7b_params")
    assert abs(counted / published - 1) < 0.01
    biases = 28 * (d + 2 * kv)  # what the config leaves out
    assert abs((counted + biases) / published - 1) < 0.01


def test_full_scale_pairs_and_paper_factors():
    table = inference.full_scale_table()
    assert set(table["pairs"]) == {"nemotron_h_8b vs llama_3_1_8b", "nemotron_h_8b vs qwen_2_5_7b",
                                   "nemotron_h_56b vs llama_3_1_70b", "nemotron_h_47b vs llama_3_1_70b",
                                   "nemotron_h_47b vs nemotron_h_56b"}
    for pair in table["pairs"].values():
        assert pair["paper_speedup"] == paper_value("hybrid", pair["paper_key"])
        h, b = (pair["models"][n] for n in (pair["hybrid"], pair["baseline"]))
        assert math.isclose(pair["cache_ratio"], b["cache_bytes"] / h["cache_bytes"])
    two_hybrids = table["pairs"]["nemotron_h_47b vs nemotron_h_56b"]
    assert two_hybrids["judged"] is False  # its baseline has Mamba-2 layers
    # Qwen-2.5-7B: 28 layers x 4 KV heads against the 8B hybrid's 4 attention layers x 8 KV heads
    qwen = table["pairs"]["nemotron_h_8b vs qwen_2_5_7b"]
    kv_token = 2 * 128 * 2 * 65536
    assert qwen["models"]["qwen_2_5_7b"]["kv_cache_bytes"] == 28 * 4 * kv_token
    assert qwen["models"]["nemotron_h_8b"]["kv_cache_bytes"] == 4 * 8 * kv_token
    with pytest.raises(ValueError, match="batches"):
        inference.full_scale_table(batches=(2, 4))
    text = inference.format_full_scale(table)
    assert text.count("qwen_2_5_7b") == 2 and "not judged" in text


def test_speedup_grows_with_batch_towards_the_cache_ratio():
    for pair in inference.full_scale_table()["pairs"].values():
        s = pair["predicted_speedup_by_batch"]
        assert all(a < b for a, b in zip(s, s[1:])) and s[-1] < pair["cache_ratio"]
    b = inference.batch_for_speedup("nemotron_h_8b", "llama_3_1_8b", 3.0)
    assert inference.predicted_speedup("nemotron_h_8b", "llama_3_1_8b", batch=b) >= 3.0
    assert inference.predicted_speedup("nemotron_h_8b", "llama_3_1_8b", batch=b - 1) < 3.0


def test_explorer_callback(capsys):
    one, many = inference.cache_explorer(65536, 1), inference.cache_explorer(65536, 16)
    assert many["hybrid_cache_bytes"] == 16 * one["hybrid_cache_bytes"]
    assert math.isclose(many["cache_ratio"], one["cache_ratio"])  # both caches scale with the batch
    assert many["predicted_speedup"] > one["predicted_speedup"]  # the shared weights matter less
    short = inference.cache_explorer(1024, 1)
    assert short["cache_ratio"] < one["cache_ratio"]  # the hybrid's constant state weighs more at short context
    plt.close("all")
    inference.show_cache_explorer(65536, 1)
    out = capsys.readouterr().out
    assert "nemotron_h_8b" in out and "llama_3_1_8b" in out and "GiB" in out
    assert len(plt.get_fignums()) == 1  # it draws, not only prints
    plt.close("all")
    widget = inference.explorer_widget()
    assert {c.description for c in widget.children[:3]} == {"context", "batch", "pair"}


def test_explorer_curves_closed_form():
    """Speed-up (2 P_L + b KV_L) / (2 P_H + b (KV_H + S_H)) of 8B vs Llama-3.1-8B, by hand."""
    curves = inference.explorer_curves(8192, 4, contexts=(1024, 8192), batches=(1, 4, 32))
    p_h, p_l = (count_parameters(inference.full_scale_config(n))[0] for n in ("nemotron_h_8b", "llama_3_1_8b"))
    state = 24 * ((128 * 64 + 2 * 8 * 128) * 4 * 2 + 128 * 64 * 128 * 4)  # 24 Mamba-2 layers per sequence

    def speedup(context, batch):
        kv = 2 * 8 * 128 * 2 * context  # per attention layer and sequence
        return (2 * p_l + batch * 32 * kv) / (2 * p_h + batch * (4 * kv + state))

    assert curves["by_batch"]["speedup"] == pytest.approx([speedup(8192, b) for b in (1, 4, 32)])
    assert curves["by_context"]["speedup"] == pytest.approx([speedup(c, 4) for c in (1024, 8192)])
    assert curves["by_context"]["hybrid"] == [4 * (4 * 2 * 8 * 128 * 2 * c + state) for c in (1024, 8192)]
    assert curves["point"]["predicted_speedup"] == pytest.approx(speedup(8192, 4))
    assert curves["paper_speedup"] == paper_value("hybrid", "speedup_8b_vs_llama_3_1_8b")
    with pytest.raises(ValueError, match="pair"):
        inference.explorer_curves(8192, 1, pair="gpt vs bert")
    with pytest.raises(ValueError, match="batch"):
        inference.explorer_curves(8192, 0)


def test_unknown_full_scale_config():
    with pytest.raises(ValueError, match="known"):
        inference.full_scale_config("gpt5")


def test_figures(smoke, sweep):
    assert len(plot_decode_cost(smoke).axes) == 3
    assert len(plot_decode_cost({**smoke, "batch_sweep": sweep}).axes) == 6  # a second row: the batch sweep
    contexts = [1024, 65536]
    curves = {n: [inference.decode_bytes(n, c).cache_bytes for c in contexts]
              for n in ("nemotron_h_8b", "llama_3_1_8b", "qwen_2_5_7b")}
    plot_full_scale(inference.full_scale_table(), contexts, curves)
    plot_cache_explorer(inference.explorer_curves(4096, 2, pair="nemotron_h_47b vs nemotron_h_56b"))
    plt.close("all")


def test_kv_cache_checker():
    assert exercises.check_kv_cache_bytes(2 * 32 * 8 * 128 * 8192 * 2, verbose=False).ok is True
    wrong = exercises.check_kv_cache_bytes(32 * 32 * 128 * 8192 * 2 * 2, verbose=False)
    assert wrong.ok is False and "query heads" in wrong.message
    assert exercises.check_kv_cache_bytes(None, verbose=False).ok is None
    assert exercises.check_kv_cache_bytes("lots", verbose=False).ok is False


def test_break_even_checker():
    kv_layer_token = 2 * 8 * 128 * 2
    hybrid = 4 * kv_layer_token * 65536 + 24 * ((128 * 64 + 2 * 8 * 128) * 4 * 2 + 128 * 64 * 128 * 4)
    answer = hybrid / (32 * kv_layer_token)
    assert exercises.check_break_even_context(answer, verbose=False).ok is True
    assert "Mamba" in exercises.check_break_even_context(8192, verbose=False).message
    assert exercises.check_break_even_context(None, verbose=False).ok is None


def test_cache_bytes_checker():
    def right(cfg, context, batch):
        m, a = cfg.mamba, cfg.attention
        per_seq = (2 * cfg.count("*") * context * a.n_kv_heads * a.head_dim
                   + cfg.count("M") * ((m.n_heads * m.head_dim + 2 * m.n_groups * m.d_state) * m.d_conv
                                       + m.n_heads * m.head_dim * m.d_state))
        return 4 * batch * per_seq

    def no_conv(cfg, context, batch):
        m = cfg.mamba
        return right(cfg, context, batch) - 4 * batch * cfg.count("M") * (
            m.n_heads * m.head_dim + 2 * m.n_groups * m.d_state) * m.d_conv

    def todo(cfg, context, batch):
        raise NotImplementedError

    assert exercises.check_cache_bytes_fn(right, verbose=False).ok is True
    missing = exercises.check_cache_bytes_fn(no_conv, verbose=False)
    assert missing.ok is False and "conv windows short" in missing.message
    assert exercises.check_cache_bytes_fn(todo, verbose=False).ok is None


# --- the whole-curve trend test -------------------------------------------------------------

def brute_force_trend_p(groups):
    """P(J >= observed) by enumerating every assignment of the pooled values to the groups' slots."""
    def j_of(gs):
        return sum((y > x) + 0.5 * (y == x) for i, a in enumerate(gs) for b in gs[i + 1:] for x in a for y in b)

    pooled, sizes = [v for g in groups for v in g], [len(g) for g in groups]
    observed, hits, total = j_of(groups), 0, 0
    for perm in itertools.permutations(pooled):
        cut = list(itertools.accumulate(sizes, initial=0))
        total += 1
        hits += j_of([perm[a:b] for a, b in zip(cut, cut[1:])]) >= observed - 1e-12
    return hits / total


def test_trend_counts_are_the_multinomial_and_symmetric():
    counts = inference.trend_counts([2, 3, 2])
    assert sum(counts) == math.factorial(7) // (2 * 6 * 2) and counts == counts[::-1]
    assert len(counts) - 1 == 2 * 3 + 2 * 2 + 3 * 2  # max J: every between-group pair


@pytest.mark.parametrize("groups", [[[1.0, 2.0], [1.5, 3.0], [2.5, 4.0]],
                                    [[3.0, 1.0, 2.0], [0.5, 2.5], [4.0, 0.1]],
                                    [[1.0, 2.0], [2.0, 3.0], [2.0]],  # ties
                                    [[1.0, 1.0], [1.0, 2.0], [2.0, 3.0]]])
def test_trend_p_value_equals_brute_force(groups):
    evidence = inference.rises(groups, list(range(len(groups))), "x").evidence
    if any(x == y for a in groups for b in groups if a is not b for x in a for y in b):
        assert evidence["p_greater"] >= brute_force_trend_p(groups) - 1e-12  # ties: conservative
    else:
        assert evidence["p_greater"] == pytest.approx(brute_force_trend_p(groups))


def test_trend_with_two_groups_is_mann_whitney():
    low, high = [1.0, 1.3, 0.9, 1.1], [1.2, 1.5, 1.6, 1.4, 1.05]
    evidence = inference.rises([low, high], ["a", "b"], "x").evidence
    assert evidence["p_greater"] == pytest.approx(
        stats.mannwhitneyu(high, low, alternative="greater", method="exact").pvalue)


def test_trend_verdicts():
    rising = [[1.0 + k + 0.01 * r for r in range(3)] for k in range(4)]
    up = inference.rises(rising, [1, 2, 4, 8], "x")
    assert up.held is True and up.evidence["concordance"] == 1.0 and "every step" in up.reason
    assert inference.rises(rising[::-1], [1, 2, 4, 8], "x").held is False
    # rises overall, but the last step dips: still a rising trend, and the dip is named
    dip = inference.rises([*rising[:3], [2.5, 2.6, 2.7]], [1, 2, 4, 8], "x")
    assert dip.held is True and "fell at 4->8" in dip.reason
    flat = inference.rises([[1.0, 2.0], [2.0, 1.0]], [1, 2], "x")
    assert flat.held is None
    assert inference.rises([[1.0, 2.0]], [1], "x").held is None
    with pytest.raises(ValueError, match="labels"):
        inference.rises([[1.0]], [1, 2], "x")


# --- the claims of decode_cost and full_scale_decode_bytes (hand-made metrics) -----------------

def decode_metrics(*, ratios=(1.1, 4.0), repeats=7, compiled=True, predicted_offset=0,
                   contexts=(1024, 16384), batch_ratios=None) -> dict:
    """Contexts (default 1,024 and 16,384 tokens); the hybrid takes 1.00, 1.01, ... ms per token
    each block, the Transformer ``ratios[i]`` times that at context ``i``. Caches grow 512 B/token
    (1 attention layer) and 3,072 B/token (6 attention layers), as the toy pair's float32 KV caches
    do. ``batch_ratios``: a batch sweep (batches 1, 2, 4, ...) with those per-step time ratios."""
    hybrid = [1e-3 * (1 + 0.01 * k) for k in range(repeats)]
    contexts = list(contexts)

    def model(pattern, per_token, base, rs, weights):
        cache = [base + per_token * c for c in contexts]
        return {"pattern": pattern, "cache_bytes": cache, "weight_bytes": weights,
                "predicted_cache_bytes": [b + predicted_offset for b in cache],
                "repeat_seconds_per_token": [[r * t for t in hybrid] for r in rs]}
    models = {"hybrid": model("M-M-M-M*-M-", 512, 10_000, [1.0] * len(contexts), 5_000_000),
              "transformer": model("*-*-*-**-*-", 3072, 0, ratios, 4_000_000)}
    metrics = {"contexts": contexts, "config": {"compiled": compiled}, "models": models,
               "bytes_read_ratio": [(4e6 + t) / (5e6 + h) for h, t in zip(models["hybrid"]["cache_bytes"],
                                                                         models["transformer"]["cache_bytes"])]}
    if batch_ratios is not None:
        metrics["batch_sweep"] = {
            "context": 2048, "batches": [2**k for k in range(len(batch_ratios))],
            "models": {"hybrid": {"repeat_seconds_per_step": [hybrid for _ in batch_ratios]},
                       "transformer": {"repeat_seconds_per_step": [[r * t for t in hybrid] for r in batch_ratios]}}}
    return metrics


def test_decode_claim_holds_when_every_part_is_separated():
    judgement = inference.DECODE_COST.judge(decode_metrics())
    assert judgement.held is True
    parts = judgement.to_dict()["evidence"]["parts"]
    assert len(parts) == 6  # two exact, four timed (the 3x part: compiled, 16,384 measured)
    # 7 vs 7 blocks completely separated: p = 1 / C(14, 7) = 1/3432
    assert parts["hybrid faster at the longest context"]["evidence"]["p_greater"] == pytest.approx(1 / 3432)
    # two contexts: the trend test is the rank-sum test, with the same p
    assert parts["speed-up rises with context (whole curve)"]["evidence"]["p_greater"] == pytest.approx(1 / 3432)


def test_decode_claim_judges_the_whole_curve():
    contexts = (512, 1024, 2048, 4096)
    # end points separated, but the speed-up falls over most of the curve: not a rising trend
    falling = decode_metrics(contexts=contexts, ratios=(2.0, 1.6, 1.3, 2.2), compiled=False)
    parts = inference.DECODE_COST.judge(falling).to_dict()["evidence"]["parts"]
    assert parts["above the short-context (overhead) level at the longest context"]["held"] is True
    assert parts["speed-up rises with context (whole curve)"]["held"] is not True
    # rises overall with one dip at the end: held, and the dip is reported
    dipping = decode_metrics(contexts=contexts, ratios=(1.2, 2.0, 4.0, 3.5), compiled=False)
    trend = inference.DECODE_COST.judge(dipping).to_dict()["evidence"]["parts"][
        "speed-up rises with context (whole curve)"]
    assert trend["held"] is True and "fell at 2048->4096" in trend["reason"]


def test_decode_claim_batch_part():
    rising = inference.DECODE_COST.judge(decode_metrics(batch_ratios=(1.0, 1.5, 2.0, 3.0)))
    name = "throughput speed-up rises with batch (2,048 tokens)"
    assert rising.held is True and rising.to_dict()["evidence"]["parts"][name]["held"] is True
    falling = inference.DECODE_COST.judge(decode_metrics(batch_ratios=(3.0, 2.0, 1.5, 1.0)))
    assert falling.held is False and falling.to_dict()["evidence"]["parts"][name]["held"] is False


def test_decode_claim_fails_on_the_part_that_fails():
    # 2.5x at 16,384: faster, and more than at 1,024, but every block below the 3x target
    judgement = inference.DECODE_COST.judge(decode_metrics(ratios=(1.1, 2.5)))
    failed = [n for n, p in judgement.to_dict()["evidence"]["parts"].items() if p["held"] is False]
    assert judgement.held is False and failed == ["at least 3x at 16,384 tokens (compiled steps)"]
    wrong_bytes = inference.DECODE_COST.judge(decode_metrics(predicted_offset=4))
    assert wrong_bytes.held is False
    assert wrong_bytes.to_dict()["evidence"]["parts"]["cache bytes equal the info arithmetic"]["held"] is False


def test_decode_claim_undecided_on_two_blocks_and_eager_steps_skip_the_target():
    judgement = inference.DECODE_COST.judge(decode_metrics(repeats=2, compiled=False))
    parts = judgement.to_dict()["evidence"]["parts"]
    assert judgement.held is None and len(parts) == 5  # no compiled steps: the 3x part does not apply
    assert parts["hybrid faster at the longest context"]["held"] is None  # best p = 1 / C(4, 2) = 1/6


def test_decode_summary_separates_overhead_from_bytes():
    metrics = decode_metrics(contexts=(512, 1024, 2048), ratios=(1.5, 1.4, 2.0))
    metrics["speedup"] = [1.5, 1.4, 2.0]
    summary = inference.decode_summary(metrics)
    assert summary["steps_that_fell"] == [[512, 1024]]
    assert summary["not_from_bytes"] == pytest.approx([s / p for s, p in zip(metrics["speedup"],
                                                                            metrics["bytes_read_ratio"])])
    assert summary["speedup_at_shortest"] == 1.5 and summary["shortest_context"] == 512


def full_scale_metrics(low: float, high: float, paper: float, *, other=None) -> dict:
    pairs = {"nemotron_h_8b vs llama_3_1_8b": {"batches": [1, 2], "predicted_speedup_by_batch": [low, low + 0.1],
                                               "cache_ratio": high, "paper_speedup": paper, "judged": True}}
    if other is not None:
        pairs["nemotron_h_47b vs nemotron_h_56b"] = other
    return {"table": {"pairs": pairs}}


def test_full_scale_claim_is_exact_arithmetic():
    assert inference.FULL_SCALE_DECODE_BYTES.judge(full_scale_metrics(1.42, 7.3, 3.0)).held is True
    assert inference.FULL_SCALE_DECODE_BYTES.judge(full_scale_metrics(1.42, 7.3, 8.0)).held is False
    assert inference.FULL_SCALE_DECODE_BYTES.judge(full_scale_metrics(3.5, 7.3, 3.0)).held is False
    # a pair the claim does not judge (two hybrids) is recorded, whatever its bracket gives
    outside = {"batches": [1], "predicted_speedup_by_batch": [1.21], "cache_ratio": 1.7, "paper_speedup": 1.2,
               "judged": False}
    judgement = inference.FULL_SCALE_DECODE_BYTES.judge(full_scale_metrics(1.42, 7.3, 3.0, other=outside))
    assert judgement.held is True
    assert judgement.evidence["not_judged"]["nemotron_h_47b vs nemotron_h_56b"]["low"] == 1.21
    # the real configs: every hybrid-vs-Transformer pair brackets the paper's factor
    real = inference.FULL_SCALE_DECODE_BYTES.judge({"table": inference.full_scale_table()})
    assert real.held is True and len(real.evidence["parts"]) == 4


def test_decode_smoke_run_records_every_timed_block(smoke):
    for m in smoke["models"].values():
        assert [len(r) for r in m["repeat_seconds_per_token"]] == [1, 1]  # repeats=1 in the fixture
        assert m["seconds_per_token"] == [r[0] for r in m["repeat_seconds_per_token"]]
