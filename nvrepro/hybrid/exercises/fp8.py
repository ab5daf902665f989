"""Exercises of notebooks/hybrid/04_fp8_training.ipynb."""

from __future__ import annotations

from typing import Callable

import torch

from nvrepro.core.tooling.verdicts import Check
from nvrepro.core.tooling.verdicts import report as _report
from nvrepro.core.tooling.verdicts import check_number


# === notebooks/hybrid/04_fp8_training.ipynb ===============================================
# Imports stay inside the checkers (as above).

FP8_FORMATS = ("e4m3", "e5m2")


def measured_gradient_underflow(seed: int = 0) -> dict[str, float]:
    """Mean fraction of each linear's output-gradient entries flushed to zero by current scaling,
    in E4M3 and in E5M2: one forward/backward of a small hybrid LM on random tokens."""
    from nvrepro.core.lm.model import build_model
    from nvrepro.core.training.module import causal_lm_loss
    from nvrepro.core.training.precision import record_fp8_stats
    from nvrepro.core.tooling.timing import num_threads

    torch.manual_seed(seed)
    model = build_model(dict(pattern="M-M*-", d_model=64, vocab_size=128, max_seq_len=64,
                             mamba=dict(n_heads=4, head_dim=16, d_state=8, chunk_size=16),
                             attention=dict(n_heads=2, n_kv_heads=1, head_dim=32), ffn=dict(hidden=128)))
    ids = torch.randint(0, 128, (4, 64), generator=torch.Generator().manual_seed(seed))
    with num_threads(1), record_fp8_stats(model) as stats:  # one thread: steady on a shared CPU
        causal_lm_loss(model(ids[:, :-1]), ids[:, 1:]).backward()
    grads = [s["grad"] for name, s in stats.items() if name != "lm_head"]
    return {fmt: sum(g[f"flushed_{fmt}"] for g in grads) / len(grads) for fmt in FP8_FORMATS}


def check_underflow_prediction(answer: str | None, *, verbose: bool = True) -> Check:
    """Exercise (a): with per-tensor current scaling, which format, ``"e4m3"`` or ``"e5m2"``,
    flushes more of a gradient's entries to zero? Measured on real gradients of a small model."""
    if answer is None:
        return _report(Check(None, f"set `answer` to one of {FP8_FORMATS}."), verbose)
    if answer not in FP8_FORMATS:
        return _report(Check(False, f"expected one of {FP8_FORMATS}, got {answer!r}."), verbose)
    flushed = measured_gradient_underflow()
    actual = max(FP8_FORMATS, key=lambda f: flushed[f])
    why = (f"measured on a small hybrid LM's gradients: E4M3 flushes {100 * flushed['e4m3']:.3f}% of the "
           f"entries, E5M2 {100 * flushed['e5m2']:.4f}%. Current scaling maps the amax onto the format's "
           "largest value, so what survives is set by the span from the largest value to the smallest "
           "subnormal: E4M3 spans 448 / 2^-9 ~ 2^18 (4 exponent bits), E5M2 57344 / 2^-16 ~ 2^32 (5 exponent "
           "bits). Gradients spread over many orders of magnitude, hence E5M2 for them, and E4M3's extra "
           "mantissa bit for weights and activations, whose range is narrower.")
    return _report(Check(answer == actual, f"it is {actual}: {why}"), verbose)


def check_current_scaling_fn(student_fn: Callable, *, verbose: bool = True) -> Check:
    """Exercise (b): ``student_fn(x, dtype)`` must round ``x`` through ``dtype`` (a torch float8
    dtype) with per-tensor current scaling and return the dequantised float32 tensor."""
    from nvrepro.core.training.precision import E4M3, E5M2, quantize_dequantize

    gen = torch.Generator().manual_seed(0)
    wide = torch.exp(torch.empty(40, 30).uniform_(-20, 2, generator=gen)) * torch.randn(40, 30, generator=gen).sign()
    cases = [("a normal tensor", 3 * torch.randn(64, 16, generator=gen)), ("a wide-range tensor", wide),
             ("an all-zero tensor", torch.zeros(8, 8))]
    for name, x in cases:
        for dtype in (E4M3, E5M2):
            try:
                out = student_fn(x.clone(), dtype)
            except NotImplementedError:
                return _report(Check(None, "implement `fp8_round` and run the cell again."), verbose)
            except Exception as exc:  # noqa: BLE001 - report the student's error, do not crash
                return _report(Check(False, f"fp8_round raised {type(exc).__name__} on {name}: {exc}"), verbose)
            want = quantize_dequantize(x, dtype)
            if not isinstance(out, torch.Tensor) or out.shape != x.shape:
                return _report(Check(False, f"expected a tensor of shape {tuple(x.shape)}."), verbose)
            out = out.float()
            if torch.equal(out, want):
                continue
            fmax = torch.finfo(dtype).max
            if not torch.isfinite(out).all():
                hint = ("non-finite values: with amax = 0 the scale fmax / amax is infinite; use scale 1 "
                        "there") if name == "an all-zero tensor" else "non-finite values"
            elif torch.equal(out, (x * fmax / x.abs().max()).to(dtype).float()):
                hint = "you returned the FP8 values themselves: divide by the scale to dequantise"
            elif out.abs().max() > x.abs().max() * 1.01 or out.abs().max() < x.abs().max() * 0.99:
                hint = "the largest magnitude must survive unchanged: scale = finfo(dtype).max / amax"
            else:
                hint = "round with x.mul(scale).to(dtype), then .float() and divide by the same scale"
            return _report(Check(False, f"on {name} with {dtype}: {hint}."), verbose)
    return _report(Check(True, "matches the emulation backend bit for bit, in both formats, including the "
                         "all-zero tensor: scale = fmax / amax maps the largest magnitude onto the format's "
                         "largest value, so nothing saturates and the rounding error is relative."), verbose)


EXCLUSION_QUESTION = dict(config="nemotron_h_8b", n=8)
"""Question: with ``exclude_first_n = exclude_last_n = n``, how many linear layers of the 8B model
(LM head aside) stay in BF16?"""


def check_excluded_linears(answer: float | None, *, verbose: bool = True) -> Check:
    """Exercise (c): see :data:`EXCLUSION_QUESTION`; counted on the real model built on ``meta``."""
    from nvrepro.core.training.precision import FP8Config
    from nvrepro.core.tooling.paths import CONFIGS_DIR
    from nvrepro.hybrid.fp8_experiment import exclusion_plan

    n = EXCLUSION_QUESTION["n"]
    path = CONFIGS_DIR / "hybrid" / f"{EXCLUSION_QUESTION['config']}.yaml"
    plan = exclusion_plan(path, FP8Config(exclude_first_n=n, exclude_last_n=n))
    actual = plan["bf16_linears"]
    kinds = "".join(k for _, k in plan["bf16_layers"])
    why = (f"the first and last {n} layers are {kinds[:n]!r} and {kinds[n:]!r}: each Mamba-2 layer has 2 "
           "linears (in_proj, out_proj), each FFN 2 (up, down), each attention layer 4 (q, k, v, o), so "
           f"{actual} linears stay in BF16 and {plan['fp8_linears']} run in FP8 "
           f"({100 * plan['fp8_param_fraction']:.0f}% of the blocks' linear weights).")
    return check_number(answer, actual, what="your prediction (a number of linear layers)", unit="linear layers",
                        why=why, slips=((4 * n, "that counts 2 per layer: an attention layer has 4"),
                               (2 * n, "that counts layers, not linears"),
                               (actual + 1, "the LM head is not part of the count")), verbose=verbose)
