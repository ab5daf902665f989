"""The Retro model: CCA against a naive per-position loop, causality, GPT equivalence, the layer rule."""

import math

import pytest
import torch

from nvrepro.core.lm.layers.chunked_cross_attention import ChunkedCrossAttention, NeighbourContext, shifted_chunk_of
from nvrepro.core.lm.model import PatternLM, build_model
from nvrepro.core.tooling.validation import ConfigError
from nvrepro.retro.model import RetroConfig, RetroLM, gpt_config, retro_layer_numbers, retro_pattern, retrofit_from_gpt

ATTN = dict(n_heads=2, n_kv_heads=1, head_dim=8)


def small_config(**kw) -> RetroConfig:
    base = dict(pattern=retro_pattern(6), d_model=16, vocab_size=40, max_seq_len=64, chunk_len=4,
                num_neighbours=2, attention=dict(ATTN, rope=True), ffn=dict(hidden=32))
    return RetroConfig(**{**base, **kw})


def naive_cca(layer: ChunkedCrossAttention, x: torch.Tensor, encoded: torch.Tensor, m: int) -> torch.Tensor:
    """Position by position: token p attends to the neighbours of chunk (p - m + 1) // m, written out."""
    attn = layer.attention
    h, kv, hd = attn.cfg.n_heads, attn.cfg.n_kv_heads, attn.cfg.head_dim
    b, n, d = x.shape
    out = torch.zeros_like(x)
    for i in range(b):
        for p in range(n):
            if p < m - 1 or (p - m + 1) // m >= encoded.shape[1]:
                continue
            u = (p - m + 1) // m
            q = attn.q_proj.weight @ x[i, p]                      # (h hd,)
            keys = encoded[i, u] @ attn.k_proj.weight.T           # (k r, kv hd)
            values = encoded[i, u] @ attn.v_proj.weight.T
            heads = []
            for head in range(h):
                g = head // (h // kv)
                qh = q[head * hd:(head + 1) * hd]
                scores = keys[:, g * hd:(g + 1) * hd] @ qh / math.sqrt(hd)
                heads.append(torch.softmax(scores, 0) @ values[:, g * hd:(g + 1) * hd])
            out[i, p] = attn.o_proj.weight @ torch.cat(heads)
    return out


@pytest.mark.parametrize("n, c", [(16, 4), (14, 3), (16, 2), (3, 0)])
def test_cca_equals_a_naive_per_position_loop(n, c):
    torch.manual_seed(0)
    m, d = 4, 16
    cfg = small_config()
    layer = ChunkedCrossAttention(d, cfg.attention)
    x = torch.randn(2, n, d)
    encoded = torch.randn(2, c, 6, d)
    got = layer(x, NeighbourContext(m, c, lambda hidden: encoded))
    torch.testing.assert_close(got, naive_cca(layer, x, encoded, m), rtol=1e-5, atol=1e-6)
    assert [shifted_chunk_of(p, m) for p in range(9)] == [-1, -1, -1, 0, 0, 0, 0, 1, 1]


def test_cca_without_neighbours_adds_nothing_and_rejects_a_tensor_context():
    layer = ChunkedCrossAttention(16, small_config().attention)
    x = torch.randn(1, 8, 16)
    assert torch.equal(layer(x), torch.zeros_like(x))
    with pytest.raises(TypeError, match="NeighbourContext"):
        layer(x, torch.randn(1, 3, 16))


def test_neighbours_of_a_chunk_reach_no_position_before_its_last_token():
    """Perturb the neighbours retrieved for chunk u: logits before position u m + m - 1 are unchanged
    (the shift keeps them from seeing text retrieved with tokens they have not read yet); later ones move."""
    torch.manual_seed(1)
    cfg = small_config()
    model = RetroLM(cfg).eval()
    m, c = cfg.chunk_len, 4
    ids = torch.randint(0, cfg.vocab_size, (2, c * m))
    neighbours = torch.randint(0, cfg.vocab_size, (2, c, 2, 2 * m))
    base = model(ids, neighbours=neighbours)
    for u in range(c):
        changed = neighbours.clone()
        changed[:, u] = torch.randint(0, cfg.vocab_size, changed[:, u].shape)
        out = model(ids, neighbours=changed)
        first = u * m + m - 1
        torch.testing.assert_close(out[:, :first], base[:, :first], rtol=0, atol=0)
        assert (out[:, first:] - base[:, first:]).abs().amax() > 1e-4


def test_without_neighbours_retro_is_the_gpt_it_was_retrofitted_from():
    torch.manual_seed(2)
    cfg = small_config()
    gpt = PatternLM(gpt_config(cfg)).eval()
    assert gpt.cfg.pattern == "*-" * 6
    retro = retrofit_from_gpt(RetroLM(cfg), gpt).eval()
    ids = torch.randint(0, cfg.vocab_size, (2, 12))
    torch.testing.assert_close(retro(ids), gpt(ids), rtol=0, atol=0)
    neighbours = torch.randint(0, cfg.vocab_size, (2, 3, 2, 8))
    assert (retro(ids, neighbours=neighbours) - gpt(ids)).abs().amax() > 1e-4
    with pytest.raises(ValueError, match="gpt"):
        retrofit_from_gpt(RetroLM(cfg), PatternLM(gpt_config(small_config(d_model=32))))


def test_encoder_is_conditioned_on_the_decoder_states_of_its_chunk():
    """Changing a token of chunk 0 changes what the neighbours of chunk 0 contribute: the logit
    difference at chunk 1's positions differs with and without neighbours."""
    torch.manual_seed(3)
    cfg = small_config()
    model = RetroLM(cfg).eval()
    encodings = []
    for first in (1, 2):
        ids = torch.randint(0, cfg.vocab_size, (1, 8))
        ids[0, 0] = first
        context = model.neighbour_context(torch.ones(1, 2, 2, 8, dtype=torch.long), 1, 8)
        model(ids, context=context)
        encodings.append(context._encoded)
    assert (encodings[0] - encodings[1]).abs().amax() > 1e-5


def test_layer_rule_of_the_paper():
    assert retro_layer_numbers(6) == [6]
    assert retro_layer_numbers(12) == [6, 9, 12]
    assert retro_layer_numbers(15) == [6, 9, 12, 15]
    assert retro_layer_numbers(24) == [9, 12, 15, 18, 21, 24]
    assert retro_pattern(7) == "*-*-*-*-*-*C-*-"


def test_errors_name_what_is_wrong():
    with pytest.raises(ConfigError, match="pattern"):
        small_config(pattern="*-*-")
    with pytest.raises(ConfigError, match="chunk_len"):
        small_config(chunk_len=0)
    model = RetroLM(small_config())
    ids = torch.randint(0, 40, (1, 8))
    with pytest.raises(ValueError, match="neighbours"):
        model(ids, neighbours=torch.zeros(1, 3, 2, 8, dtype=torch.long))  # 3 chunks > 8 // 4
    with pytest.raises(ValueError, match="neighbours"):
        model(ids, neighbours=torch.zeros(1, 2, 2, 6, dtype=torch.long))  # neighbour length != 2 m
    with pytest.raises(ValueError, match="cached decoding"):
        model(ids, model.allocate_cache(1, 16), neighbours=torch.zeros(1, 2, 2, 8, dtype=torch.long))


def test_build_model_and_checkpoint_config_round_trip():
    cfg = small_config()
    assert isinstance(build_model(cfg, device="meta"), RetroLM)
    again = RetroConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.neighbour_len == 8
