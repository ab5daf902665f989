"""Notebook 01's walk through one Mamba-2 block: stage by stage, it must reproduce the core layer."""

from __future__ import annotations

import pytest
import torch

from nvrepro.core.lm.config import MambaConfig, ModelConfig
from nvrepro.core.lm.layers.mamba2 import Mamba2Mixer
from nvrepro.core.lm.layers.ssd import ssd_naive
from nvrepro.core.tooling.paper_facts import paper_value
from nvrepro.core.tooling.paths import REPO_ROOT
from nvrepro.core.tooling.validation import ConfigError
from nvrepro.hybrid.mamba2_block import (MAMBA_FACTS, causal_depthwise_conv, mamba2_layer, paper_comparison,
                                         stage_shapes, walk_mamba2)

CONFIGS = REPO_ROOT / "configs" / "hybrid"
D_MODEL = 32


def _layer(n_groups: int, dt_limit=(0.0, float("inf")), seed: int = 0) -> Mamba2Mixer:
    """A float64 layer with every parameter away from its init value (D, norm weight, conv bias are
    constants at init; a test on them would not see a D or a norm weight applied wrongly)."""
    cfg = MambaConfig(n_heads=4, head_dim=8, d_state=6, n_groups=n_groups, d_conv=4, chunk_size=8,
                      dt_limit=dt_limit)
    torch.manual_seed(seed)
    layer = Mamba2Mixer(D_MODEL, cfg).double()
    with torch.no_grad():
        for p in (layer.D, layer.norm.weight, layer.conv1d.bias):
            p.add_(0.3 * torch.randn_like(p))
    return layer


def _hidden(length: int = 21, seed: int = 1) -> torch.Tensor:
    return torch.randn(2, length, D_MODEL, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("n_groups", [1, 2, 4])
def test_walk_equals_core_layer_float64(n_groups):
    # 21 tokens with chunk_size 8: the layer's chunked path pads its last chunk; the walk does not chunk.
    layer, u = _layer(n_groups), _hidden()
    with torch.no_grad():
        expected = layer(u)
    assert torch.allclose(walk_mamba2(layer, u).output, expected, atol=1e-12, rtol=0)


def test_walk_applies_dt_limit():
    layer, u = _layer(2, dt_limit=(0.02, 0.05)), _hidden()
    walk = walk_mamba2(layer, u)
    assert walk["dt"].min() >= 0.02 and walk["dt"].max() <= 0.05
    with torch.no_grad():
        assert torch.allclose(walk.output, layer(u), atol=1e-12, rtol=0)


def test_walk_equals_core_layer_float32_toy_config():
    layer = mamba2_layer(CONFIGS / "why_hybrid_hybrid_lm.yaml", seed=0)
    u = torch.randn(1, 40, layer.d_model, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = layer(u)
    out = walk_mamba2(layer, u).output
    assert out.dtype == torch.float32
    assert torch.allclose(out, expected, atol=1e-5, rtol=1e-4)


def test_intermediates_against_independent_references():
    layer, u = _layer(2), _hidden()
    walk = walk_mamba2(layer, u)
    l = u.shape[1]
    # conv: torch's own Conv1d (padded both sides), keeping the first l outputs = the causal part
    ref_conv = layer.conv1d(walk["xBC"].transpose(1, 2))[..., :l].transpose(1, 2)
    assert torch.allclose(walk["conv1d"], ref_conv.detach(), atol=1e-12)
    # the decay mask, by its definition, token pair by token pair
    a = walk["dt"] * walk["A"]  # (b, l, h)
    L = walk["L"]
    for i, j in [(0, 0), (5, 2), (20, 0), (13, 12), (3, 7)]:
        want = torch.exp(a[:, j + 1:i + 1].sum(1)) if i >= j else torch.zeros_like(a[:, 0])
        assert torch.allclose(L[:, :, i, j], want, atol=1e-14)
    # the SSD with the skip: the token-by-token recurrence
    y_ref, _ = ssd_naive(walk["x"], walk["dt"], walk["A"], walk["B"], walk["C"], D=layer.D.detach())
    assert torch.allclose(walk["+Dx"], y_ref, atol=1e-12)
    # gate + grouped norm: the core norm module on the walk's y and z
    with torch.no_grad():
        ref_norm = layer.norm(walk["+Dx"].reshape(2, l, -1), walk["z"])
    assert torch.allclose(walk["norm"], ref_norm, atol=1e-12)


def test_grouped_norm_normalises_each_group():
    # With the norm weight at 1, each group of d_inner / n_groups channels of g = y * silu(z) comes out
    # with mean square ms / (ms + eps), ms the group's mean square before the norm.
    layer, u = _layer(4), _hidden()
    with torch.no_grad():
        layer.norm.weight.fill_(1.0)
    walk = walk_mamba2(layer, u)
    ms = walk["gate"].reshape(2, 21, 4, 8).pow(2).mean(-1)
    normed = walk["norm"].reshape(2, 21, 4, 8)
    assert torch.allclose(normed.pow(2).mean(-1), ms / (ms + layer.norm.eps), atol=1e-12)


def test_causal_depthwise_conv_by_hand():
    u = torch.tensor([[[1.0], [2.0], [3.0]]])  # (b=1, l=3, c=1)
    w = torch.tensor([[10.0, 1.0]])  # (c, K=2): 10 * previous + 1 * current
    out = causal_depthwise_conv(u, w, torch.tensor([0.5]))
    assert out[0, :, 0].tolist() == [1.5, 12.5, 23.5]


def test_stage_shapes_as_documented():
    # Hand-computed for d_model 32, 4 heads x 8, state 6, 2 groups, batch 2, length 21:
    # d_inner 32, xBC 32 + 2*2*6 = 56 channels, in_proj 32 + 56 + 4 = 92.
    walk = walk_mamba2(_layer(2), _hidden())
    expected = {"u": (2, 21, 32), "in_proj": (2, 21, 92), "z": (2, 21, 32), "xBC": (2, 21, 56),
                "dt_raw": (2, 21, 4), "conv1d": (2, 21, 56), "silu": (2, 21, 56), "x": (2, 21, 4, 8),
                "B": (2, 21, 2, 6), "C": (2, 21, 2, 6), "dt": (2, 21, 4), "A": (4,), "L": (2, 4, 21, 21),
                "CB": (2, 2, 21, 21), "ssd": (2, 21, 4, 8), "+Dx": (2, 21, 4, 8), "gate": (2, 21, 32),
                "norm": (2, 21, 32), "out": (2, 21, 32)}
    assert walk.shapes() == expected  # same order, same shapes
    cfg = ModelConfig(pattern="M", d_model=32, mamba=_layer(2).cfg)
    assert stage_shapes(cfg, batch=2, length=21) == expected
    table = walk.table()
    assert all(name in table for name in expected) and "(2, 21, 4, 8)" in table


def test_walk_bad_input_names_the_argument():
    layer = _layer(1)
    with pytest.raises(ConfigError, match="hidden"):
        walk_mamba2(layer, torch.randn(2, 5, D_MODEL + 1, dtype=torch.float64))
    with pytest.raises(ConfigError, match="hidden"):
        walk_mamba2(layer, torch.randn(5, D_MODEL, dtype=torch.float64))
    with pytest.raises(ConfigError, match="hidden"):
        walk_mamba2(layer, torch.randn(1, 0, D_MODEL, dtype=torch.float64))
    with pytest.raises(ConfigError, match="layer"):
        walk_mamba2(torch.nn.Linear(D_MODEL, D_MODEL), _hidden())
    with pytest.raises(ConfigError, match="batch"):
        stage_shapes(ModelConfig(pattern="M"), batch=0)
    with pytest.raises(KeyError, match="no stage"):
        walk_mamba2(layer, _hidden())["y"]


def test_mamba2_layer_is_seeded_and_leaves_global_rng():
    path = CONFIGS / "why_hybrid_hybrid_lm.yaml"
    state = torch.random.get_rng_state()
    a, b, c = mamba2_layer(path, seed=3), mamba2_layer(path, seed=3), mamba2_layer(path, seed=4)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(a.in_proj.weight, b.in_proj.weight) and not torch.equal(a.in_proj.weight, c.in_proj.weight)
    assert a.cfg.n_heads == 4 and a.d_model == 64  # the YAML's widths


def test_paper_facts_match_the_8b_config():
    # Two independent sources: the facts sheet (papers README) and the 8B's model YAML.
    ours = paper_comparison(CONFIGS / "nemotron_h_8b.yaml")
    for key in MAMBA_FACTS:
        assert ours[key] == paper_value("hybrid", key), key
    assert ours["attention_share_8b"] == pytest.approx(4 / 52)
    assert abs(ours["attention_share_8b"] - paper_value("hybrid", "attention_share_8b")) < 0.005
    toy = paper_comparison(CONFIGS / "why_hybrid_hybrid_lm.yaml")
    assert toy["attention_share_8b"] == pytest.approx(1 / 13) and toy["mamba_state_8b"] == 16


def test_silu_gate_matches_formula():
    # gate = y * silu(z), written with sigmoid (independent of F.silu)
    walk = walk_mamba2(_layer(1), _hidden(length=6))
    y, z = walk["+Dx"].reshape(2, 6, -1), walk["z"]
    assert torch.allclose(walk["gate"], y * z * torch.sigmoid(z), atol=1e-14)
    assert torch.allclose(walk["dt"], torch.log1p(torch.exp(walk["dt_raw"] + _layer(1).dt_bias.detach())), atol=1e-12)
    assert torch.allclose(walk["silu"], walk["conv1d"] * torch.sigmoid(walk["conv1d"]), atol=1e-14)
