"""SSD (Dao & Gu 2024): the chunked dual form and the single step against the recurrence."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from nvrepro.core.lm.layers.ssd import segsum, ssd_chunked, ssd_naive, ssd_step

F64 = torch.float64


def make_inputs(b, l, h, p, g, n, dtype=F64, init=False, D=False):
    """Random SSD inputs with realistic ranges: dt in (0.01, 0.6), A in (-3.1, -0.1)."""
    x = torch.randn(b, l, h, p, dtype=dtype)
    dt = (torch.rand(b, l, h, dtype=dtype) * 0.6 + 0.01)
    A = -(torch.rand(h, dtype=dtype) * 3 + 0.1)
    B = torch.randn(b, l, g, n, dtype=dtype)
    C = torch.randn(b, l, g, n, dtype=dtype)
    Dv = torch.randn(h, dtype=dtype) if D else None
    s0 = torch.randn(b, h, p, n, dtype=dtype) if init else None
    return x, dt, A, B, C, Dv, s0


# (b, l, h, p, g, n, chunk)
SHAPES = [
    (2, 37, 4, 3, 1, 5, 16),  # l not a multiple of the chunk
    (1, 37, 6, 2, 3, 4, 16),  # n_groups > 1
    (2, 5, 4, 3, 2, 3, 16),   # l < chunk
    (1, 64, 4, 4, 2, 8, 16),  # exact multiple
    (1, 1, 2, 2, 1, 2, 4),    # single token
    (2, 50, 8, 2, 8, 3, 7),   # one head per group, odd chunk
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("with_D", [False, True])
@pytest.mark.parametrize("with_init", [False, True])
def test_chunked_equals_naive_float64(shape, with_D, with_init):
    torch.manual_seed(0)
    *dims, chunk = shape
    x, dt, A, B, C, D, s0 = make_inputs(*dims, init=with_init, D=with_D)
    y_ref, s_ref = ssd_naive(x, dt, A, B, C, D=D, initial_state=s0)
    y, s = ssd_chunked(x, dt, A, B, C, chunk, D=D, initial_state=s0)
    assert y.shape == x.shape and y.dtype == F64
    assert s.shape == (dims[0], dims[2], dims[3], dims[5]) and s.dtype == F64
    torch.testing.assert_close(y, y_ref, atol=1e-8, rtol=1e-8)
    torch.testing.assert_close(s, s_ref, atol=1e-8, rtol=1e-8)


def test_naive_matches_explicit_matrix_form():
    """The recurrence equals y = M x with M[t, s] = C_t·B_s exp(sum a_{s+1..t}) dt_s (Sec. 3.2)."""
    torch.manual_seed(1)
    x, dt, A, B, C, _, _ = make_inputs(1, 9, 2, 3, 1, 4)
    y, _ = ssd_naive(x, dt, A, B, C)
    a = dt[0] * A  # (l, h)
    for hh in range(2):
        M = torch.zeros(9, 9, dtype=F64)
        for t in range(9):
            for s in range(t + 1):
                M[t, s] = (C[0, t, 0] @ B[0, s, 0]) * torch.exp(a[s + 1:t + 1, hh].sum()) * dt[0, s, hh]
        torch.testing.assert_close(y[0, :, hh], M @ x[0, :, hh], atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("g", [1, 2])
def test_step_iterated_equals_naive(g):
    torch.manual_seed(2)
    b, l, h, p, n = 2, 11, 4, 3, 5
    x, dt, A, B, C, D, s0 = make_inputs(b, l, h, p, g, n, init=True, D=True)
    y_ref, s_ref = ssd_naive(x, dt, A, B, C, D=D, initial_state=s0)
    state, ys = s0.clone(), []
    for t in range(l):
        y, state = ssd_step(x[:, t], dt[:, t], A, B[:, t], C[:, t], state, D=D)
        ys.append(y)
    torch.testing.assert_close(torch.stack(ys, 1), y_ref, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(state, s_ref, atol=1e-12, rtol=1e-12)


def test_chunked_continues_from_its_own_final_state():
    """Splitting a sequence in two and passing the state equals one call (prefill chunking)."""
    torch.manual_seed(3)
    x, dt, A, B, C, D, _ = make_inputs(2, 45, 4, 3, 2, 4, D=True)
    y, s = ssd_chunked(x, dt, A, B, C, 8, D=D)
    y1, s1 = ssd_chunked(x[:, :20], dt[:, :20], A, B[:, :20], C[:, :20], 8, D=D)
    y2, s2 = ssd_chunked(x[:, 20:], dt[:, 20:], A, B[:, 20:], C[:, 20:], 8, D=D, initial_state=s1)
    torch.testing.assert_close(torch.cat([y1, y2], 1), y, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(s2, s, atol=1e-10, rtol=1e-10)


def test_segsum_matches_definition():
    torch.manual_seed(4)
    a = torch.randn(3, 6, dtype=F64)
    S = segsum(a)
    for i in range(6):
        for j in range(6):
            want = a[:, j + 1:i + 1].sum(-1) if i >= j else torch.full((3,), -torch.inf, dtype=F64)
            torch.testing.assert_close(S[:, i, j], want)


def test_low_precision_computes_in_float32():
    torch.manual_seed(5)
    x, dt, A, B, C, D, _ = make_inputs(1, 40, 4, 4, 2, 8, D=True)
    y_ref, s_ref = ssd_naive(x, dt, A, B, C, D=D)
    y, s = ssd_chunked(x.bfloat16(), dt.bfloat16(), A.float(), B.bfloat16(), C.bfloat16(), 16,
                       D=D.float())
    assert y.dtype == torch.bfloat16 and s.dtype == torch.float32
    # Loose: the error is the bf16 rounding of the inputs/outputs, not the algorithm.
    assert (y.double() - y_ref).abs().max() < 0.1 * y_ref.abs().max()
    y32, s32 = ssd_chunked(x.float(), dt.float(), A.float(), B.float(), C.float(), 16, D=D.float())
    torch.testing.assert_close(y32.double(), y_ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(s32.double(), s_ref, atol=1e-4, rtol=1e-4)


def test_gradients_match_naive_and_are_finite():
    torch.manual_seed(6)
    inputs = make_inputs(2, 23, 4, 3, 2, 4, init=True, D=True)
    grads = []
    for fn in (lambda *a: ssd_naive(*a[:5], D=a[5], initial_state=a[6]),
               lambda *a: ssd_chunked(*a[:5], 8, D=a[5], initial_state=a[6])):
        leaves = [t.clone().requires_grad_(True) for t in inputs]
        y, s = fn(*leaves)
        (y.pow(2).sum() + s.sin().sum()).backward()
        grads.append([t.grad for t in leaves])
    for g_naive, g_chunk in zip(*grads):
        assert torch.isfinite(g_chunk).all()
        torch.testing.assert_close(g_chunk, g_naive, atol=1e-8, rtol=1e-8)


def test_gradients_finite_with_strong_decay_float32():
    """Large dt*A drives exp(segsum) to 0 inside chunks; no inf/NaN may leak into gradients."""
    torch.manual_seed(7)
    x, dt, A, B, C, D, _ = make_inputs(1, 70, 4, 4, 1, 4, dtype=torch.float32, D=True)
    dt = (dt * 50).requires_grad_(True)
    A = A.requires_grad_(True)
    y, s = ssd_chunked(x, dt, A, B, C, 32, D=D)
    (y.sum() + s.sum()).backward()
    assert torch.isfinite(dt.grad).all() and torch.isfinite(A.grad).all()


class _MaxNumel(TorchDispatchMode):
    """Records the largest tensor any aten op produces (forward and backward)."""

    def __init__(self):
        super().__init__()
        self.max_numel = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.max_numel = max(self.max_numel, t.numel())
        return out


def _peak_numel(l: int, chunk: int) -> int:
    x, dt, A, B, C, D, _ = make_inputs(1, l, 2, 4, 1, 4, dtype=torch.float32, D=True)
    x.requires_grad_(True)
    with _MaxNumel() as rec:
        y, s = ssd_chunked(x, dt, A, B, C, chunk, D=D)
        (y.sum() + s.sum()).backward()
    return rec.max_numel


def test_memory_linear_in_length():
    """No intermediate grows like l^2: quadrupling l at most ~quadruples the largest tensor."""
    torch.manual_seed(8)
    small, large = _peak_numel(512, 16), _peak_numel(2048, 16)
    assert large <= 4.5 * small, (small, large)  # quadratic would give 16x
    assert large < 2048 * 2048 // 8, large  # an (l x l) tensor would be 4M elements


@pytest.mark.parametrize("bad, message", [("dt", "dt:"), ("A", "A:"), ("B", "B, C:"),
                                          ("groups", "n_groups"), ("init", "initial_state"),
                                          ("chunk", "chunk_size")])
def test_bad_shapes_raise(bad, message):
    torch.manual_seed(9)
    x, dt, A, B, C, _, _ = make_inputs(1, 8, 4, 2, 2, 3)
    s0, chunk = None, 4
    if bad == "dt":
        dt = dt[..., :3]
    elif bad == "A":
        A = A[:3]
    elif bad == "B":
        B = B[:, :, :, :2]
    elif bad == "groups":
        B, C = torch.randn(1, 8, 3, 3, dtype=F64), torch.randn(1, 8, 3, 3, dtype=F64)
    elif bad == "init":
        s0 = torch.zeros(1, 4, 2, 5, dtype=F64)
    elif bad == "chunk":
        chunk = 0
    with pytest.raises(ValueError, match=message):
        ssd_chunked(x, dt, A, B, C, chunk, initial_state=s0)
