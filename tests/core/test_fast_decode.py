"""The segment decode stepper: same logits and caches as the model's own forward, eager and compiled."""

import time

import pytest
import torch

from nvrepro.core.config import ModelConfig
from nvrepro.core.decode import transformer_twin
from nvrepro.core.fast_decode import DecodeStepper, Segment, compile_available, split_segments
from nvrepro.core.layers.attention import KVCache
from nvrepro.core.lm import build_model

YARN = dict(n_heads=4, n_kv_heads=2, head_dim=8, rope=True, rope_scaling="yarn", rope_factor=4.0,
            rope_original_max_len=16)
SMALL = dict(d_model=32, vocab_size=50, max_seq_len=64,
             mamba=dict(n_heads=4, head_dim=8, d_state=8, n_groups=2, chunk_size=8),
             attention=YARN, ffn=dict(hidden=64))


def small_model(pattern: str, dtype=torch.float64):
    torch.manual_seed(0)
    return build_model(ModelConfig(pattern=pattern, **SMALL)).to(dtype).eval()


def test_split_segments_cuts_at_attention_layers():
    assert split_segments("M-*-M-") == [Segment(None, (0, 1), 2), Segment(2, (3, 4, 5), None)]
    assert split_segments("MMM") == [Segment(None, (0, 1, 2), None)]
    assert split_segments("*-*") == [Segment(None, (), 0), Segment(0, (1,), 2), Segment(2, (), None)]


def _cache_tensors(cache):
    out = []
    for entry in cache.layers:
        if isinstance(entry, KVCache):
            out += [entry.k[:, :, :entry.length], entry.v[:, :, :entry.length]]
        elif entry is not None:
            out += [entry.conv_state, entry.ssm_state]
    return out


@pytest.mark.parametrize("pattern", ["M-*-M*-", "*-*-*-*", "MM-M"])
def test_eager_steps_equal_the_models_own_decoding(pattern):
    """Reference: ``model(ids[:, t:t+1], cache)``, itself tested against full forwards."""
    model = small_model(pattern)
    ids = torch.randint(0, 50, (2, 14), generator=torch.Generator().manual_seed(1))
    ref_cache, cache = model.allocate_cache(2, 20), model.allocate_cache(2, 20)
    model(ids[:, :9], ref_cache)
    model(ids[:, :9], cache)
    stepper = DecodeStepper(model)
    for t in range(9, 14):
        ref = model(ids[:, t:t + 1], ref_cache)[:, 0]
        torch.testing.assert_close(stepper(ids[:, t], cache), ref, rtol=1e-12, atol=1e-12)
    assert cache.length == ref_cache.length == 14
    for got, want in zip(_cache_tensors(cache), _cache_tensors(ref_cache), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_stepping_from_an_empty_cache_equals_a_full_forward():
    """Zero conv window and SSM state are the zero padding / initial state of a fresh sequence."""
    model = small_model("M-*M-")
    ids = torch.randint(0, 50, (3, 6), generator=torch.Generator().manual_seed(2))
    cache = model.allocate_cache(3, 6)
    stepper = model.decode_stepper()
    got = torch.stack([stepper(ids[:, t], cache) for t in range(6)], 1)
    torch.testing.assert_close(got, model(ids), rtol=1e-10, atol=1e-10)


def test_compiled_steps_agree_with_eager_ones():
    hybrid = small_model("M-*-M-", torch.float32)
    twin = build_model(transformer_twin(hybrid.cfg)).eval()
    for model in (hybrid, twin):
        ids = torch.randint(0, 50, (1, 12), generator=torch.Generator().manual_seed(3))
        eager_cache, compiled_cache = model.allocate_cache(1, 12), model.allocate_cache(1, 12)
        model(ids[:, :8], eager_cache)
        model(ids[:, :8], compiled_cache)
        eager, compiled = model.decode_stepper(), model.decode_stepper(compile=True)
        started = time.perf_counter()
        for t in range(8, 12):
            torch.testing.assert_close(compiled(ids[:, t], compiled_cache), eager(ids[:, t], eager_cache),
                                       rtol=1e-4, atol=1e-5)
        print(f"{model.cfg.pattern}: compiled and ran 4 steps in {time.perf_counter() - started:.1f} s")
    # Kept per model, so that a second use does not compile again.
    assert hybrid.decode_stepper(compile=True) is hybrid.decode_stepper(compile=True)


def test_bad_input_is_named():
    model = small_model("M*")
    cache = model.allocate_cache(1, 3)
    stepper = model.decode_stepper()
    with pytest.raises(ValueError, match="ids: expected shape"):
        stepper(torch.zeros(1, 2, dtype=torch.long), cache)
    for _ in range(3):
        stepper(torch.zeros(1, dtype=torch.long), cache)
    with pytest.raises(ValueError, match="cache: full at 3 tokens"):
        stepper(torch.zeros(1, dtype=torch.long), cache)


def test_compile_is_reported_available_here():
    """This project's CI machine has a C++ compiler; elsewhere the bench falls back to eager steps."""
    ok, reason = compile_available()
    assert ok, reason
