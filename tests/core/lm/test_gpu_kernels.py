"""The optional GPU kernels against the pure-PyTorch paths, on a GPU (issue 20, deliverable 2).

Each test needs CUDA and its package, and is skipped otherwise (on this project's CPU machines
all of them are). References: :func:`~nvrepro.core.lm.layers.ssd.ssd_chunked` (itself tested
against the token-by-token recurrence), the mixer with ``use_kernels=False``, torch's
``scaled_dot_product_attention`` and ``nn.Linear``.
"""

import importlib.util

import pytest
import torch

from nvrepro.core.lm.config import AttentionConfig, MambaConfig
from nvrepro.core.lm.layers import mamba2
from nvrepro.core.lm.layers.attention import CausalSelfAttention
from nvrepro.core.lm.layers.ssd import ssd_chunked
from nvrepro.hybrid.bench import ssd_inputs

CUDA = torch.cuda.is_available()


def needs(package: str):
    return pytest.mark.skipif(not CUDA or importlib.util.find_spec(package) is None,
                              reason=f"needs CUDA and {package}")


@needs("mamba_ssm")
def test_triton_chunk_scan_equals_the_pure_pytorch_ssd_forward_and_backward():
    x, dt, A, B, C = (t.cuda() for t in ssd_inputs(512, batch=2, heads=8, head_dim=32, groups=2, state=64))
    D = torch.rand(8, device="cuda")
    init = torch.randn(2, 8, 32, 64, device="cuda") * 0.1
    results = []
    for fn in (ssd_chunked, mamba2.chunk_scan_kernel):
        inputs = [t.clone().requires_grad_(True) for t in (x, dt, B, C)]
        y, final = fn(inputs[0], inputs[1], A, inputs[2], inputs[3], 64, D=D, initial_state=init) \
            if fn is ssd_chunked else fn(inputs[0], inputs[1], A, inputs[2], inputs[3], 64, D, init)
        (y.square().mean() + final.square().mean()).backward()
        results.append((y, final, *[t.grad for t in inputs]))
    for ours, kernel in zip(*results):
        torch.testing.assert_close(kernel, ours, rtol=2e-3, atol=2e-3)


def _mixer(dtype):
    torch.manual_seed(0)
    cfg = MambaConfig(n_heads=8, head_dim=32, d_state=64, n_groups=2, chunk_size=64)
    return mamba2.Mamba2Mixer(256, cfg).cuda().to(dtype)


@needs("mamba_ssm")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_mixer_with_kernels_equals_the_mixer_without(dtype):
    """Full sequence, prefill into a state, then decode steps (causal-conv1d used where installed)."""
    mixer = _mixer(dtype)
    u = torch.randn(2, 96, 256, device="cuda", dtype=dtype)
    tol = dict(rtol=1e-3, atol=1e-3) if dtype == torch.float32 else dict(rtol=3e-2, atol=3e-2)
    outs = {}
    for kernels in (False, True):
        mixer.use_kernels = kernels
        state = mamba2.Mamba2State.zeros(mixer.cfg, 2, "cuda", dtype)
        prefill = mixer(u[:, :80], state)
        steps = torch.cat([mixer(u[:, t:t + 1], state) for t in range(80, 96)], 1)
        outs[kernels] = (mixer(u), prefill, steps, state.ssm_state)
    for ours, kernel in zip(outs[False], outs[True]):
        torch.testing.assert_close(kernel.float(), ours.float(), **tol)


@needs("flash_attn")
def test_flash_attention_equals_sdpa():
    torch.manual_seed(0)
    attention = CausalSelfAttention(256, AttentionConfig(n_heads=8, n_kv_heads=2, head_dim=32, rope=True)).cuda()
    attention = attention.to(torch.bfloat16)
    x = torch.randn(2, 300, 256, device="cuda", dtype=torch.bfloat16)
    flash = attention(x)
    assert attention._use_flash(attention.project(x, torch.arange(300, device="cuda"))[0])
    cache = attention.allocate_cache(2, 300, device="cuda", dtype=torch.bfloat16)
    sdpa = attention(x, cache)  # the cached path never uses flash-attn
    torch.testing.assert_close(flash, sdpa, rtol=2e-2, atol=2e-2)


@needs("transformer_engine")
def test_te_linear_in_fp8_stays_near_the_bf16_linear():
    """FP8 (E4M3) GEMMs: a relative error of a few percent, not equality."""
    from nvrepro.core.training.precision.config import FP8Config
    from nvrepro.core.training.precision.te import convert_to_te, import_te, te_recipe

    te = import_te()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(512, 512, bias=False)).cuda().to(torch.bfloat16)
    x = torch.randn(64, 512, device="cuda", dtype=torch.bfloat16)
    want = model(x).float()
    convert_to_te(model, ["0"])
    with te.fp8_autocast(enabled=True, fp8_recipe=te_recipe(FP8Config(backend="transformer_engine"))):
        got = model(x).float()
    assert ((got - want).norm() / want.norm()).item() < 0.1
