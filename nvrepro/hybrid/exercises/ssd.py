"""Exercises of notebooks/hybrid/01_mamba2_ssd.ipynb (checked against nvrepro.core.lm.layers.ssd)."""

from __future__ import annotations

import math
from typing import Callable

import torch

from nvrepro.core.tooling.verdicts import Check, as_number, check_number
from nvrepro.core.tooling.verdicts import report as _report
from nvrepro.core.lm.layers.ssd import segsum, ssd_chunked, ssd_naive


# --- (a) decay: how fast does the state forget? -------------------------------------------

DECAY_QUESTION = dict(dt=0.5, A_slow=-1.0, A_fast=-2.0, steps=4)
"""One head, p = n = 1, B = C = 1, constant ``dt``; the input is a unit impulse at t = 0.
Question: ``y[steps]`` with ``A = A_fast`` divided by ``y[steps]`` with ``A = A_slow``?"""


def impulse_response(A: float, dt: float, length: int) -> torch.Tensor:
    """``y_t`` of a single-head SSD (p = n = 1, B = C = 1, constant ``dt``) for ``x = δ_0``."""
    x = torch.zeros(1, length, 1, 1, dtype=torch.float64)
    x[0, 0] = 1.0
    ones = torch.ones(1, length, 1, 1, dtype=torch.float64)
    dts = torch.full((1, length, 1), dt, dtype=torch.float64)
    y, _ = ssd_naive(x, dts, torch.tensor([A], dtype=torch.float64), ones, ones)
    return y[0, :, 0, 0]


def check_decay_prediction(answer: float | None, *, verbose: bool = True) -> Check:
    """Exercise (a): predicted ratio ``y_fast[steps] / y_slow[steps]`` (see :data:`DECAY_QUESTION`)."""
    q = DECAY_QUESTION
    y_slow = impulse_response(q["A_slow"], q["dt"], q["steps"] + 1)
    y_fast = impulse_response(q["A_fast"], q["dt"], q["steps"] + 1)
    actual = (y_fast[q["steps"]] / y_slow[q["steps"]]).item()
    why = (f"after the impulse, each token multiplies the state by exp(dt*A); {q['steps']} tokens "
           f"later the ratio is exp({q['steps']}*dt*(A_fast - A_slow)) = "
           f"exp({q['steps']}*{q['dt']}*({q['A_fast']} - {q['A_slow']})) = {actual:.4f}. "
           "A more negative A forgets faster, and the gap grows exponentially with distance.")
    one_decay_too_many = math.exp((q["steps"] + 1) * q["dt"] * (q["A_fast"] - q["A_slow"]))
    check = check_number(answer, actual, what="your predicted ratio", rel_tol=0.02, why=why,
                         slips=((one_decay_too_many, "you counted one decay too many: the impulse enters the "
                                                     "state at t = 0 undecayed"),), verbose=False)
    value, _ = as_number(answer, "a number")
    if check.ok is False and value is not None and value > 1:
        check.message += " (A ratio above 1 would mean the faster-decaying state remembers more.)"
    return _report(check, verbose)


# --- (b) the stable segment sum -----------------------------------------------------------

def segsum_loop(x: torch.Tensor) -> torch.Tensor:
    """Reference by definition, in float64: ``out[..., i, j] = x[..., j+1] + ... + x[..., i]``.

    ``(..., T) -> (..., T, T)``, 0 on the diagonal, ``-inf`` above it. A loop over ``j`` with a
    cumulative sum that starts at ``j + 1``: slow, obviously right.
    """
    x = x.double()
    T = x.shape[-1]
    out = torch.full((*x.shape, T), -math.inf, dtype=torch.float64)
    for j in range(T):
        out[..., j, j] = 0.0
        if j + 1 < T:
            out[..., j + 1:, j] = torch.cumsum(x[..., j + 1:], dim=-1)
    return out


def reference_segsum(x: torch.Tensor) -> torch.Tensor:
    """The package's own segment sum, :func:`nvrepro.core.lm.layers.ssd.segsum` (the stable
    masked-cumsum form that ``ssd_chunked`` uses): what a student's answer is checked against."""
    return segsum(x)


def check_segsum(student_fn: Callable[[torch.Tensor], torch.Tensor], *, verbose: bool = True) -> Check:
    """Exercise (b): ``student_fn(x)`` for ``x (..., T)`` must return the segment sums ``(..., T, T)``.

    Checked against :func:`segsum_loop` for shape, the ``-inf`` upper triangle, the values below
    it, and stability: in float32 on a long sequence, segments of a few tokens must stay accurate
    (``cumsum[i] - cumsum[j]`` is right on paper but cancels catastrophically there).
    """
    gen = torch.Generator().manual_seed(0)
    x = -2 * torch.rand(2, 3, 7, generator=gen, dtype=torch.float64)
    try:
        out = student_fn(x)
    except NotImplementedError:
        return _report(Check(None, "implement `segsum` and run the cell again."), verbose)
    except Exception as exc:  # noqa: BLE001 - report the student's error, do not crash
        return _report(Check(False, f"segsum(x) raised {type(exc).__name__}: {exc}"), verbose)
    ref = segsum_loop(x)
    if not isinstance(out, torch.Tensor) or out.shape != ref.shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        return _report(Check(False, f"for x of shape {tuple(x.shape)} expected {tuple(ref.shape)}, got {got}."), verbose)
    out = out.double()
    upper = torch.triu(torch.ones(7, 7, dtype=torch.bool), 1)
    if not torch.all(out[..., upper] == -math.inf):
        return _report(Check(False, "entries above the diagonal (j > i) must be -inf, so that "
                             "exp(segsum) is 0 there: a token cannot see the future."), verbose)
    bad = ~torch.isclose(out, ref, rtol=1e-9, atol=1e-9) & ~upper
    if bad.any():
        diag = torch.diagonal(out, dim1=-2, dim2=-1)  # (2, 3, 7)
        if torch.allclose(diag, x, rtol=1e-9, atol=1e-9):
            msg = ("the diagonal holds x[i] but must be 0, and below it the sum seems to include "
                   "x[j]: segsum[i, j] sums x[j+1..i], the decay *from* step j *to* step i "
                   "(exp(0) = 1 on the diagonal keeps a token's own input undecayed).")
            return _report(Check(False, msg), verbose)
        if not torch.allclose(diag, torch.zeros_like(diag)):
            return _report(Check(False, "the diagonal must be 0 (an empty sum): exp(0) = 1 keeps a "
                                 "token's own input undecayed."), verbose)
        b0, b1, i, j = (int(v) for v in bad.nonzero()[0])
        got, want = out[b0, b1, i, j].item(), ref[b0, b1, i, j].item()
        msg = f"out[..., {i}, {j}] = {got:.6f}, expected x[{j + 1}] + ... + x[{i}] = {want:.6f}"
        if math.isclose(got, want + x[b0, b1, j].item(), rel_tol=1e-9, abs_tol=1e-9):
            msg += f"; you included x[{j}]: the sum starts after j (the decay from step j to i)"
        elif math.isclose(got, want - x[b0, b1, i].item(), rel_tol=1e-9, abs_tol=1e-9):
            msg += f"; you left out x[{i}]: the sum ends at i inclusive"
        return _report(Check(False, msg + "."), verbose)

    # Stability: float32, long sequence, compare short segments (i - j <= 8) with float64.
    T = 512
    x_long = -2 * torch.rand(1, T, generator=gen, dtype=torch.float64)
    ref_long = segsum_loop(x_long)
    try:
        out_long = student_fn(x_long.float()).double()
    except Exception as exc:  # noqa: BLE001
        return _report(Check(False, f"segsum(x) raised {type(exc).__name__} on a float32 input of "
                             f"shape (1, {T}): {exc}"), verbose)
    band = torch.tril(torch.ones(T, T, dtype=torch.bool)) & ~torch.tril(torch.ones(T, T, dtype=torch.bool), -9)
    err = (out_long - ref_long).abs()[..., band].max().item()
    if not err < 5e-6:
        return _report(Check(False, f"correct values, but not stable: in float32 over {T} tokens, "
                             f"segments of <= 8 tokens are off by {err:.1e} (a stable version is "
                             "~1e-6). Subtracting two long cumsums cancels the large shared prefix; "
                             "instead mask x below the diagonal and cumsum only the terms you need."), verbose)
    return _report(Check(True, f"matches the double loop, -inf above the diagonal, and stays "
                         f"accurate in float32 (short-segment error {err:.1e})."), verbose)


# --- (c) does the chunk size change the result? -------------------------------------------

def check_chunk_size_effect(changes_output: bool | None, *, verbose: bool = True) -> Check:
    """Exercise (c): does ``ssd_chunked`` with chunk size 16 vs 64 give a different ``y``?

    ``changes_output`` is the student's True/False; the checker runs both (and the recurrence)
    in float64 on a length that is a multiple of neither.
    """
    gen = torch.Generator().manual_seed(0)
    b, l, h, p, g, n = 1, 200, 2, 4, 1, 4
    x = torch.randn(b, l, h, p, generator=gen, dtype=torch.float64)
    dt = 0.05 + 0.1 * torch.rand(b, l, h, generator=gen, dtype=torch.float64)
    A = -torch.tensor([0.5, 1.5], dtype=torch.float64)
    B = torch.randn(b, l, g, n, generator=gen, dtype=torch.float64)
    C = torch.randn(b, l, g, n, generator=gen, dtype=torch.float64)
    y16, _ = ssd_chunked(x, dt, A, B, C, chunk_size=16)
    y64, _ = ssd_chunked(x, dt, A, B, C, chunk_size=64)
    y_ref, _ = ssd_naive(x, dt, A, B, C)
    diff = (y16 - y64).abs().max().item()
    err = max((y16 - y_ref).abs().max().item(), (y64 - y_ref).abs().max().item())
    actual = diff > 1e-9
    verdict = "it changes the output" if actual else "it does not change the output"
    why = (f"{verdict}: max |y(Q=16) - y(Q=64)| = {diff:.1e} in float64 (and {err:.1e} from the token-by-token "
           "recurrence): rounding only. Chunking re-associates the same semiseparable matrix "
           "product: diagonal blocks in quadratic form, off-diagonal blocks through the state. "
           "The chunk size Q trades cost (Q^2 work and memory per chunk vs l/Q sequential state "
           "steps), never the result.")
    if changes_output is None:
        return _report(Check(None, "set `changes_output` to True or False."), verbose)
    if not isinstance(changes_output, bool):
        return _report(Check(False, f"expected True or False, got {changes_output!r}."), verbose)
    return _report(Check(changes_output == actual, why), verbose)
