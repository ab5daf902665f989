"""Timing helpers, decode measurement, and ``nvrepro bench`` (tiny sizes; nothing here is timed).

Behaviour is checked against independent references: the cache bytes against the tensors'
own sizes and the closed form, decoding after a cache restore against a cache-free forward
pass, our Mamba-2 mixer against transformers' implementation.
"""

from __future__ import annotations

import json

import pytest
import torch

from nvrepro.hybrid import bench
from nvrepro.core.lm.config import AttentionConfig, MambaConfig, ModelConfig
from nvrepro.hybrid.decode_cost import (_restore, _snapshot, build_pair, cache_nbytes, predicted_cache_nbytes,
                                 time_decode, transformer_twin)
from nvrepro.core.lm.layers.mamba2 import Mamba2Mixer
from nvrepro.core.lm.model import build_model
from nvrepro.core.tooling.timing import measure, measure_side_by_side, num_threads

TINY = ModelConfig(pattern="M-*M-", d_model=32, vocab_size=50, max_seq_len=64,
                   mamba=MambaConfig(n_heads=4, head_dim=16, d_state=8, n_groups=2, chunk_size=8),
                   attention=AttentionConfig(n_heads=4, n_kv_heads=2, head_dim=8))


def test_num_threads_restores_and_validates():
    before = torch.get_num_threads()
    with num_threads(1) as n:
        assert n == 1 == torch.get_num_threads()
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads"):
        with num_threads(0):
            pass


def test_measure_counts_warmup_and_setup():
    calls, setups = [], []
    t = measure(lambda: calls.append(1), repeats=3, warmup=2, setup=lambda: setups.append(1))
    assert len(calls) == len(setups) == 5 and t.repeats == 3 and t.warmup == 2
    with pytest.raises(ValueError, match="repeats"):
        measure(lambda: None, repeats=0)


def test_side_by_side_interleaves_with_per_case_repeats():
    order = []
    t = measure_side_by_side({"a": lambda: order.append("a"), "b": (lambda: order.append("b"), None)},
                             repeats={"a": 3, "b": 1}, warmup={"a": 1, "b": 0})
    assert order == ["a", "b", "a", "a", "a"]  # round 0: both; b sits out after its one repeat
    assert t["a"].repeats == 3 and t["b"].repeats == 1


def test_transformer_twin_keeps_width_and_depth():
    twin = transformer_twin(TINY)
    assert twin.pattern == "*-**-" and twin.d_model == TINY.d_model and twin.n_layers == TINY.n_layers
    assert twin.attention == TINY.attention and TINY.pattern == "M-*M-"  # the original is untouched


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cache_bytes_match_closed_form(dtype):
    cache = build_model(TINY).allocate_cache(batch=3, capacity=40, dtype=dtype)
    e, m, a = dtype.itemsize, TINY.mamba, TINY.attention
    kv = 1 * 2 * 3 * 40 * a.n_kv_heads * a.head_dim * e  # one '*' layer: K and V
    conv = 2 * 3 * (m.n_heads * m.head_dim + 2 * m.n_groups * m.d_state) * m.d_conv * e  # two 'M' layers
    ssm = 2 * 3 * m.n_heads * m.head_dim * m.d_state * 4  # SSM state kept in float32
    assert cache_nbytes(cache) == kv + conv + ssm == predicted_cache_nbytes(TINY, 40, 3, dtype)


def test_restored_cache_decodes_like_a_full_forward():
    torch.manual_seed(0)
    model = build_model(TINY).double().eval()
    ids = torch.randint(TINY.vocab_size, (2, 12))
    with torch.no_grad():
        full = model(ids)  # no cache: the reference
        cache = model.allocate_cache(2, 12)
        model(ids[:, :8], cache)
        snap = _snapshot(cache)
        for _ in range(2):  # decode, restore, decode again: same logits both times
            _restore(cache, snap)
            steps = torch.cat([model(ids[:, t:t + 1], cache) for t in range(8, 12)], dim=1)
            torch.testing.assert_close(steps, full[:, 8:], rtol=1e-9, atol=1e-9)


def test_time_decode_reports_both_models():
    models = build_pair(TINY, 40, seed=0)
    assert models["transformer"].cfg.pattern == "*-**-" and models["hybrid"].cfg.max_seq_len >= 40
    r = time_decode(models, context=20, steps=3, repeats=2, warmup=0)
    for name, t in r.items():
        assert t.seconds_per_token > 0 and len(t.step_times) == 2 and t.tokens_per_second > 0
        assert t.cache_bytes == t.predicted_cache_bytes, name
    with pytest.raises(ValueError, match="max_seq_len"):
        time_decode(models, context=62, steps=3)  # 65 > max_seq_len=64


def test_our_mixer_computes_what_transformers_computes():
    """transformers' Mamba2Mixer (pure-PyTorch path) is an independent implementation."""
    torch.manual_seed(0)
    ours = Mamba2Mixer(TINY.d_model, TINY.mamba, TINY.norm_eps)
    theirs = bench.hf_mamba2_twin(ours, TINY.norm_eps)
    x = torch.randn(2, 21, TINY.d_model)  # not a multiple of the chunk size
    with bench._quiet_transformers(), torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-4, atol=1e-5)


def test_bench_quick_prints_the_table(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--threads", "1", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "1 thread(s)" in text
    for needle in ("ssd", "mixer", "decode", "recurrence", "transformers Mamba2Mixer", "max|dy|", "tok/s"):
        assert needle in text, needle
    data = json.loads(out.read_text())
    assert data["threads"] == 1 and data["quick"] is True
    assert {r["bench"] for r in data["rows"]} == {"ssd", "mixer", "decode", "retrieval"}
    assert all(r["ratio"] > 0 and r["target"] is None for r in data["rows"])


def test_bench_only_and_bad_threads(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--threads", "0"])
    assert bench.main(["--quick", "--threads", "1", "--only", "decode"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("ssd", "mixer", "decode"))]
    assert rows and all(line.startswith("decode") for line in rows)
