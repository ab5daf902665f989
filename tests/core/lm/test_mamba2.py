"""Mamba-2 mixer: full forward vs an independent token-by-token reference, prefill/decode
through Mamba2State, chunked prefill, gradients, init, and memory accounting."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from nvrepro.core.lm.config import MambaConfig
from nvrepro.core.lm.layers.mamba2 import Mamba2Mixer, Mamba2State, mamba2_state_bytes

F64 = torch.float64
D_MODEL = 24


def make_mixer(dtype=F64, **overrides) -> Mamba2Mixer:
    """A small mixer with every parameter randomised, so that each one matters in the tests."""
    kw = dict(n_heads=4, head_dim=3, d_state=5, n_groups=2, d_conv=4, chunk_size=8)
    kw.update(overrides)
    m = Mamba2Mixer(D_MODEL, MambaConfig(**kw), norm_eps=1e-5).to(dtype)
    with torch.no_grad():
        m.D.normal_()
        m.norm.weight.uniform_(0.5, 1.5)
        if m.conv1d.bias is not None:
            m.conv1d.bias.normal_(0, 0.3)
        m.conv1d.weight.normal_(0, 0.5)
        m.dt_bias.add_(1.0)  # larger dt than init so the decay is visible over a few tokens
    return m


@torch.no_grad()
def reference_mixer(m: Mamba2Mixer, u: torch.Tensor) -> torch.Tensor:
    """Token-by-token Mamba-2 written from the equations, sharing no code with the module."""
    cfg = m.cfg
    bsz, l, _ = u.shape
    h, p, n, g, k = cfg.n_heads, cfg.head_dim, cfg.d_state, cfg.n_groups, cfg.d_conv
    di, gn = cfg.d_inner, cfg.n_groups * cfg.d_state
    proj = u @ m.in_proj.weight.T
    z, xbc, dt_raw = proj[..., :di], proj[..., di:di + cfg.conv_dim], proj[..., di + cfg.conv_dim:]
    w = m.conv1d.weight[:, 0, :]  # (conv_dim, k); tap k-1 multiplies the current token
    lo, hi = cfg.dt_limit
    A = -torch.exp(m.A_log)
    out = torch.zeros(bsz, l, D_MODEL, dtype=u.dtype)
    for bi in range(bsz):
        state = torch.zeros(h, p, n, dtype=u.dtype)
        for t in range(l):
            conv = torch.zeros(cfg.conv_dim, dtype=u.dtype)
            for j in range(k):
                src = t - (k - 1) + j
                if src >= 0:
                    conv += w[:, j] * xbc[bi, src]
            if m.conv1d.bias is not None:
                conv += m.conv1d.bias
            conv = conv * torch.sigmoid(conv)
            x = conv[:di].reshape(h, p)
            B = conv[di:di + gn].reshape(g, n)
            C = conv[di + gn:].reshape(g, n)
            y = torch.zeros(h, p, dtype=u.dtype)
            for hh in range(h):
                dt = min(max(math.log1p(math.exp(float(dt_raw[bi, t, hh] + m.dt_bias[hh]))), lo), hi)
                grp = hh // (h // g)
                state[hh] = math.exp(dt * A[hh]) * state[hh] + dt * torch.outer(x[hh], B[grp])
                y[hh] = state[hh] @ C[grp] + m.D[hh] * x[hh]
            y = y.reshape(di) * F.silu(z[bi, t])
            yg = y.reshape(g, di // g)
            yg = yg / torch.sqrt((yg ** 2).mean(-1, keepdim=True) + m.norm.eps)
            out[bi, t] = (yg.reshape(di) * m.norm.weight) @ m.out_proj.weight.T
    return out


@pytest.mark.parametrize("overrides", [
    {},
    {"n_groups": 1, "conv_bias": False},
    {"n_groups": 4, "d_conv": 2, "chunk_size": 5, "dt_limit": (0.05, 0.4)},
])
def test_forward_matches_token_by_token_reference(overrides):
    torch.manual_seed(0)
    m = make_mixer(**overrides)
    u = torch.randn(2, 19, D_MODEL, dtype=F64)
    torch.testing.assert_close(m(u), reference_mixer(m, u), atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("prompt_len", [1, 3, 8, 13])
def test_prefill_then_decode_equals_full_forward(prompt_len):
    torch.manual_seed(1)
    m = make_mixer()
    u = torch.randn(2, 21, D_MODEL, dtype=F64)
    full = m(u)
    state = m.allocate_state(2)
    assert not state.filled
    outs = [m(u[:, :prompt_len], state)]
    assert state.filled
    for t in range(prompt_len, u.shape[1]):
        outs.append(m(u[:, t:t + 1], state))
    torch.testing.assert_close(torch.cat(outs, 1), full, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("split", [1, 2, 7, 8, 15])
def test_chunked_prefill_equals_single_prefill(split):
    """Prompt in two pieces (each may be shorter than d_conv or the chunk) == in one piece."""
    torch.manual_seed(2)
    m = make_mixer()
    u = torch.randn(2, 17, D_MODEL, dtype=F64)
    s_one = m.allocate_state(2)
    y_one = m(u, s_one)
    s_two = m.allocate_state(2)
    y_two = torch.cat([m(u[:, :split], s_two), m(u[:, split:], s_two)], 1)
    torch.testing.assert_close(y_two, y_one, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(s_two.ssm_state, s_one.ssm_state, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(s_two.conv_state, s_one.conv_state, atol=1e-12, rtol=1e-12)
    # And the stored state continues correctly into decoding.
    nxt = torch.randn(2, 1, D_MODEL, dtype=F64)
    torch.testing.assert_close(m(nxt, s_two), m(torch.cat([u, nxt], 1))[:, -1:], atol=1e-10, rtol=1e-10)


def test_state_layout_and_bytes():
    torch.manual_seed(3)
    cfg = MambaConfig(n_heads=4, head_dim=8, d_state=16, n_groups=2, d_conv=4)
    s = Mamba2State.zeros(cfg, batch=3, dtype=torch.bfloat16)
    assert s.conv_state.shape == (3, cfg.conv_dim, cfg.d_conv)
    assert s.ssm_state.shape == (3, 4, 8, 16) and s.ssm_state.dtype == torch.float32
    assert not s.filled
    nbytes = s.conv_state.numel() * 2 + s.ssm_state.numel() * 4
    assert mamba2_state_bytes(cfg, 3) == nbytes == 3 * (cfg.conv_dim * 4 * 2 + 4 * 8 * 16 * 4)
    assert mamba2_state_bytes(cfg, 1, 4, 4) == cfg.conv_dim * 4 * 4 + 4 * 8 * 16 * 4
    assert Mamba2State.zeros(cfg, 1, dtype=F64).ssm_state.dtype == F64


def test_gradients_flow_through_chunked_path():
    torch.manual_seed(4)
    m = make_mixer(dtype=torch.float32)
    u = torch.randn(2, 30, D_MODEL, requires_grad=True)
    m(u).square().mean().backward()
    assert torch.isfinite(u.grad).all() and u.grad.abs().sum() > 0
    for name, prm in m.named_parameters():
        assert prm.grad is not None and torch.isfinite(prm.grad).all(), name
        assert prm.grad.abs().sum() > 0, name


def test_parameter_names_shapes_and_init():
    torch.manual_seed(5)
    cfg = MambaConfig(n_heads=6, head_dim=4, d_state=8, n_groups=2, d_conv=4,
                      dt_min=0.002, dt_max=0.05)
    m = Mamba2Mixer(32, cfg)
    shapes = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    assert shapes == {
        "in_proj.weight": (2 * 24 + 2 * 2 * 8 + 6, 32),
        "conv1d.weight": (cfg.conv_dim, 1, 4), "conv1d.bias": (cfg.conv_dim,),
        "dt_bias": (6,), "A_log": (6,), "D": (6,),
        "norm.weight": (24,), "out_proj.weight": (32, 24),
    }
    dt = F.softplus(m.dt_bias)
    assert (dt >= 0.002 - 1e-6).all() and (dt <= 0.05 + 1e-6).all()
    A = -torch.exp(m.A_log)
    assert (A <= -1).all() and (A >= -16).all()
    assert torch.equal(m.D, torch.ones(6))
    assert all(getattr(p, "_no_weight_decay", False) for p in (m.dt_bias, m.A_log, m.D))
    assert not getattr(m.in_proj.weight, "_no_weight_decay", False)
    assert m.conv1d.groups == cfg.conv_dim and m.conv1d.padding == (3,)
    assert "conv1d.bias" not in Mamba2Mixer(32, MambaConfig(conv_bias=False)).state_dict()


def test_gated_group_norm_matches_hand_reference():
    torch.manual_seed(6)
    m = make_mixer()
    y, z = torch.randn(3, 5, 12, dtype=F64), torch.randn(3, 5, 12, dtype=F64)
    g = (y * z * torch.sigmoid(z)).reshape(3, 5, 2, 6)
    want = (g / torch.sqrt(g.pow(2).mean(-1, keepdim=True) + 1e-5)).reshape(3, 5, 12) * m.norm.weight
    torch.testing.assert_close(m.norm(y, z), want, atol=1e-12, rtol=1e-12)


def test_low_precision_forward_and_decode():
    torch.manual_seed(7)
    m64 = make_mixer()
    m16 = make_mixer(dtype=torch.bfloat16)
    m16.load_state_dict(m64.state_dict())
    u = torch.randn(1, 12, D_MODEL, dtype=F64)
    y = m16(u.bfloat16())
    assert y.dtype == torch.bfloat16
    state = m16.allocate_state(1)
    assert state.ssm_state.dtype == torch.float32 and state.conv_state.dtype == torch.bfloat16
    dec = torch.cat([m16(u[:, :6].bfloat16(), state)] + [m16(u[:, t:t + 1].bfloat16(), state)
                                                         for t in range(6, 12)], 1)
    ref = m64(u)
    scale = ref.abs().max()
    assert (y.double() - ref).abs().max() < 0.05 * scale
    assert (dec.double() - ref).abs().max() < 0.05 * scale


def test_bad_inputs_raise():
    torch.manual_seed(8)
    m = make_mixer()
    with pytest.raises(ValueError, match=r"d_model=24.*got 23"):
        m(torch.randn(1, 3, 23, dtype=F64))
    with pytest.raises(ValueError, match="batch size"):
        m(torch.randn(2, 3, D_MODEL, dtype=F64), m.allocate_state(1))
    m.use_kernels = True  # CPU tensors: the kernels cannot run, and must not be silently skipped
    with pytest.raises(RuntimeError, match="use_kernels"):
        m(torch.randn(1, 3, D_MODEL, dtype=F64))
