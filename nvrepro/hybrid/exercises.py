"""Checkers for the exercises in ``notebooks/hybrid/01_mamba2_ssd.ipynb``.

Each checker compares the student's answer with what the real code in
:mod:`nvrepro.core.layers.ssd` does, prints a message saying whether the answer holds and why,
and returns a :class:`Check` (truthy when it holds; ``ok is None`` when not attempted yet).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from nvrepro.core.exercises import Check
from nvrepro.core.exercises import report as _report
from nvrepro.core.layers.ssd import ssd_chunked, ssd_naive


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
    if answer is None:
        return _report(Check(None, "set `answer` to your predicted ratio (a number)."), verbose)
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return _report(Check(False, f"expected a number, got {answer!r}."), verbose)
    if math.isclose(value, actual, rel_tol=0.02):
        return _report(Check(True, f"the code gives {actual:.4f}: {why}"), verbose)
    hint = ""
    if math.isclose(value, math.exp((q["steps"] + 1) * q["dt"] * (q["A_fast"] - q["A_slow"])), rel_tol=0.02):
        hint = " (You counted one decay too many: the impulse enters the state at t = 0 undecayed.)"
    elif value > 1:
        hint = " (A ratio above 1 would mean the faster-decaying state remembers more.)"
    return _report(Check(False, f"you said {value:.4g}, the code gives {actual:.4f}: {why}{hint}"), verbose)


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
    """A stable vectorised segment sum (the masked-cumsum trick used in ``ssd.py``)."""
    T = x.shape[-1]
    a = x[..., :, None].expand(*x.shape, T)  # a[..., i, j] = x_i
    a = a.masked_fill(~torch.tril(torch.ones(T, T, dtype=torch.bool), -1), 0.0)
    s = torch.cumsum(a, dim=-2)  # sum over j < k <= i
    return s.masked_fill(~torch.tril(torch.ones(T, T, dtype=torch.bool)), -math.inf)


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


# === notebooks/hybrid/03_inference_cost.ipynb =============================================
# Imports stay inside the checkers: notebook 01's checkers must not pull in the model code.

def _check_number(answer, actual: float, *, rel_tol: float, variable: str, unit: str, why: str,
                  slips: tuple[tuple[float, str], ...] = (), verbose: bool) -> Check:
    """The verdict on a numeric prediction: None -> not attempted; within ``rel_tol`` of
    ``actual`` -> correct; otherwise wrong, naming the first known slip whose value it matches."""
    if answer is None:
        return _report(Check(None, f"set `{variable}` to your prediction ({unit})."), verbose)
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return _report(Check(False, f"expected a number of {unit}, got {answer!r}."), verbose)
    if math.isclose(value, actual, rel_tol=rel_tol):
        return _report(Check(True, why), verbose)
    slip = next((f" ({text})" for v, text in slips if math.isclose(value, v, rel_tol=0.01)), "")
    return _report(Check(False, f"you said {value:,.0f} {unit}, the code gives {actual:,.0f}{slip}: {why}"), verbose)


# --- (a) the KV cache of a real config -----------------------------------------------------

KV_QUESTION = dict(config="llama_3_1_8b", context=8192, batch=1, bytes_per_elem=2)
"""Question: bytes of the BF16 KV cache of Llama-3.1-8B holding ``context`` tokens (batch 1)."""


def measured_kv_cache_bytes(config: str, context: int, batch: int = 1, dtype=torch.bfloat16) -> int:
    """Bytes of real ``KVCache`` tensors: one layer's cache allocated at the config's widths,
    times the number of attention layers (every layer's cache has the same shape)."""
    from nvrepro.core.layers.attention import KVCache
    from nvrepro.hybrid.inference import full_scale_config

    cfg = full_scale_config(config)
    a = cfg.attention
    one = KVCache.allocate(batch, a.n_kv_heads, a.head_dim, context, dtype=dtype)
    return cfg.count("*") * (one.k.nbytes + one.v.nbytes)


def check_kv_cache_bytes(answer: float | None, *, verbose: bool = True) -> Check:
    """Exercise (a): predicted KV-cache bytes for :data:`KV_QUESTION`, checked against allocated
    tensors (:func:`measured_kv_cache_bytes`) to 1%."""
    q = KV_QUESTION
    from nvrepro.hybrid.inference import full_scale_config

    cfg = full_scale_config(q["config"])
    a, n_attn = cfg.attention, cfg.count("*")
    actual = measured_kv_cache_bytes(q["config"], q["context"], q["batch"])
    why = (f"K and V, for each of {n_attn} attention layers, {a.n_kv_heads} KV heads (GQA: not the "
           f"{a.n_heads} query heads) x head_dim {a.head_dim} x {q['context']:,} tokens x "
           f"{q['bytes_per_elem']} bytes = 2 x {n_attn} x {a.n_kv_heads} x {a.head_dim} x {q['context']:,} x "
           f"{q['bytes_per_elem']} = {actual:,} bytes ({actual / 2**30:.2f} GiB).")
    slips = ((actual / 2, "you counted only K or only V"),
             (actual * a.n_heads / a.n_kv_heads, "you used the query heads; GQA shares each K/V head "
              "among several query heads"),
             (actual * 2, "4-byte elements? the cache is BF16"))
    return _check_number(answer, actual, rel_tol=0.01, variable="kv_bytes", unit="bytes", why=why,
                         slips=slips, verbose=verbose)


# --- (b) at which context does the Transformer's cache match the hybrid's? ------------------

BREAK_EVEN_QUESTION = dict(hybrid="nemotron_h_8b", transformer="llama_3_1_8b", hybrid_context=65536)
"""Question: at what context does the Transformer's cache equal the hybrid's cache at
``hybrid_context`` tokens (batch 1; BF16 KV cache and conv window, FP32 SSM state)?"""


def check_break_even_context(answer: float | None, *, verbose: bool = True) -> Check:
    """Exercise (b): the context (tokens) at which the two caches of :data:`BREAK_EVEN_QUESTION`
    are equal; checked to 2% against :func:`nvrepro.hybrid.inference.decode_bytes`."""
    from nvrepro.hybrid.inference import decode_bytes, full_scale_config

    q = BREAK_EVEN_QUESTION
    hyb = decode_bytes(q["hybrid"], q["hybrid_context"])
    per_token = decode_bytes(q["transformer"], 1).kv_cache_bytes
    actual = hyb.cache_bytes / per_token
    kv_only = hyb.kv_cache_bytes / per_token
    n_h, n_t = (full_scale_config(q[k]).count("*") for k in ("hybrid", "transformer"))
    why = (f"the hybrid holds {hyb.kv_cache_bytes / 2**20:,.0f} MiB of KV cache ({n_h} attention layers) plus "
           f"{hyb.ssm_state_bytes / 2**20:,.1f} MiB of Mamba state at {q['hybrid_context']:,} tokens; the "
           f"Transformer adds {per_token // 1024} KiB per token ({n_t} attention layers), so it reaches the "
           f"same {hyb.cache_bytes / 2**30:.2f} GiB after {actual:,.0f} tokens: the hybrid's cache at "
           f"{q['hybrid_context'] // 1024}K tokens is the Transformer's at about {actual / 1024:.1f}K.")
    slips = ((kv_only, "close: you left out the Mamba layers' constant state, which the hybrid also keeps"),)
    return _check_number(answer, actual, rel_tol=0.02, variable="break_even", unit="tokens", why=why,
                         slips=slips, verbose=verbose)


# --- (c) implement the cache arithmetic for any pattern -------------------------------------

def _cache_cases():
    """Tiny configs covering each cache kind: attention only (GQA), Mamba only (2 groups), mixed."""
    from nvrepro.core.config import AttentionConfig, MambaConfig, ModelConfig

    att = AttentionConfig(n_heads=4, n_kv_heads=2, head_dim=8)
    mam = MambaConfig(n_heads=4, head_dim=8, d_state=6, n_groups=2, d_conv=3)
    return [(ModelConfig(pattern="*-*-", d_model=32, max_seq_len=64, attention=att), 50, 2),
            (ModelConfig(pattern="MM-", d_model=32, max_seq_len=64, mamba=mam), 50, 3),
            (ModelConfig(pattern="M-*M-", d_model=32, max_seq_len=64, mamba=mam, attention=att), 17, 1)]


def check_cache_bytes_fn(student_fn: Callable, *, verbose: bool = True) -> Check:
    """Exercise (c): ``student_fn(cfg, context, batch) -> int``, the bytes of the float32 cache
    ``HybridLM.allocate_cache(batch, context)`` allocates, for any pattern. Checked against the
    bytes of the tensors actually allocated for several tiny models."""
    from nvrepro.core.decode import cache_nbytes
    from nvrepro.core.lm import build_model

    for cfg, context, batch in _cache_cases():
        actual = cache_nbytes(build_model(cfg).allocate_cache(batch, context))
        try:
            got = student_fn(cfg, context, batch)
        except NotImplementedError:
            return _report(Check(None, "implement `cache_bytes(cfg, context, batch)` and run the cell again."), verbose)
        except Exception as exc:  # noqa: BLE001 - report the student's error, do not crash
            return _report(Check(False, f"cache_bytes raised {type(exc).__name__}: {exc}"), verbose)
        if got != actual:
            m, a = cfg.mamba, cfg.attention
            parts = {"KV cache": 2 * cfg.count("*") * batch * context * a.n_kv_heads * a.head_dim * 4,
                     "conv windows": cfg.count("M") * batch * m.conv_dim * m.d_conv * 4,
                     "SSM states": cfg.count("M") * batch * m.n_heads * m.head_dim * m.d_state * 4}
            missing = [k for k, v in parts.items() if v and got == actual - v]
            hint = f" -- exactly the {missing[0]} short" if missing else ""
            return _report(Check(False, f"pattern {cfg.pattern!r}, context {context}, batch {batch}: you gave "
                                 f"{got!r} bytes, the allocated cache holds {actual:,}{hint}. Per sequence: K and V "
                                 "(n_kv_heads x head_dim per token) for each '*'; for each 'M' a conv window "
                                 "(conv_dim x d_conv, conv_dim = n_heads*head_dim + 2*n_groups*d_state) and an "
                                 "SSM state (n_heads x head_dim x d_state); 4 bytes each in float32."), verbose)
    return _report(Check(True, "matches the allocated caches of every test model: only the attention term "
                         "depends on the context, the Mamba terms do not."), verbose)


# === notebooks/hybrid/05_minipuzzle.ipynb ==================================================
# Imports stay inside the checkers (as above).

ADDITIVITY_ANSWERS = ("less", "about equal", "greater")


def check_importance_additivity(answer: str | None, model, batches, *, verbose: bool = True) -> Check:
    """Exercise (a): removing the two least important layers *together* changes the final hidden
    state by ``"less"`` than, ``"about equal"`` to (within 20%), or ``"greater"`` than the sum of
    their single-layer importances? Measured on ``model`` (the notebook's parent) and ``batches``."""
    import copy

    from torch import nn

    from nvrepro.hybrid.minipuzzle import layer_importance

    if answer is None:
        return _report(Check(None, f"set `answer` to one of {ADDITIVITY_ANSWERS}."), verbose)
    if answer not in ADDITIVITY_ANSWERS:
        return _report(Check(False, f"expected one of {ADDITIVITY_ANSWERS}, got {answer!r}."), verbose)
    scores = layer_importance(model, batches, progress=False)
    i, j = sorted(torch.argsort(scores)[:2].tolist())
    pair = copy.deepcopy(model).eval()
    del pair.layers[j], pair.layers[i]
    pair.lm_head = full = nn.Identity()
    ref = copy.deepcopy(model).eval()
    ref.lm_head = full
    with torch.no_grad():
        joint = sum(((pair(b["input_ids"]) - ref(b["input_ids"])) ** 2).mean().item() for b in batches) / len(batches)
    total = scores[i].item() + scores[j].item()
    ratio = joint / total
    actual = "about equal" if 0.8 <= ratio <= 1.2 else ("less" if ratio < 1 else "greater")
    why = (f"layers {i} and {j} score {scores[i]:.2e} and {scores[j]:.2e} alone (sum {total:.2e}); removed "
           f"together the MSE is {joint:.2e}, {ratio:.2f}x the sum. ")
    if actual == "about equal":
        why += ("Each score is the squared size of a small perturbation of the same output; two small, "
                "unrelated perturbations add up (their cross term averages out), which is what lets "
                "MiniPuzzle rank layers one at a time.")
    else:
        why += ("The two perturbations interact (their cross term does not average out), so single-layer "
                "scores are only a ranking, not a cost model.")
    why += (" Dropping many layers at once is never just the sum of their scores, which is why candidates "
            "are evaluated as whole models and then distilled.")
    return _report(Check(answer == actual, f"it is '{actual}': {why}"), verbose)


def check_kd_loss_fn(student_fn: Callable, *, verbose: bool = True) -> Check:
    """Exercise (b): ``student_fn(student_logits, teacher_logits)`` with logits ``(b, l, V)`` must
    return the mean over positions of KL(teacher || student) at temperature 1 (a scalar)."""
    from nvrepro.hybrid.distill import kd_loss

    gen = torch.Generator().manual_seed(0)
    s, t = (torch.randn(2, 5, 11, generator=gen, dtype=torch.float64) * 2 for _ in range(2))
    try:
        out = student_fn(s, t)
    except NotImplementedError:
        return _report(Check(None, "implement `kd` and run the cell again."), verbose)
    except Exception as exc:  # noqa: BLE001 - report the student's error, do not crash
        return _report(Check(False, f"kd(s, t) raised {type(exc).__name__}: {exc}"), verbose)
    if not isinstance(out, torch.Tensor) or out.numel() != 1:
        return _report(Check(False, f"expected a scalar tensor, got {out!r:.80}."), verbose)
    want = kd_loss(s, t).item()
    value = out.item()
    if math.isclose(value, want, rel_tol=1e-6, abs_tol=1e-9):
        same = student_fn(t, t.clone()).item()
        return _report(Check(abs(same) < 1e-9, f"forward KL = {want:.5f} on the test logits and {same:.1e} "
                             "when the student equals the teacher: sum_v p_t (log p_t - log p_s), averaged over "
                             "positions."), verbose)
    slips = {kd_loss(t, s).item(): "that is the *reverse* KL(student || teacher), which is mode-seeking; "
                                    "the paper distils with the forward KL(teacher || student)",
             want * s.shape[0] * s.shape[1]: "you summed over positions; take the mean",
             want * s.shape[-1]: "you divided by the vocabulary size somewhere (mean over V instead of sum)"}
    hint = next((msg for v, msg in slips.items() if math.isclose(value, v, rel_tol=1e-6)), "")
    return _report(Check(False, f"got {value:.5f}, expected {want:.5f}" + (f": {hint}." if hint else
                         ". Use log_softmax on both logits, then sum p_t * (log p_t - log p_s) over the "
                         "vocabulary and average over positions.")), verbose)


def check_ffn_prune_fn(student_fn: Callable, *, verbose: bool = True) -> Check:
    """Exercise (c): ``student_fn(up, down, scores, k)`` with ``up (hidden, d)``, ``down (d, hidden)``,
    ``scores (hidden,)`` must return ``(up', down')`` keeping the ``k`` highest-scoring neurons, so
    that ``down' relu(up' x)^2`` is exactly the sum of those neurons' contributions."""
    from nvrepro.hybrid.minipuzzle import top_neurons

    gen = torch.Generator().manual_seed(1)
    d, hidden, k = 6, 10, 4
    up = torch.randn(hidden, d, generator=gen, dtype=torch.float64)
    down = torch.randn(d, hidden, generator=gen, dtype=torch.float64)
    scores = torch.rand(hidden, generator=gen, dtype=torch.float64)
    x = torch.randn(7, d, generator=gen, dtype=torch.float64)
    try:
        out = student_fn(up.clone(), down.clone(), scores.clone(), k)
    except NotImplementedError:
        return _report(Check(None, "implement `prune` and run the cell again."), verbose)
    except Exception as exc:  # noqa: BLE001
        return _report(Check(False, f"prune(...) raised {type(exc).__name__}: {exc}"), verbose)
    try:
        up2, down2 = out
        shapes = (tuple(up2.shape), tuple(down2.shape))
    except (TypeError, ValueError, AttributeError):
        return _report(Check(False, f"expected a pair of tensors (up', down'), got {type(out).__name__}."), verbose)
    if shapes != ((k, d), (d, k)):
        return _report(Check(False, f"expected shapes ({k}, {d}) and ({d}, {k}), got {shapes[0]} and "
                             f"{shapes[1]}: keep *rows* of up_proj and *columns* of down_proj."), verbose)
    keep = top_neurons(scores, k)
    want = (torch.relu(x @ up[keep].T) ** 2) @ down[:, keep].T
    got = (torch.relu(x @ up2.T) ** 2) @ down2.T
    if torch.allclose(got, want, rtol=1e-12, atol=1e-12):
        return _report(Check(True, f"exactly the sum over the {k} kept neurons: neuron j is row j of up and "
                             "column j of down, so both must be indexed with the same kept indices."), verbose)
    low = torch.sort(torch.argsort(scores)[:k]).values
    if torch.allclose(got, (torch.relu(x @ up[low].T) ** 2) @ down[:, low].T, rtol=1e-12, atol=1e-12):
        return _report(Check(False, "you kept the k *lowest* scores: keep the most important neurons."), verbose)
    return _report(Check(False, "the pruned FFN does not compute the sum over the top-k neurons: index rows "
                         "of up and columns of down with the same indices (those of the k largest scores)."),
                   verbose)


# === notebooks/hybrid/04_fp8_training.ipynb ===============================================
# Imports stay inside the checkers (as above).

FP8_FORMATS = ("e4m3", "e5m2")


def measured_gradient_underflow(seed: int = 0) -> dict[str, float]:
    """Mean fraction of each linear's output-gradient entries flushed to zero by current scaling,
    in E4M3 and in E5M2: one forward/backward of a small hybrid LM on random tokens."""
    from nvrepro.core.lm import build_model
    from nvrepro.core.module import causal_lm_loss
    from nvrepro.core.precision import record_fp8_stats
    from nvrepro.core.timing import num_threads

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
    from nvrepro.core.precision import E4M3, E5M2, quantize_dequantize

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
    from nvrepro.core.precision import FP8Config
    from nvrepro.core.repro import REPO_ROOT
    from nvrepro.hybrid.fp8_experiment import exclusion_plan

    n = EXCLUSION_QUESTION["n"]
    path = REPO_ROOT / "configs" / "hybrid" / f"{EXCLUSION_QUESTION['config']}.yaml"
    plan = exclusion_plan(path, FP8Config(exclude_first_n=n, exclude_last_n=n))
    actual = plan["bf16_linears"]
    kinds = "".join(k for _, k in plan["bf16_layers"])
    why = (f"the first and last {n} layers are {kinds[:n]!r} and {kinds[n:]!r}: each Mamba-2 layer has 2 "
           "linears (in_proj, out_proj), each FFN 2 (up, down), each attention layer 4 (q, k, v, o), so "
           f"{actual} linears stay in BF16 and {plan['fp8_linears']} run in FP8 "
           f"({100 * plan['fp8_param_fraction']:.0f}% of the blocks' linear weights).")
    return _check_number(answer, actual, rel_tol=0, variable="answer", unit="linear layers", why=why,
                         slips=((4 * n, "that counts 2 per layer: an attention layer has 4"),
                                (2 * n, "that counts layers, not linears"),
                                (actual + 1, "the LM head is not part of the count")), verbose=verbose)


# === notebooks/hybrid/02_why_hybrid.ipynb =================================================

# --- (a) whose recall drops first as the pairs grow? ----------------------------------------

def check_recall_drop(answer: str | None, result: dict | None = None, *, verbose: bool = True) -> Check:
    """Exercise (a): which arm's recall should fall first as key-value pairs grow at a fixed
    length: ``"transformer"``, ``"mamba2"`` or ``"hybrid"``?

    The reference is the memory each arm can consult when a query arrives, computed from the
    arms' YAMLs: a pure Mamba-2 model has only its fixed-size states; the others also keep every
    past key and value in their attention layers. With ``result`` (from ``mqar_recall``), the
    message also says what this run measured at its longest length.
    """
    from nvrepro.core.info import kv_cache_bytes, ssm_state_bytes
    from nvrepro.hybrid.why_hybrid import ARMS, arm_configs

    if answer is None:
        return _report(Check(None, f"set `answer` to one of {ARMS}."), verbose)
    if answer not in ARMS:
        return _report(Check(False, f"expected one of {ARMS}, got {answer!r}."), verbose)
    cfgs = arm_configs("mqar")
    length = result["lengths"][-1] if result else 128
    floats = {arm: (ssm_state_bytes(c, conv_bytes=4, ssm_bytes=4) + kv_cache_bytes(c, length, bytes_per_elem=4)) // 4
              for arm, c in cfgs.items()}
    why = (f"to answer a query at position {length} a pure Mamba-2 model can only read its "
           f"{floats['mamba2']:,} state numbers, the same for 1 pair or 1,000, into which every pair had to be "
           f"compressed as it streamed past; the Transformer keeps all {length} keys and values of each attention "
           f"layer ({floats['transformer']:,} numbers) and the hybrid's single attention layer does too "
           f"(plus its Mamba states: {floats['hybrid']:,}), so both can look a pair up exactly. As the pairs "
           "grow the fixed state is the first to run out (Zoology, arXiv:2312.04927, Sec. 4; Waleffe et al. "
           "2024, Sec. 3).")
    if result:
        last = {arm: r["accuracy"][length][-1] for arm, r in result["arms"].items()
                if r["accuracy"][length][-1] is not None}
        worst = min(last, key=last.get)
        measured = ", ".join(f"{a} {v:.2f}" for a, v in last.items())
        why += (f" This run, at {result['pairs'][-1]} pairs and length {length}: {measured} "
                f"(lowest: {worst}" + ("; at this training budget the run does not separate the arms yet)."
                                       if worst != "mamba2" else ", as predicted)."))
    return _report(Check(answer == "mamba2", why), verbose)


# --- (b) the attention fraction of a pattern ------------------------------------------------

def _fraction_cases() -> dict[str, str]:
    """Patterns to test on: the full-scale configs, the toy arms, and a pure Mamba-2 stack."""
    from nvrepro.core.config import model_config_from_yaml
    from nvrepro.core.repro import REPO_ROOT
    from nvrepro.hybrid.why_hybrid import arm_configs

    cases = {name: model_config_from_yaml(REPO_ROOT / "configs" / "hybrid" / f"{name}.yaml").pattern
             for name in ("nemotron_h_8b", "nemotron_h_56b", "nemotron_h_47b", "llama_3_1_8b")}
    cases.update({f"toy {arm}": cfg.pattern for arm, cfg in arm_configs().items()})
    cases["MMMM"] = "MMMM"
    return cases


def check_attention_fraction_fn(student_fn: Callable[[str], float], *, verbose: bool = True) -> Check:
    """Exercise (b): ``student_fn(pattern) -> float``, the share of *all* layers that are attention.

    Checked on the real configs' patterns against ``pattern.count('*') / len(pattern)``.
    """
    from nvrepro.core.exercises import call_student

    cases = _fraction_cases()
    for name, pattern in cases.items():
        got, verdict = call_student(student_fn, pattern, name="attention_fraction")
        if verdict is not None:
            return _report(verdict, verbose)
        want = pattern.count("*") / len(pattern)
        try:
            value = float(got)
        except (TypeError, ValueError):
            return _report(Check(False, f"on {name} expected a number, got {got!r}."), verbose)
        if math.isclose(value, want, abs_tol=1e-9):
            continue
        mixers = pattern.count("*") + pattern.count("M")
        hint = ""
        if math.isclose(value, 100 * want, abs_tol=1e-6):
            hint = " (that is a percentage; return a fraction in [0, 1])"
        elif mixers and math.isclose(value, pattern.count("*") / mixers, abs_tol=1e-9):
            hint = (" (that is the share among the sequence mixers M and *; the FFN layers '-' are layers "
                    "too, and the paper's 8% counts all of them)")
        return _report(Check(False, f"on {name} ({len(pattern)} layers) you return {value:.4f}, expected "
                             f"{pattern.count('*')}/{len(pattern)} = {want:.4f}{hint}."), verbose)
    shares = "; ".join(f"{name} {p.count('*')} of {len(p)} ({100 * p.count('*') / len(p):.1f}%)"
                       for name, p in cases.items() if "M" in p and "*" in p)
    return _report(Check(True, f"right on every pattern. Attention layers among all layers: {shares}."), verbose)


# --- (c) the equal-parameter FFN width ------------------------------------------------------

def _width_cases():
    """``(name, cfg, target)``: the toy Transformer arm matched to the toy hybrid, and two more."""
    import dataclasses

    from nvrepro.core.config import ModelConfig
    from nvrepro.core.info import count_parameters
    from nvrepro.hybrid.why_hybrid import arm_configs

    arms = arm_configs()
    target = count_parameters(arms["hybrid"])[0]
    swiglu = ModelConfig(pattern="*-*-*-", d_model=48, vocab_size=100,
                         attention=dict(n_heads=4, n_kv_heads=4, head_dim=12), ffn=dict(hidden=64, activation="swiglu"))
    wide = dataclasses.replace(arms["transformer"], pattern="*-*--")
    return [("toy Transformer arm, target = toy hybrid", arms["transformer"], target),
            ("a SwiGLU Transformer", swiglu, 250_000),
            ("a pattern with 3 FFN layers", wide, target)]


def check_ffn_width_fn(student_fn: Callable, *, verbose: bool = True) -> Check:
    """Exercise (c): ``student_fn(cfg, target_params) -> int``, the FFN width (a multiple of 8) that
    brings ``cfg``'s parameter count closest to ``target_params``.

    Checked by counting (``count_parameters`` on the meta device) at the answer and at its two
    neighbours, answer +- 8: none of them may be closer to the target.
    """
    import dataclasses

    from nvrepro.core.exercises import call_student
    from nvrepro.core.info import count_parameters

    def params(cfg, width):
        return count_parameters(dataclasses.replace(cfg, ffn=dataclasses.replace(cfg.ffn, hidden=width)))[0]

    for name, cfg, target in _width_cases():
        got, verdict = call_student(student_fn, cfg, target, name="ffn_width")
        if verdict is not None:
            return _report(verdict, verbose)
        if not isinstance(got, int) or isinstance(got, bool) or got <= 0 or got % 8:
            return _report(Check(False, f"on {name}: expected a positive int multiple of 8, got {got!r}."), verbose)
        gaps = {w: abs(params(cfg, w) - target) for w in (got - 8, got, got + 8) if w > 0}
        best = min(gaps, key=gaps.get)
        if gaps[best] < gaps[got]:
            n_ffn, d = cfg.count("-"), cfg.d_model
            mats = 3 if cfg.ffn.activation == "swiglu" else 2
            hint = (f"; each unit of width adds {mats} x d_model = {mats * d} parameters per FFN layer "
                    f"({'gate, up and down' if mats == 3 else 'up and down'} projections), times {n_ffn} FFN layers")
            return _report(Check(False, f"on {name}: width {got} gives {params(cfg, got):,} parameters, "
                                 f"{gaps[got]:,} from the target {target:,}; width {best} is closer "
                                 f"({gaps[best]:,} away){hint}."), verbose)
    return _report(Check(True, "closest multiple of 8 on every case: the count is affine in the width, "
                         "P(f) = P(0) + f * n_ffn * m * d_model (m = 2 for squared ReLU, 3 for SwiGLU), so "
                         "f = (target - P(0)) / (n_ffn * m * d_model), rounded."), verbose)
