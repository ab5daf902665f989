"""The layer-kind registry: a new kind is one class plus one registration; the built-in gated
cross-attention checked against a naive softmax attention and against the LM without it."""

import math

import pytest
import torch
from torch import nn

from nvrepro.core.lm import config as config_module
from nvrepro.core.lm.config import AttentionConfig, ConfigError, FFNConfig, MambaConfig, ModelConfig
from nvrepro.core.lm.info import count_parameters
from nvrepro.core.lm.layers.cross_attention import GatedCrossAttention
from nvrepro.core.lm.layers.kinds import LAYER_KINDS, LayerKind, layer_kind, register_layer_kind
from nvrepro.core.lm.model import build_model

SMALL = dict(d_model=32, vocab_size=17, max_seq_len=32,
             mamba=MambaConfig(n_heads=2, head_dim=16, d_state=8, chunk_size=8),
             attention=AttentionConfig(n_heads=4, n_kv_heads=2, head_dim=8), ffn=FFNConfig(hidden=48))


class Doubler(nn.Module):
    """A toy mixer: ``2 x`` through one scalar weight (so it has a parameter to count)."""

    def __init__(self, d_model: int):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(2.0))

    def forward(self, x):
        return self.scale * x


@pytest.fixture
def doubler_kind():
    kind = register_layer_kind(LayerKind("D", "doubler", "ffn", lambda cfg: Doubler(cfg.d_model)))
    yield kind
    LAYER_KINDS.pop("D")
    config_module.PATTERN_CHARS.pop("D")
    config_module.KIND_DESCRIPTIONS.pop("D")


def test_a_new_kind_is_one_class_and_one_registration(doubler_kind):
    with pytest.raises(ConfigError, match="unknown layer character"):
        ModelConfig(pattern="M*Q", **SMALL)
    cfg = ModelConfig(pattern="MD*-", **SMALL)
    model = build_model(cfg)
    assert isinstance(model.layers[1].mixer, Doubler) and model.layers[1].spec is doubler_kind
    ids = torch.randint(0, 17, (2, 5))
    # independent reference: the block is x + 2 * RMSNorm(x), written out here
    x = model.layers[0](model.embed(ids))
    norm = model.layers[1].norm
    expected = x + 2 * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + norm.eps) * norm.weight)
    torch.testing.assert_close(model.layers[1](x), expected)
    cache = model.allocate_cache(2, 8)
    assert cache.layers[1] is None  # no decoding state declared
    assert count_parameters(cfg)[1]["doubler"] == 1 + 32  # the scale and the pre-norm's weight
    logits = model.generate(ids, 3)
    assert logits.shape == (2, 8)


def test_registry_refuses_bad_kinds():
    with pytest.raises(ConfigError, match="already the 'mamba'"):
        register_layer_kind(LayerKind("M", "other", "ffn", lambda cfg: nn.Identity()))
    with pytest.raises(ConfigError, match="config_field"):
        LayerKind("Z", "z", "no_such_field", lambda cfg: nn.Identity())
    with pytest.raises(ConfigError, match="inputs"):
        LayerKind("Z", "z", "ffn", lambda cfg: nn.Identity(), frozenset({"images"}))
    with pytest.raises(ConfigError, match="no layer kind"):
        layer_kind("Z")


def naive_cross_attention(layer: GatedCrossAttention, x, context):
    """Softmax(q k^T / sqrt(d)) v per head, loops over heads; GQA by index h // (H / KV)."""
    cfg = layer.cfg
    q = layer.q_proj(x).unflatten(-1, (cfg.n_heads, cfg.head_dim))
    k = layer.k_proj(context).unflatten(-1, (cfg.n_kv_heads, cfg.head_dim))
    v = layer.v_proj(context).unflatten(-1, (cfg.n_kv_heads, cfg.head_dim))
    heads = []
    for h in range(cfg.n_heads):
        g = h // (cfg.n_heads // cfg.n_kv_heads)
        w = torch.softmax(q[:, :, h] @ k[:, :, g].transpose(1, 2) / math.sqrt(cfg.head_dim), -1)
        heads.append(w @ v[:, :, g])
    return math.tanh(layer.gate.item()) * layer.o_proj(torch.cat(heads, -1))


def test_cross_attention_matches_naive_attention():
    torch.manual_seed(0)
    layer = GatedCrossAttention(32, SMALL["attention"])
    with torch.no_grad():
        layer.gate.fill_(0.7)
    x, context = torch.randn(2, 5, 32), torch.randn(2, 7, 32)
    torch.testing.assert_close(layer(x, context), naive_cross_attention(layer, x, context), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="context"):
        layer(x)
    with pytest.raises(ValueError, match="context"):
        layer(x, torch.randn(3, 7, 32))


def test_inserting_a_cross_attention_layer_starts_as_the_identity():
    """tanh(0) = 0: the LM with an X layer computes what the LM without it does (Flamingo's gate)."""
    torch.manual_seed(0)
    base = build_model(ModelConfig(pattern="M*-", **SMALL))
    with_x = build_model(ModelConfig(pattern="M*X-", **SMALL))
    state = {k.replace("layers.2.", "layers.3."): v for k, v in base.state_dict().items()}
    missing, unexpected = with_x.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith("layers.2.") for k in missing)
    ids, context = torch.randint(0, 17, (2, 6)), torch.randn(2, 4, 32)
    torch.testing.assert_close(with_x(ids, context=context), base(ids))
    with pytest.raises(ValueError, match="context"):
        with_x(ids)
    # decoding through the caches, with the context at every step, equals the full forward
    with torch.no_grad():
        with_x.layers[2].mixer.gate.fill_(0.5)
        out = with_x.generate(ids, 4, context=context)
        ref = ids
        for _ in range(4):
            ref = torch.cat([ref, with_x(ref, context=context)[:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(out, ref)
