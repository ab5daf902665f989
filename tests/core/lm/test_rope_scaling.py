"""RoPE scaling against HF transformers' RoPE initialisation functions and closed forms."""

import math

import pytest
import torch

from nvrepro.core.lm.config import AttentionConfig, ConfigError, ModelConfig
from nvrepro.core.lm.layers.attention import CausalSelfAttention
from nvrepro.core.lm.layers.rope_scaling import ntk_base, rotations, scaled_rope, yarn_attention_factor

transformers = pytest.importorskip("transformers")
from transformers import LlamaConfig  # noqa: E402
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS  # noqa: E402

# transformers 5 takes RoPE settings as one ``rope_parameters`` dict; 4.x as ``rope_theta`` plus a
# ``rope_scaling`` dict. Told apart by whether a default LlamaConfig has the attribute.
HAS_ROPE_PARAMETERS = hasattr(LlamaConfig(), "rope_parameters")


def hf_rope(rope: dict, head_dim: int, max_len: int, seq_len=None):
    """HF's ``(inv_freq float32, attention_factor)`` for a Llama config with these RoPE settings
    (``rope_type``, ``rope_theta`` and the method's fields), in the installed version's spelling."""
    fields = dict(rope)
    if HAS_ROPE_PARAMETERS:
        spelled = {"rope_parameters": fields}
    else:
        spelled = {"rope_theta": fields.pop("rope_theta"), "rope_scaling": fields}
    cfg = LlamaConfig(hidden_size=head_dim * 4, num_attention_heads=4, head_dim=head_dim,
                      max_position_embeddings=max_len, **spelled)
    kwargs = {} if seq_len is None else {"seq_len": seq_len}
    inv, attn = ROPE_INIT_FUNCTIONS[rope["rope_type"]](cfg, None, **kwargs)  # None: the device
    return inv.double(), float(attn)


# (head_dim, theta, s, L, alpha, beta): the UltraLong settings (Llama-3.1 theta, YaRN s = 128 / 256 /
# 512 from L = 8192) and YaRN's own defaults on Llama-2-like and toy shapes.
YARN_CASES = [
    (128, 500000.0, 128.0, 8192, 1.0, 4.0),
    (128, 500000.0, 256.0, 8192, 1.0, 4.0),
    (128, 500000.0, 512.0, 8192, 1.0, 4.0),
    (128, 500000.0, 128.0, 8192, 1.0, 32.0),
    (128, 10000.0, 16.0, 4096, 1.0, 32.0),
    (32, 10000.0, 8.0, 256, 1.0, 32.0),
    (32, 10000.0, 8.0, 256, 2.0, 8.0),
]


@pytest.mark.parametrize("hd,theta,s,L,alpha,beta", YARN_CASES)
def test_yarn_matches_hf(hd, theta, s, L, alpha, beta):
    ref, ref_attn = hf_rope({"rope_type": "yarn", "rope_theta": theta, "factor": s,
                             "original_max_position_embeddings": L,
                             "beta_fast": beta, "beta_slow": alpha}, hd, int(s * L))
    inv, attn = scaled_rope(hd, theta, "yarn", s, L, alpha=alpha, beta=beta)
    torch.testing.assert_close(inv, ref, rtol=2e-6, atol=0)  # HF works in float32
    assert attn == pytest.approx(ref_attn, rel=1e-12)
    assert attn == pytest.approx(0.1 * math.log(s) + 1)


@pytest.mark.parametrize("hd,theta,s", [(128, 500000.0, 8.0), (64, 10000.0, 4.0), (32, 10000.0, 16.0)])
def test_linear_matches_hf(hd, theta, s):
    ref, ref_attn = hf_rope({"rope_type": "linear", "rope_theta": theta, "factor": s}, hd, 4096)
    inv, attn = scaled_rope(hd, theta, "linear", s)
    torch.testing.assert_close(inv, ref, rtol=2e-6, atol=0)
    assert attn == ref_attn == 1.0


@pytest.mark.parametrize("hd,theta,s", [(128, 500000.0, 128.0), (64, 10000.0, 8.0), (32, 10000.0, 16.0)])
def test_ntk_matches_hf_dynamic_at_the_extended_length(hd, theta, s):
    # HF's "dynamic" NTK with factor 1 at length s*L uses base theta*(s*L/L)^(D/(D-2)): static NTK-aware.
    L = 2048
    ref, _ = hf_rope({"rope_type": "dynamic", "rope_theta": theta, "factor": 1.0}, hd, L, seq_len=int(s * L))
    inv, attn = scaled_rope(hd, theta, "ntk", s)
    torch.testing.assert_close(inv, ref, rtol=5e-6, atol=0)
    assert attn == 1.0


@pytest.mark.parametrize("s", [8.0, 128.0])
def test_llama3_matches_hf(s):
    params = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": s, "low_freq_factor": 1.0,
              "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
    ref, ref_attn = hf_rope(params, 128, int(s * 8192))
    inv, attn = scaled_rope(128, 500000.0, "llama3", s, 8192, alpha=1.0, beta=4.0)
    torch.testing.assert_close(inv, ref, rtol=2e-6, atol=0)
    assert attn == ref_attn == 1.0


def test_closed_forms():
    """PI divides every frequency by s; NTK divides exactly the slowest one by s and keeps the
    fastest; YaRN keeps pairs turning > beta times in L and interpolates those turning < alpha."""
    hd, theta, s, L = 64, 10000.0, 16.0, 1024
    base = torch.tensor([theta ** (-2 * i / hd) for i in range(hd // 2)], dtype=torch.float64)
    torch.testing.assert_close(scaled_rope(hd, theta, "linear", s)[0], base / s)
    ntk = scaled_rope(hd, theta, "ntk", s)[0]
    assert ntk[0] == base[0] and ntk[-1].item() == pytest.approx(base[-1].item() / s, rel=1e-12)
    assert ntk_base(theta, hd, s) == pytest.approx(theta * s ** (hd / (hd - 2)))
    yarn = scaled_rope(hd, theta, "yarn", s, L, alpha=1.0, beta=32.0)[0]
    r = rotations(base, L)
    assert (r > 32).sum() > 0 and (r < 1).sum() > 0
    torch.testing.assert_close(yarn[r > 32], base[r > 32])
    torch.testing.assert_close(yarn[r < 1], base[r < 1] / s)
    assert (yarn <= base * (1 + 1e-12)).all() and (yarn >= base / s * (1 - 1e-12)).all()
    assert yarn_attention_factor(1.0) == 1.0


def naive_scaled_attention(layer, x, inv_freq, attn_factor):
    """One head at a time, rotation with complex numbers, logits x attn_factor^2 (HF convention)."""
    b, l, _ = x.shape
    hd, half = layer.head_dim, layer.head_dim // 2
    q, k, v = x @ layer.q_proj.weight.T, x @ layer.k_proj.weight.T, x @ layer.v_proj.weight.T
    rot = torch.polar(torch.ones(l, half, dtype=torch.float64),
                      torch.arange(l, dtype=torch.float64)[:, None] * inv_freq[None])
    def rope(t):
        z = torch.complex(t[..., :half], t[..., half:]) * rot
        return torch.cat([z.real, z.imag], -1)
    group = layer.n_heads // layer.n_kv_heads
    outs = []
    for h in range(layer.n_heads):
        kv = h // group
        qh, kh = rope(q[..., h * hd:(h + 1) * hd]), rope(k[..., kv * hd:(kv + 1) * hd])
        scores = attn_factor**2 * qh @ kh.transpose(-1, -2) / math.sqrt(hd)
        scores = scores.masked_fill(torch.triu(torch.ones(l, l, dtype=torch.bool), 1), float("-inf"))
        outs.append(torch.softmax(scores, -1) @ v[..., kv * hd:(kv + 1) * hd])
    return torch.cat(outs, -1) @ layer.o_proj.weight.T


@pytest.mark.parametrize("scaling", ["linear", "ntk", "yarn", "llama3"])
def test_attention_uses_the_scaled_frequencies_and_temperature(scaling):
    torch.manual_seed(0)
    cfg = AttentionConfig(n_heads=4, n_kv_heads=2, head_dim=16, rope=True, rope_theta=100.0,
                          rope_scaling=scaling, rope_factor=8.0, rope_original_max_len=16,
                          rope_alpha=1.0, rope_beta=4.0)
    layer = CausalSelfAttention(32, cfg).double()
    x = torch.randn(2, 40, 32, dtype=torch.float64)
    hf_type = {"ntk": "dynamic"}.get(scaling, scaling)
    params = {"rope_type": hf_type, "rope_theta": 100.0, "factor": 8.0 if scaling != "ntk" else 1.0,
              "original_max_position_embeddings": 16, "beta_fast": 4.0, "beta_slow": 1.0,
              "low_freq_factor": 1.0, "high_freq_factor": 4.0}
    inv, attn = hf_rope(params, 16, 16, seq_len=128 if scaling == "ntk" else None)
    if scaling == "yarn":
        assert attn > 1
    torch.testing.assert_close(layer(x), naive_scaled_attention(layer, x, inv, attn), rtol=2e-5, atol=2e-6)


def test_default_config_is_unscaled():
    cfg = AttentionConfig(rope=True)
    inv, attn = scaled_rope(cfg.head_dim, cfg.rope_theta)
    assert (cfg.rope_scaling, cfg.rope_factor, attn) == ("none", 1.0, 1.0)
    torch.testing.assert_close(inv, torch.tensor([1e4 ** (-2 * i / 32) for i in range(16)], dtype=torch.float64))


@pytest.mark.parametrize("fields,message", [
    (dict(rope_scaling="ntk-aware"), "attention.rope_scaling: must be one of none, linear, ntk, yarn, llama3"),
    (dict(rope_scaling="yarn", rope_factor=8.0), "attention.rope_original_max_len: must be a positive integer"),
    (dict(rope_scaling="linear", rope_factor=0.5), "attention.rope_factor: the scale s must be >= 1"),
    (dict(rope_factor=4.0), "attention.rope_factor: must be 1.0 with rope_scaling='none'"),
    (dict(rope_scaling="yarn", rope_factor=4.0, rope_original_max_len=256, rope_alpha=32.0, rope_beta=1.0),
     "attention.rope_alpha: need 0 < rope_alpha < rope_beta"),
    (dict(rope=False, rope_scaling="linear", rope_factor=2.0), "attention.rope_scaling: 'linear' needs rope=True"),
])
def test_bad_scaling_fields_are_named(fields, message):
    attention = {"rope": True, **fields}
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ModelConfig(pattern="*-", attention=attention)
