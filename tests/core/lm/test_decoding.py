"""The segment decode stepper: same logits and caches as the model's own forward, eager and compiled."""

import time

import pytest
import torch

from nvrepro.core.lm.config import ModelConfig
from nvrepro.hybrid.decode_cost import transformer_twin
from nvrepro.core.lm.decoding import DecodeStepper, Segment, compile_available, decode_stepper, split_segments
from nvrepro.core.lm.layers.attention import KVCache
from nvrepro.core.lm.model import build_model

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
    stepper = decode_stepper(model)
    got = torch.stack([stepper(ids[:, t], cache) for t in range(6)], 1)
    torch.testing.assert_close(got, model(ids), rtol=1e-10, atol=1e-10)


def own_decoding(model, ids, prefill: int):
    """Reference: logits of ``model(ids[:, t:t+1], cache)`` for each t after a prefill, stacked."""
    cache = model.allocate_cache(ids.shape[0], ids.shape[1])
    model(ids[:, :prefill], cache)
    return torch.stack([model(ids[:, t:t + 1], cache)[:, 0] for t in range(prefill, ids.shape[1])], 1)


def stepper_decoding(model, stepper, ids, prefill: int):
    """The same steps through ``stepper``, from a prefill by the model's own forward."""
    cache = model.allocate_cache(ids.shape[0], ids.shape[1])
    model(ids[:, :prefill], cache)
    return torch.stack([stepper(ids[:, t], cache) for t in range(prefill, ids.shape[1])], 1)


@pytest.fixture
def fresh_compile_probe():
    """compile_available() is cached per process: measure again, before and after the test."""
    compile_available.cache_clear()
    yield
    compile_available.cache_clear()


def test_compiled_steps_go_through_torch_compile_and_match_the_models_decoding(monkeypatch):
    ok, reason = compile_available()
    if not ok:
        pytest.skip(f"torch.compile cannot run here ({reason}); the eager fallback is tested instead")
    calls, real_compile = [], torch.compile

    def recording_compile(fn, **kwargs):  # the real torch.compile, counting calls to its result
        compiled = real_compile(fn, **kwargs)

        def run(*args):
            calls.append(fn.__name__)
            return compiled(*args)
        return run

    monkeypatch.setattr(torch, "compile", recording_compile)
    hybrid = small_model("M-*-M-", torch.float32)
    twin = build_model(transformer_twin(hybrid.cfg)).eval()
    ids = torch.randint(0, 50, (1, 12), generator=torch.Generator().manual_seed(3))
    for model in (hybrid, twin):
        calls.clear()
        started = time.perf_counter()
        stepper = decode_stepper(model, compile=True)
        got = stepper_decoding(model, stepper, ids, 8)
        print(f"{model.cfg.pattern}: compiled and ran 4 steps in {time.perf_counter() - started:.1f} s")
        assert stepper.compiled
        assert calls == [f"decode_segment_{n}" for _ in range(4) for n in range(len(stepper.segments))]
        torch.testing.assert_close(got, own_decoding(model, ids, 8), rtol=1e-4, atol=1e-5)
    # Kept per model, so that a second use does not compile again.
    assert decode_stepper(hybrid, compile=True) is decode_stepper(hybrid, compile=True)


def test_where_compiling_fails_steps_are_eager_with_the_same_logits(monkeypatch, fresh_compile_probe):
    """Simulated: a torch.compile whose compiled functions fail when run, as one without a working
    C++ compiler does on a CPU. The stepper warns, never calls them, and decodes eagerly."""
    def broken_compile(fn, **kwargs):
        def run(*args):
            raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found (simulated)")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    model = small_model("M-*M-")
    with pytest.warns(UserWarning, match="torch.compile is not available here .*C\\+\\+ compiler"):
        stepper = DecodeStepper(model, compile=True)
    assert not stepper.compiled
    ids = torch.randint(0, 50, (2, 10), generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(stepper_decoding(model, stepper, ids, 6), own_decoding(model, ids, 6),
                               rtol=1e-12, atol=1e-12)


def test_bad_input_is_named():
    model = small_model("M*")
    cache = model.allocate_cache(1, 3)
    stepper = decode_stepper(model)
    with pytest.raises(ValueError, match="ids: expected shape"):
        stepper(torch.zeros(1, 2, dtype=torch.long), cache)
    for _ in range(3):
        stepper(torch.zeros(1, dtype=torch.long), cache)
    with pytest.raises(ValueError, match="cache: full at 3 tokens"):
        stepper(torch.zeros(1, dtype=torch.long), cache)
