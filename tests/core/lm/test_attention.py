"""Attention, RoPE, FFN and norms against naive reference implementations."""

import math

import pytest
import torch

from nvrepro.core.lm.config import AttentionConfig, FFNConfig
from nvrepro.core.lm.layers.attention import CausalSelfAttention
from nvrepro.core.lm.layers.mlp import FFN
from nvrepro.core.lm.layers.norms import GatedGroupRMSNorm, RMSNorm
from nvrepro.core.lm.layers.rope import apply_rope, rope_inv_freq


def naive_attention(layer: CausalSelfAttention, x: torch.Tensor) -> torch.Tensor:
    """Loop over query heads; each uses KV head h // (n_heads / n_kv_heads); explicit softmax."""
    b, l, _ = x.shape
    hd = layer.head_dim
    q = x @ layer.q_proj.weight.T
    k = x @ layer.k_proj.weight.T
    v = x @ layer.v_proj.weight.T
    group = layer.n_heads // layer.n_kv_heads
    outs = []
    for h in range(layer.n_heads):
        qh = q[..., h * hd:(h + 1) * hd]
        kv = h // group
        kh = k[..., kv * hd:(kv + 1) * hd]
        vh = v[..., kv * hd:(kv + 1) * hd]
        if layer.cfg.rope:
            pos = torch.arange(l)
            qh = naive_rope(qh, pos, layer.cfg.rope_theta)
            kh = naive_rope(kh, pos, layer.cfg.rope_theta)
        scores = qh @ kh.transpose(-1, -2) / math.sqrt(hd)
        scores = scores.masked_fill(torch.triu(torch.ones(l, l, dtype=torch.bool), 1), float("-inf"))
        outs.append(torch.softmax(scores, -1) @ vh)
    return torch.cat(outs, -1) @ layer.o_proj.weight.T


def naive_rope(x: torch.Tensor, pos: torch.Tensor, theta: float) -> torch.Tensor:
    """Rotate channel pairs (i, i + d/2) by angle pos * theta^(-2i/d) using complex numbers."""
    d = x.shape[-1]
    half = d // 2
    freqs = torch.tensor([theta ** (-2 * i / d) for i in range(half)], dtype=torch.float64)
    angle = pos.double()[:, None] * freqs[None]
    z = torch.complex(x[..., :half].double(), x[..., half:].double()) * torch.polar(torch.ones_like(angle), angle)
    return torch.cat([z.real, z.imag], -1).to(x.dtype)


@pytest.mark.parametrize("n_heads,n_kv,rope", [(4, 4, False), (4, 2, False), (6, 2, True), (4, 1, True)])
def test_attention_matches_naive(n_heads, n_kv, rope):
    torch.manual_seed(0)
    cfg = AttentionConfig(n_heads=n_heads, n_kv_heads=n_kv, head_dim=8, rope=rope)
    layer = CausalSelfAttention(24, cfg).double()
    x = torch.randn(2, 11, 24, dtype=torch.float64)
    torch.testing.assert_close(layer(x), naive_attention(layer, x), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("rope", [False, True])
def test_kv_cache_prefill_and_decode_equal_full_forward(rope):
    torch.manual_seed(1)
    cfg = AttentionConfig(n_heads=4, n_kv_heads=2, head_dim=8, rope=rope)
    layer = CausalSelfAttention(16, cfg).double()
    x = torch.randn(3, 20, 16, dtype=torch.float64)
    full = layer(x)
    cache = layer.allocate_cache(3, 32, dtype=torch.float64)
    parts = [layer(x[:, :7], cache), layer(x[:, 7:12], cache)]  # prefill in two pieces
    parts += [layer(x[:, t:t + 1], cache) for t in range(12, 20)]
    torch.testing.assert_close(torch.cat(parts, 1), full, rtol=1e-10, atol=1e-10)
    assert cache.length == 20


def test_kv_cache_overflow_is_a_clear_error():
    layer = CausalSelfAttention(16, AttentionConfig(n_heads=2, n_kv_heads=2, head_dim=8))
    cache = layer.allocate_cache(1, 4)
    with pytest.raises(ValueError, match="capacity 4"):
        layer(torch.randn(1, 5, 16), cache)


def test_rope_matches_complex_rotation():
    torch.manual_seed(2)
    x = torch.randn(2, 3, 9, 16, dtype=torch.float64)
    pos = torch.arange(5, 14)
    got = apply_rope(x, pos, rope_inv_freq(16, 500000.0).double())
    torch.testing.assert_close(got, naive_rope(x, pos, 500000.0), rtol=1e-6, atol=1e-6)


def test_rope_preserves_norm_and_relative_positions():
    torch.manual_seed(3)
    inv = rope_inv_freq(8, 10000.0).double()
    q, k = torch.randn(1, 1, 1, 8, dtype=torch.float64), torch.randn(1, 1, 1, 8, dtype=torch.float64)
    def score(i, j):
        return (apply_rope(q, torch.tensor([i]), inv) * apply_rope(k, torch.tensor([j]), inv)).sum()
    assert torch.isclose(score(3, 1), score(10, 8))  # depends on i - j only
    assert torch.isclose(apply_rope(q, torch.tensor([7]), inv).norm(), q.norm())


def test_ffn_formulas():
    torch.manual_seed(4)
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    relu2 = FFN(8, FFNConfig(hidden=16, activation="relu2")).double()
    ref = torch.clamp(x @ relu2.up_proj.weight.T, min=0) ** 2 @ relu2.down_proj.weight.T
    torch.testing.assert_close(relu2(x), ref)
    swiglu = FFN(8, FFNConfig(hidden=16, activation="swiglu")).double()
    g = x @ swiglu.gate_proj.weight.T
    ref = (g * torch.sigmoid(g) * (x @ swiglu.up_proj.weight.T)) @ swiglu.down_proj.weight.T
    torch.testing.assert_close(swiglu(x), ref)


def test_rmsnorm_and_gated_group_norm():
    torch.manual_seed(5)
    x, z = torch.randn(3, 12, dtype=torch.float64), torch.randn(3, 12, dtype=torch.float64)
    norm = RMSNorm(12, eps=1e-6).double()
    norm.weight.data = torch.randn(12, dtype=torch.float64)
    ref = x / torch.sqrt((x**2).mean(-1, keepdim=True) + 1e-6) * norm.weight
    torch.testing.assert_close(norm(x), ref)
    gated = GatedGroupRMSNorm(12, n_groups=3, eps=1e-6).double()
    g = x * z * torch.sigmoid(z)
    parts = [gp / torch.sqrt((gp**2).mean(-1, keepdim=True) + 1e-6) for gp in g.split(4, dim=-1)]
    torch.testing.assert_close(gated(x, z), torch.cat(parts, -1) * gated.weight)
