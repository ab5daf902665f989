"""Structured state-space duality (SSD): the sequence transform inside Mamba-2.

Dao & Gu 2024, "Transformers are SSMs: Generalized Models and Efficient Algorithms Through
Structured State Space Duality" (arXiv:2405.21060). Notation, per head (scalar-times-identity
``A``, Sec. 5.1) with ``Δ_t > 0`` the (already softplus-ed) step size:

    h_t = exp(Δ_t A) h_{t-1} + Δ_t x_t B_tᵀ           (state, (p, n); Sec. 2.1 / 3.1 recurrence)
    y_t = h_t C_t  (+ D x_t)                           (output, (p,))

i.e. the discretisation used by Mamba-2 (Ā = exp(ΔA), B̄ = ΔB). Unrolled, this is ``y = M x``
with the 1-semiseparable matrix (Sec. 3.2, matrix form)

    M[t, s] = C_tᵀ B_s · exp(a_{s+1} + … + a_t) · Δ_s   for s <= t, else 0,   a_t = Δ_t A,

which is masked "attention" with a decay mask ``L = exp(segsum(a))`` (Sec. 4-5). The chunked
algorithm (Sec. 6, Listing 1) splits the sequence into chunks of ``Q`` tokens: the diagonal
blocks of ``M`` are computed in the quadratic (attention) form, the off-diagonal blocks are
low rank and go through the recurrent state between chunks.

Shapes used throughout: ``b`` batch, ``l`` length, ``h`` heads, ``p`` head dim, ``g`` groups
(B and C shared by the ``h/g`` consecutive heads of a group, head ``i`` uses group
``i // (h/g)``), ``n`` state size.

Precision: everything is computed in ``promote(input dtype, float32)``: bf16/fp16 inputs run in
float32 and ``y`` is cast back to ``x.dtype``; float64 stays float64. The returned state is in
the compute dtype (float32 for low-precision inputs), as mamba_ssm keeps it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import einsum, rearrange, repeat
from torch import Tensor

from nvrepro.core.lm.layers.dtypes import cast


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """At least float32; float64 stays float64."""
    return torch.promote_types(dtype, torch.float32)


def _check(x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor) -> tuple[int, int, int, int, int, int]:
    if x.dim() != 4:
        raise ValueError(f"x: expected (b, l, h, p), got shape {tuple(x.shape)}")
    b, l, h, p = x.shape
    if B.dim() != 4 or B.shape[:2] != (b, l) or B.shape != C.shape:
        raise ValueError(f"B, C: expected equal shapes (b={b}, l={l}, g, n), "
                         f"got {tuple(B.shape)} and {tuple(C.shape)}")
    g, n = B.shape[-2:]
    if h % g:
        raise ValueError(f"n_groups: must divide n_heads={h}, got {g}")
    if dt.shape != (b, l, h):
        raise ValueError(f"dt: expected (b, l, h) = {(b, l, h)}, got {tuple(dt.shape)}")
    if A.shape != (h,):
        raise ValueError(f"A: expected (h,) = ({h},), got {tuple(A.shape)}")
    return b, l, h, p, g, n


def segsum(a: Tensor) -> Tensor:
    """Segment sums ``S[..., i, j] = a[j+1] + … + a[i]`` for ``i >= j``, ``-inf`` above the diagonal.

    ``(..., T) -> (..., T, T)``; ``exp(S)`` is the decay mask ``L`` of Sec. 3.2. Computed as a
    masked cumsum rather than ``cumsum[i] - cumsum[j]``: the difference of two long cumsums
    cancels catastrophically in low precision, the masked cumsum only adds the terms it needs.
    """
    T = a.shape[-1]
    a = repeat(a, "... i -> ... i j", j=T)  # a[..., i, j] = a_i
    strictly_lower = torch.tril(torch.ones(T, T, dtype=torch.bool, device=a.device), diagonal=-1)
    a = a.masked_fill(~strictly_lower, 0.0)  # keep a_i only where i > j
    s = torch.cumsum(a, dim=-2)  # s[i, j] = sum_{j < k <= i} a_k
    lower = torch.tril(torch.ones(T, T, dtype=torch.bool, device=a.device), diagonal=0)
    return s.masked_fill(~lower, -torch.inf)


def ssd_naive(x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None = None,
              initial_state: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Token-by-token SSD recurrence: the slow, independent reference.

    ``h_t = exp(dt_t A) h_{t-1} + dt_t x_t ⊗ B_t``;  ``y_t = h_t · C_t + D x_t`` (Sec. 2.1/3.1).

    Args:
        x: ``(b, l, h, p)`` inputs.
        dt: ``(b, l, h)`` step sizes, already positive (after softplus / clamping).
        A: ``(h,)`` negative decay rates.
        B, C: ``(b, l, g, n)``; head ``i`` reads group ``i // (h // g)``.
        D: optional ``(h,)`` skip connection.
        initial_state: optional ``(b, h, p, n)`` state ``h_0`` before the first token.

    Returns:
        ``y`` ``(b, l, h, p)`` in ``x.dtype`` and the final state ``(b, h, p, n)`` in
        the compute dtype.
    """
    b, l, h, p, g, n = _check(x, dt, A, B, C)
    cdt = _compute_dtype(x.dtype)
    xs, dts, As = x.to(cdt), dt.to(cdt), A.to(cdt)
    Bh = B.to(cdt).repeat_interleave(h // g, dim=2)  # (b, l, h, n)
    Ch = C.to(cdt).repeat_interleave(h // g, dim=2)  # (b, l, h, n)
    state = (x.new_zeros(b, h, p, n, dtype=cdt) if initial_state is None
             else initial_state.to(cdt))
    ys = []
    for t in range(l):
        decay = torch.exp(dts[:, t] * As)  # (b, h)
        inp = dts[:, t, :, None, None] * xs[:, t, :, :, None] * Bh[:, t, :, None, :]  # (b, h, p, n)
        state = decay[:, :, None, None] * state + inp
        ys.append((state * Ch[:, t, :, None, :]).sum(-1))  # (b, h, p)
    y = torch.stack(ys, dim=1) if ys else xs.new_zeros(b, 0, h, p)
    if D is not None:
        y = y + D.to(cdt)[:, None] * xs
    return y.to(x.dtype), state


def ssd_chunked(x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, chunk_size: int,
                D: Tensor | None = None, initial_state: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Chunked SSD (Sec. 6, Listing 1): quadratic inside chunks, recurrent between them.

    Same inputs and outputs as :func:`ssd_naive` (``x (b, l, h, p)``, ``dt (b, l, h)``,
    ``A (h,)``, ``B, C (b, l, g, n)``, ``D (h,)``, ``initial_state (b, h, p, n)`` ->
    ``y (b, l, h, p)``, ``final_state (b, h, p, n)``), computed in four steps per chunk of
    ``Q = chunk_size`` tokens:

    1. diagonal blocks: ``Y_diag = (L ∘ C Bᵀ) (Δ x)`` with ``L = exp(segsum(Δ A))`` (Sec. 6.1);
    2. chunk states: the state each chunk alone leaves at its end, ``Σ_s exp(a_{s+1..Q}) Δ_s x_s B_sᵀ``;
    3. state passing: ``H_c = exp(Σ_chunk a) H_{c-1} + S_c`` sequentially over the ``l/Q`` chunks
       (Sec. 6.2; a loop, so memory stays linear in ``l`` instead of the ``(l/Q)^2`` matrix form);
    4. off-diagonal blocks: ``Y_off[t] = exp(a_{1..t}) C_t H_{c-1}`` (Sec. 6.2).

    ``l`` need not be a multiple of ``Q``: the tail is padded with ``dt = 0`` (decay 1, input 0,
    so the state passes through unchanged) and stripped. B and C are contracted per group,
    never repeated per head. The largest intermediates are ``(b, h, l/Q, Q, Q)``: linear in
    ``l`` for fixed ``Q``.
    """
    b, l, h, p, g, n = _check(x, dt, A, B, C)
    if not isinstance(chunk_size, int) or chunk_size <= 0:
        raise ValueError(f"chunk_size: must be a positive integer, got {chunk_size!r}")
    cdt = _compute_dtype(x.dtype)
    Q, r = chunk_size, h // g
    if l == 0:  # nothing to scan: the state passes through
        state = x.new_zeros(b, h, p, n, dtype=cdt) if initial_state is None else initial_state.to(cdt)
        return x.new_zeros(b, 0, h, p), state
    xs, dts, As, Bs, Cs = x.to(cdt), dt.to(cdt), A.to(cdt), B.to(cdt), C.to(cdt)

    pad = (-l) % Q
    if pad:  # zeros: dt = 0 makes padded steps the identity on the state
        xs_p, dts_p = F.pad(xs, (0, 0, 0, 0, 0, pad)), F.pad(dts, (0, 0, 0, pad))
        Bs, Cs = F.pad(Bs, (0, 0, 0, 0, 0, pad)), F.pad(Cs, (0, 0, 0, 0, 0, pad))
    else:
        xs_p, dts_p = xs, dts

    xdt = rearrange(xs_p * dts_p[..., None], "b (c q) (g r) p -> b c q g r p", q=Q, g=g)  # Δ x
    a = rearrange(dts_p * As, "b (c q) (g r) -> b g r c q", q=Q, g=g)  # log decays, <= 0
    Bc = rearrange(Bs, "b (c q) g n -> b c q g n", q=Q)
    Cc = rearrange(Cs, "b (c q) g n -> b c q g n", q=Q)
    a_cs = torch.cumsum(a, dim=-1)  # (b, g, r, c, q): log decay from chunk start to token q

    # 1. Diagonal blocks: masked attention inside each chunk. C Bᵀ is per group, shared by r heads.
    L = torch.exp(segsum(a))  # (b, g, r, c, q, q)
    CB = einsum(Cc, Bc, "b c i g n, b c j g n -> b c g i j")
    y_diag = einsum(CB, L, xdt, "b c g i j, b g r c i j, b c j g r p -> b c i g r p")

    # 2. State each chunk produces at its own end, starting from zero.
    decay_to_end = torch.exp(a_cs[..., -1:] - a_cs)  # (b, g, r, c, q)
    chunk_states = einsum(Bc, decay_to_end, xdt, "b c j g n, b g r c j, b c j g r p -> b c g r p n")

    # 3. Pass states between chunks; states_in[c] is the state entering chunk c.
    chunk_decay = torch.exp(a_cs[..., -1])  # (b, g, r, c)
    if initial_state is None:
        state = xs.new_zeros(b, g, r, p, n)
    else:
        if initial_state.shape != (b, h, p, n):
            raise ValueError(f"initial_state: expected (b, h, p, n) = {(b, h, p, n)}, "
                             f"got {tuple(initial_state.shape)}")
        state = rearrange(initial_state.to(cdt), "b (g r) p n -> b g r p n", g=g)
    states_in = []
    for c in range(chunk_states.shape[1]):
        states_in.append(state)
        state = chunk_decay[..., c, None, None] * state + chunk_states[:, c]
    states_in = torch.stack(states_in, dim=1)  # (b, c, g, r, p, n)

    # 4. Contribution of the incoming state to every token of the chunk.
    y_off = einsum(Cc, states_in, torch.exp(a_cs), "b c i g n, b c g r p n, b g r c i -> b c i g r p")

    y = rearrange(y_diag + y_off, "b c q g r p -> b (c q) (g r) p")[:, :l]
    if D is not None:
        y = y + D.to(cdt)[:, None] * xs
    return y.to(x.dtype), rearrange(state, "b g r p n -> b (g r) p n")


def ssd_step(x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, state: Tensor,
             D: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """One recurrent SSD step (decoding): ``h' = exp(dt A) h + dt x ⊗ B``; ``y = h' · C + D x``.

    Args:
        x: ``(b, h, p)``; dt: ``(b, h)`` positive; A: ``(h,)``; B, C: ``(b, g, n)``;
        state: ``(b, h, p, n)``; D: optional ``(h,)``.

    Returns:
        ``y`` ``(b, h, p)`` in ``x.dtype`` and the new state ``(b, h, p, n)`` in
        ``state.dtype`` (a new tensor; ``state`` is not modified).
    """
    b, h, p = x.shape
    g, n = B.shape[-2:]
    if h % g or B.shape != (b, g, n) or C.shape != (b, g, n):
        raise ValueError(f"B, C: expected (b={b}, g, n) with g dividing h={h}, "
                         f"got {tuple(B.shape)} and {tuple(C.shape)}")
    if state.shape != (b, h, p, n):
        raise ValueError(f"state: expected (b, h, p, n) = {(b, h, p, n)}, got {tuple(state.shape)}")
    cdt = torch.promote_types(_compute_dtype(x.dtype), state.dtype)
    xs, dts = cast(x, cdt), cast(dt, cdt)
    r = h // g
    # Plain reshapes (and no no-op casts) rather than einops: this runs once per layer per
    # generated token, where per-call overhead, not arithmetic, is the cost.
    # Heads split as (g r): head i -> group i // r.
    s = cast(state, cdt).reshape(b, g, r, p, n)
    decay = torch.exp(dts * cast(A, cdt)).reshape(b, g, r, 1, 1)
    inp = (dts[..., None] * xs).reshape(b, g, r, p, 1) * cast(B, cdt).reshape(b, g, 1, 1, n)  # (b, g, r, p, n)
    s = torch.addcmul(inp, decay, s)  # exp(dt A) h + dt x ⊗ B
    y = (s @ cast(C, cdt).reshape(b, g, 1, n, 1)).reshape(b, h, p)  # h' · C
    if D is not None:
        y = torch.addcmul(y, cast(D, cdt)[:, None], xs)
    return cast(y, x.dtype), cast(s.reshape(b, h, p, n), state.dtype)
