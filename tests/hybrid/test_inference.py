"""Inference cost (notebook 03): measured decode experiment, full-scale arithmetic, explorer,
exercise checkers. References are closed forms written out from the configs' widths."""

from __future__ import annotations

import math

import pytest

from nvrepro.hybrid import exercises, inference
from nvrepro.hybrid.figures import plot_decode_cost, plot_full_scale


@pytest.fixture(scope="module")
def smoke():
    return inference.decode_cost("smoke", seed=0, contexts=[32, 96], steps=2, repeats=1, warmup=0)


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


def test_full_scale_bytes_closed_form():
    """Nemotron-H-8B vs Llama-3.1-8B at 65,536 tokens, by hand from the papers' widths."""
    table = inference.full_scale_table()
    pair = table["pairs"]["nemotron_h_8b"]
    kv_layer = 2 * 65536 * 8 * 128 * 2  # K and V, 8 KV heads x 128, BF16
    mamba_layer = (128 * 64 + 2 * 8 * 128) * 4 * 2 + 128 * 64 * 128 * 4  # conv window BF16 + SSM FP32
    hyb, llama = pair["models"]["nemotron_h_8b"], pair["models"]["llama_3_1_8b"]
    assert hyb["kv_cache_bytes"] == 4 * kv_layer and llama["kv_cache_bytes"] == 32 * kv_layer
    assert hyb["ssm_state_bytes"] == 24 * mamba_layer and llama["ssm_state_bytes"] == 0
    assert math.isclose(pair["cache_ratio"], 32 * kv_layer / (4 * kv_layer + 24 * mamba_layer))
    expected = (2 * llama["params"] + 32 * kv_layer) / (2 * hyb["params"] + 4 * kv_layer + 24 * mamba_layer)
    assert math.isclose(pair["predicted_speedup"], expected)
    assert pair["paper_speedup"] == 3.0 and table["pairs"]["nemotron_h_56b"]["paper_speedup"] == 2.4


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
    inference.show_cache_explorer(65536, 1)
    out = capsys.readouterr().out
    assert "nemotron_h_8b" in out and "llama_3_1_8b" in out and "GiB" in out
    widget = inference.explorer_widget()
    assert {c.description for c in widget.children[:2]} == {"context", "batch"}


def test_unknown_full_scale_config():
    with pytest.raises(ValueError, match="known"):
        inference.full_scale_config("gpt5")


def test_figures(smoke):
    plot_decode_cost(smoke)
    contexts = [1024, 65536]
    curves = {n: [inference.decode_bytes(n, c).cache_bytes for c in contexts]
              for n in ("nemotron_h_8b", "llama_3_1_8b")}
    plot_full_scale(inference.full_scale_table(), contexts, curves)


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


# --- the claims of decode_cost and full_scale_decode_bytes (hand-made metrics) -----------------

def decode_metrics(*, long_ratio=4.0, short_ratio=1.1, repeats=7, compiled=True, predicted_offset=0) -> dict:
    """Two contexts (1,024 and 16,384 tokens); the hybrid takes 1.00, 1.01, ... ms per token each
    block, the Transformer ``ratio`` times that. Caches grow 512 B/token (1 attention layer) and
    3,072 B/token (6 attention layers), as the toy pair's float32 KV caches do."""
    hybrid = [1e-3 * (1 + 0.01 * k) for k in range(repeats)]
    contexts = [1024, 16384]

    def model(pattern, per_token, base, ratios):
        cache = [base + per_token * c for c in contexts]
        return {"pattern": pattern, "cache_bytes": cache,
                "predicted_cache_bytes": [b + predicted_offset for b in cache],
                "repeat_seconds_per_token": [[r * t for t in hybrid] for r in ratios]}
    return {"contexts": contexts, "config": {"compiled": compiled},
            "models": {"hybrid": model("M-M-M-M*-M-", 512, 10_000, (1.0, 1.0)),
                       "transformer": model("*-*-*-**-*-", 3072, 0, (short_ratio, long_ratio))}}


def test_decode_claim_holds_when_every_part_is_separated():
    judgement = inference.DECODE_COST.judge(decode_metrics())
    assert judgement.held is True
    parts = judgement.to_dict()["evidence"]["parts"]
    assert len(parts) == 5  # two exact, three timed (the 3x part: compiled, 16,384 measured)
    # 7 vs 7 blocks completely separated: p = 1 / C(14, 7) = 1/3432
    assert parts["hybrid faster at the longest context"]["evidence"]["p_greater"] == pytest.approx(1 / 3432)


def test_decode_claim_fails_on_the_part_that_fails():
    # 2.5x at 16,384: faster, and more than at 1,024, but every block below the 3x target
    judgement = inference.DECODE_COST.judge(decode_metrics(long_ratio=2.5))
    failed = [n for n, p in judgement.to_dict()["evidence"]["parts"].items() if p["held"] is False]
    assert judgement.held is False and failed == ["at least 3x at 16,384 tokens (compiled steps)"]
    wrong_bytes = inference.DECODE_COST.judge(decode_metrics(predicted_offset=4))
    assert wrong_bytes.held is False
    assert wrong_bytes.to_dict()["evidence"]["parts"]["cache bytes equal the info arithmetic"]["held"] is False


def test_decode_claim_undecided_on_two_blocks_and_eager_steps_skip_the_target():
    judgement = inference.DECODE_COST.judge(decode_metrics(repeats=2, compiled=False))
    parts = judgement.to_dict()["evidence"]["parts"]
    assert judgement.held is None and len(parts) == 4  # no compiled steps: the 3x part does not apply
    assert parts["hybrid faster at the longest context"]["held"] is None  # best p = 1 / C(4, 2) = 1/6


def full_scale_metrics(low: float, high: float, paper: float) -> dict:
    return {"table": {"pairs": {"nemotron_h_8b": {"batches": [1, 2], "predicted_speedup_by_batch": [low, low + 0.1],
                                                  "cache_ratio": high, "paper_speedup": paper}}}}


def test_full_scale_claim_is_exact_arithmetic():
    assert inference.FULL_SCALE_DECODE_BYTES.judge(full_scale_metrics(1.42, 7.3, 3.0)).held is True
    assert inference.FULL_SCALE_DECODE_BYTES.judge(full_scale_metrics(1.42, 7.3, 8.0)).held is False
    assert inference.FULL_SCALE_DECODE_BYTES.judge(full_scale_metrics(3.5, 7.3, 3.0)).held is False
    # the real configs: batch-1 prediction 1.42x and cache ratio 7.3x bracket the 8B's 3x (closed form above)
    real = inference.FULL_SCALE_DECODE_BYTES.judge({"table": inference.full_scale_table()})
    assert real.held is True


def test_decode_smoke_run_records_every_timed_block(smoke):
    for m in smoke["models"].values():
        assert [len(r) for r in m["repeat_seconds_per_token"]] == [1, 1]  # repeats=1 in the fixture
        assert m["seconds_per_token"] == [r[0] for r in m["repeat_seconds_per_token"]]
