"""Static (fixed-shape, CUDA-graph-ready) decoding: the same logits and caches as the model's own
forward over the whole sequence, on CPU; the CUDA graph path where a GPU is present."""

import pytest
import torch
import torch.nn.functional as F

from nvrepro.core.lm.config import ModelConfig
from nvrepro.core.tooling.compiling import compile_available
from nvrepro.core.lm.model import build_model
from nvrepro.core.lm.static_decoding import StaticDecoder, decode_attention

YARN = dict(n_heads=4, n_kv_heads=2, head_dim=8, rope=True, rope_scaling="yarn", rope_factor=4.0,
            rope_original_max_len=16)
NOPE = dict(n_heads=4, n_kv_heads=1, head_dim=8)


def small_model(pattern: str, attention=YARN, dtype=torch.float64, device="cpu"):
    torch.manual_seed(0)
    cfg = ModelConfig(pattern=pattern, d_model=32, vocab_size=50, max_seq_len=64,
                      mamba=dict(n_heads=4, head_dim=8, d_state=8, n_groups=2, chunk_size=8),
                      attention=attention, ffn=dict(hidden=64))
    return build_model(cfg).to(device=device, dtype=dtype).eval()


def test_decode_attention_equals_sdpa_over_the_filled_slots():
    """Reference: torch's scaled_dot_product_attention with the KV heads repeated, over only the
    filled part of the cache; slots after the position hold garbage that must not count."""
    g = torch.Generator().manual_seed(0)
    b, h, kv, hd, cap, pos = 3, 8, 2, 16, 40, 23
    q = torch.randn(b, h, 1, hd, generator=g, dtype=torch.float64)
    k = torch.randn(b, kv, cap, hd, generator=g, dtype=torch.float64) * 3
    v = torch.randn(b, kv, cap, hd, generator=g, dtype=torch.float64)
    want = F.scaled_dot_product_attention(q, k[:, :, :pos + 1].repeat_interleave(h // kv, 1),
                                          v[:, :, :pos + 1].repeat_interleave(h // kv, 1))
    got = decode_attention(q, k, v, torch.tensor([pos]))
    torch.testing.assert_close(got, want.transpose(1, 2).reshape(b, 1, h * hd), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("pattern,attention", [("M-*-M*-", YARN), ("*-*-", NOPE), ("MM-M", YARN), ("M*M*", NOPE)])
def test_static_steps_equal_one_full_forward(pattern, attention):
    """Reference: the model's forward over the whole sequence without a cache (no decoding code at
    all): position t's logits must equal the static step's after t tokens."""
    model = small_model(pattern, attention)
    ids = torch.randint(0, 50, (2, 20), generator=torch.Generator().manual_seed(1))
    full = model(ids)
    decoder = StaticDecoder(model, batch=2, capacity=24)
    assert not decoder.graphed
    torch.testing.assert_close(decoder.prefill(ids[:, :11]), full[:, 10], rtol=1e-10, atol=1e-10)
    for t in range(11, 20):
        torch.testing.assert_close(decoder.step(ids[:, t]), full[:, t], rtol=1e-10, atol=1e-10)
    assert decoder.length == decoder.cache.length == 20 and int(decoder.position) == 20
    # The cache stays an ordinary LMCache: the model's own cached forward continues from it.
    nxt = torch.randint(0, 50, (2, 2), generator=torch.Generator().manual_seed(2))
    whole = model(torch.cat([ids, nxt], 1))
    torch.testing.assert_close(model(nxt, decoder.cache), whole[:, 20:], rtol=1e-10, atol=1e-10)


def test_prefill_resets_and_chunked_prefill_agrees():
    model = small_model("M-*-M-")
    ids = torch.randint(0, 50, (1, 17), generator=torch.Generator().manual_seed(3))
    decoder = StaticDecoder(model, batch=1, capacity=20)
    decoder.prefill(torch.randint(0, 50, (1, 9)))
    decoder.step(torch.tensor([4]))
    one = decoder.prefill(ids)  # a second prompt: nothing of the first may leak
    steps_one = [decoder.step(torch.tensor([t])) for t in (5, 6)]
    two = decoder.prefill(ids, chunk=5)
    steps_two = [decoder.step(torch.tensor([t])) for t in (5, 6)]
    ref = model(torch.cat([ids, torch.tensor([[5, 6]])], 1))
    for got in (one, two):
        torch.testing.assert_close(got, ref[:, 16], rtol=1e-10, atol=1e-10)
    for got in (steps_one, steps_two):
        torch.testing.assert_close(torch.stack(got, 1), ref[:, 17:19], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("pattern", ["M-*-M-", "*-*-"])
def test_generate_static_gives_the_cached_steps_tokens(pattern):
    model = small_model(pattern, dtype=torch.float32)
    ids = torch.randint(0, 50, (2, 6), generator=torch.Generator().manual_seed(4))
    for kwargs in (dict(), dict(temperature=0.8, top_k=10, seed=3)):
        want = model.generate(ids, 12, static=False, **kwargs)
        got = model.generate(ids, 12, static=True, **kwargs)
        assert torch.equal(got, want)
    assert not model.static_decoding_default(new_tokens=100)  # CPU: the cached steps stay the default


def test_bad_input_is_named():
    model = small_model("M-*-")
    with pytest.raises(ValueError, match="pattern: static decoding handles"):
        StaticDecoder(small_model("*X-"), 1, 8)
    with pytest.raises(ValueError, match="graph: CUDA graphs need"):
        StaticDecoder(model, 1, 8, graph=True)
    decoder = StaticDecoder(model, 1, 8)
    with pytest.raises(ValueError, match="prefill the prompt first"):
        decoder.step(torch.tensor([1]))
    with pytest.raises(ValueError, match="ids: 8 tokens"):
        decoder.prefill(torch.zeros(1, 8, dtype=torch.long))
    with pytest.raises(ValueError, match=r"ids: expected shape \(1, length\)"):
        decoder.prefill(torch.zeros(2, 3, dtype=torch.long))
    decoder.prefill(torch.zeros(1, 6, dtype=torch.long))
    decoder.step(torch.tensor([1]))
    decoder.step(torch.tensor([1]))
    with pytest.raises(ValueError, match="cache: full at 8 tokens"):
        decoder.step(torch.tensor([1]))
    with pytest.raises(ValueError, match="static decoding takes token ids only"):
        model.generate(torch.zeros(1, 3, dtype=torch.long), 2, static=True, context=torch.zeros(1, 2, 32))


def test_fill_random_sets_the_position_without_a_prefill():
    model = small_model("M*-")
    decoder = StaticDecoder(model, 2, 30)
    decoder.fill_random(25, seed=1)
    assert decoder.length == 25 and int(decoder.position) == 25
    assert decoder.step(torch.tensor([1, 2])).isfinite().all()


@pytest.mark.skipif(not compile_available()[0], reason="torch.compile cannot run here")
def test_compiled_static_steps_agree():
    model = small_model("M-*-M-", dtype=torch.float32)
    ids = torch.randint(0, 50, (2, 12), generator=torch.Generator().manual_seed(5))
    full = model(ids)
    decoder = StaticDecoder(model, 2, 16, compile=True)
    decoder.prefill(ids[:, :8])
    for t in range(8, 12):
        torch.testing.assert_close(decoder.step(ids[:, t]), full[:, t], rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
@pytest.mark.parametrize("compile", [False, True])
def test_cuda_graph_replays_equal_the_full_forward(compile):
    model = small_model("M-*-M*-", dtype=torch.float32, device="cuda")
    ids = torch.randint(0, 50, (2, 20), device="cuda", generator=torch.Generator("cuda").manual_seed(1))
    full = model(ids)
    decoder = StaticDecoder(model, 2, 24, compile=compile)
    assert decoder.graphed
    decoder.prefill(ids[:, :11])
    for t in range(11, 20):
        torch.testing.assert_close(decoder.step(ids[:, t]), full[:, t], rtol=1e-4, atol=1e-4)
    assert model.static_decoding_default(new_tokens=100)
    assert not model.static_decoding_default(new_tokens=8)
