"""``nvrepro gpu-check``: the floor and FLOP formulas against published parameter counts, the
verdicts against hand-made rows, and the whole script on tiny widths on this CPU (its numbers
mean nothing here; on a GPU the same code measures the issue's targets)."""

import json

import pytest
import torch

from nvrepro.core.lm.config import model_config_from_yaml
from nvrepro.core.tooling.paths import CONFIGS_DIR
from nvrepro.hybrid import gpu_check
from nvrepro.hybrid.gpu_check import Check, build_bf16, train_flops_per_token, verdicts
from nvrepro.hybrid.inference import decode_bytes

LLAMA_8B_PARAMS = 8_030_261_248  # Llama-3.1-8B's model card
LLAMA_EMBEDDING = 128_256 * 4_096


def llama_on_meta():
    return build_bf16(model_config_from_yaml(CONFIGS_DIR / "hybrid/llama_3_1_8b.yaml"), torch.device("meta"))


def test_the_floor_reads_llama_8b_weights_and_kv_cache():
    """The floor's bytes (inference.decode_bytes, here from a config object as gpu-check passes
    it): every BF16 weight (Llama-3.1-8B's published count) plus the keys and values of 16K
    tokens, 32 layers x 2 x 8 KV heads x 128 x 2 bytes per token."""
    cfg = model_config_from_yaml(CONFIGS_DIR / "hybrid/llama_3_1_8b.yaml")
    for batch in (1, 16):
        want = LLAMA_8B_PARAMS * 2 + batch * 16384 * 32 * 2 * 8 * 128 * 2
        assert decode_bytes(cfg, 16384, batch).bytes_per_step == want
        assert decode_bytes(cfg, 16384, batch).bytes_per_step == decode_bytes("llama_3_1_8b", 16384, batch).bytes_per_step


def test_training_flops_per_token_of_llama_8b():
    """6 x (8.03B - 0.53B embedding) plus causal attention, 6 x seq x 32 heads x 128 per layer."""
    want = 6 * (LLAMA_8B_PARAMS - LLAMA_EMBEDDING) + 32 * 6 * 4096 * 32 * 128
    assert train_flops_per_token(llama_on_meta(), 4096) == want


def _decode(model, context, batch, tokens_per_s, x_floor):
    return {"model": model, "context": context, "batch": batch, "mode": "graph",
            "ms_per_step": 1e3 * batch / tokens_per_s, "tokens_per_s": tokens_per_s, "x_floor": x_floor}


def test_verdicts_read_the_targets_of_the_issue():
    compiled = {**_decode("nemotron_h_8b", 16384, 1, 280, 0.9), "mode": "graph+compile"}
    check = Check(decode=[_decode("nemotron_h_8b", 16384, 1, 140, 2.5), compiled, _decode("llama_3_1_8b", 16384, 1, 100, 1.9),
                          _decode("nemotron_h_8b", 65536, 16, 900, 1.2), _decode("llama_3_1_8b", 65536, 16, 400, 3.0),
                          {"model": "llama_3_1_8b", "context": 65536, "batch": 1, "mode": "graph", "skipped": "x"}],
                  train=[{"model": "m", "precision": "bf16", "tokens_per_s": 100.0},
                         {"model": "m", "precision": "fp8-torchao", "tokens_per_s": 125.0}],
                  ssd=[{"triton_vs_torch": 3.5}])
    v = verdicts(check)
    assert v["nemotron_h_8b_within_2x_floor_b1"] is True  # its compiled graph: 0.9x
    assert v["llama_3_1_8b_within_2x_floor_b1"] is True  # its 3.0x is at batch 16
    assert v["hybrid_vs_llama"] == pytest.approx({"16384x1": 2.8, "65536x16": 2.25})
    assert v["hybrid_vs_llama_ge_1.3_at_smallest_context_b1"] is True
    assert v["hybrid_vs_llama_ge_2_at_long_context_or_batch"] is True
    assert v["fp8_vs_bf16"] == {"m fp8-torchao": 1.25} and v["fp8_ge_1.3"] is False
    assert v["ssd_triton_ge_3"] is True
    assert verdicts(Check())["fp8_ge_1.3"] is None  # nothing measured is not a failure


def test_tiny_run_writes_every_section(tmp_path, capsys):
    out = tmp_path / "check.json"
    assert gpu_check.main(["--tiny", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "decode (ms per step" in printed and "paper: Nemotron-H-8B / Llama-3.1-8B throughput 3x" in printed
    data = json.loads(out.read_text())
    graph = [r for r in data["decode"] if r["mode"] == "graph"]
    assert len(graph) == 2 * 2 * 2 and all(r["ms_per_step"] > 0 and r["x_floor"] > 0 for r in graph)
    # Llama's 32 attention + FFN layers launch fewer kernels than the hybrid's 24 Mamba-2 layers
    kernels = {r["model"]: r["kernels_per_step"] for r in graph}
    assert 500 < kernels["llama_3_1_8b"] < kernels["nemotron_h_8b"] < 3000, kernels
    assert {r["mode"] for r in data["decode"]} == {"graph", "eager"}
    assert {(r["model"], r["precision"]) for r in data["train"]} == {
        (m, p) for m in ("nemotron_h_8b", "llama_3_1_8b") for p in ("bf16", "fp8-torchao")}
    assert all(r["tokens_per_s"] > 0 for r in data["train"]), data["train"]
    assert data["train"][0]["fp8_linears"] == 0 and data["train"][1]["fp8_linears"] > 0
    assert "only the pure-PyTorch path ran" in data["ssd"][0]["triton"]
    assert data["errors"] == {}


def test_a_cache_that_does_not_fit_is_reported_not_attempted(monkeypatch):
    monkeypatch.setattr(gpu_check, "free_bytes", lambda device: 1000)
    check = gpu_check.run(["decode"], tiny=True)
    assert all("does not fit" in r["skipped"] for r in check.decode)


def test_a_spent_budget_skips_rows():
    check = gpu_check.run(["decode", "train"], tiny=True, budget_s=1e-9)
    assert check.decode and all(r.get("skipped") == "time budget spent" for r in check.decode + check.train)


def test_without_cuda_the_full_check_says_what_to_do(capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    assert gpu_check.main([]) == 2
    assert "no CUDA device here" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        gpu_check.main(["--budget-s", "0"])
