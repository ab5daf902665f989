"""FP8 emulation: every GEMM operand rounded through torch's float8 dtypes, forward and backward.

A linear layer ``y = x Wᵀ`` costs three GEMMs per training step; in Nemotron-H's recipe
(arXiv 2504.03624, Sec. 2.4) each reads FP8 operands with per-tensor scales:

    forward       y      = Q₄(x) Q₄(W)ᵀ                  E4M3: 3 mantissa bits, max 448
    grad input    ∂L/∂x  = Q₅(g) Q₄(W)                   E5M2: 2 mantissa bits, max 57344
    grad weight   ∂L/∂W  = Q₅(g)ᵀ Q₄(x)                  (g = ∂L/∂y, the incoming gradient)

where ``Q(t) = cast_fp8(clamp(t * s, ±max)) / s``. *Current* scaling takes ``s = max / amax(t)``
of the tensor now (the largest magnitude lands on the format's largest value); *delayed* scaling
takes ``s = max / max(amax history)``, the amaxes of the last steps, so a tensor that grew since
then saturates at ``±max``.

Here the rounding is done by torch's own casts to ``torch.float8_e4m3fn`` / ``torch.float8_e5m2``;
the GEMM then runs in float32 on the dequantised values ``q / s`` (a tensor core multiplies the
FP8 values and accumulates in FP32; dividing by ``s`` first differs from that only by float32
rounding). The numbers the model sees are therefore the FP8-rounded ones; only the speed of FP8
is not reproduced. The tensors saved for the backward pass are the FP8 ones (1 byte per value),
as in a real FP8 implementation.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

E4M3 = torch.float8_e4m3fn
E5M2 = torch.float8_e5m2
FORMATS = {"e4m3": E4M3, "e5m2": E5M2}
# Roles of the three tensors a linear layer quantises; rows of FP8Linear.amax_history.
INPUT, WEIGHT, GRAD = 0, 1, 2
AMAX_EPS = 1e-12


def fp8_max(dtype: torch.dtype) -> float:
    """Largest finite value of an FP8 format: 448 (E4M3), 57344 (E5M2)."""
    return float(torch.finfo(dtype).max)


def amax(t: Tensor) -> Tensor:
    """``max |t|`` as a float32 scalar tensor (no host sync)."""
    return t.detach().abs().amax().float()


def compute_scale(amax_value: Tensor, dtype: torch.dtype) -> Tensor:
    """``s = fp8_max / amax`` as a float32 scalar; ``s = 1`` where ``amax == 0`` (an all-zero
    tensor has nothing to scale, and ``max / 0`` would turn it into NaNs). A NaN amax gives a
    NaN scale, so a NaN anywhere in a tensor makes its whole FP8 image NaN: loud, not hidden.

    Computed in float64 then rounded to float32, with ``amax`` clamped to ``>= 1e-12`` (a
    subnormal amax would give an infinite scale), as torchao does, so both backends agree.
    """
    a = amax_value.detach().double()
    scale = torch.where(a == 0, torch.ones_like(a), fp8_max(dtype) / a.clamp(min=AMAX_EPS))
    return scale.float()


def quantize(t: Tensor, dtype: torch.dtype, scale: Tensor) -> Tensor:
    """``cast_fp8(clamp(t * scale, ±max))``: the FP8 tensor (same shape as ``t``).

    Saturating: values beyond the format's range clamp to ``±max`` instead of becoming NaN
    (only delayed scaling can produce them; current scaling maps the amax exactly to max).
    """
    limit = fp8_max(dtype)
    return (t.float() * scale).clamp(-limit, limit).to(dtype)


def _decode(q: Tensor) -> tuple[Tensor, float]:
    """``(v, f)`` with ``v * f`` the float32 values of the FP8 tensor ``q`` (NaN codes aside).

    Through float16 bit patterns, several times faster on CPU than torch's E4M3 -> float32 cast
    (scalar code there). The byte is read as int8, so widening to int16 copies the sign into the
    high bits. E5M2 is exactly the top byte of a float16: ``v = bits << 8``, ``f = 1``. E4M3's
    sign / 4-bit exponent / 3-bit mantissa, shifted by 7 and with bit 14 cleared, are a float16
    whose exponent (bias 15 instead of 7) reads 2⁸ too small, subnormals included: ``f = 256``.
    """
    bits = q.view(torch.int8).to(torch.int16)
    if q.dtype == E5M2:
        return (bits << 8).view(torch.float16).float(), 1.0
    if q.dtype == E4M3:
        return ((bits << 7) & -0x4080).view(torch.float16).float(), 256.0  # mask 0xBF80 as int16
    raise ValueError(f"dtype: expected float8_e4m3fn or float8_e5m2, got {q.dtype}")


def fp8_to_float32(q: Tensor) -> Tensor:
    """The exact float32 values of an FP8 tensor: ``q.float()``, faster (see :func:`_decode`);
    a test checks all 256 codes of both formats."""
    v, f = _decode(q)
    v = v * f
    if q.dtype == E4M3:  # E4M3 has no inf; its two NaN codes (magnitude 0x7F) would read ±480
        v = v.masked_fill((q.view(torch.uint8) & 0x7F) == 0x7F, float("nan"))
    return v


def dequantize(q: Tensor, scale: Tensor) -> Tensor:
    """float32 values ``q / scale`` of an FP8 tensor from :func:`quantize`.

    ``v / (scale / f)`` is ``(v * f) / scale`` rounded once (``f`` is a power of two). The NaN
    codes need no care here: :func:`quantize` only emits them for a NaN or inf input, whose
    scale is NaN or 0, which makes the whole result NaN / inf anyway.
    """
    v, f = _decode(q)
    return v / (scale / f)


def quantize_dequantize(t: Tensor, dtype: torch.dtype, scale: Tensor | None = None) -> Tensor:
    """``t`` rounded through FP8 with per-tensor ``scale`` (current scaling if ``None``); float32."""
    if scale is None:
        scale = compute_scale(amax(t), dtype)
    return dequantize(quantize(t, dtype, scale), scale)


def flushed_fraction(t: Tensor, dtype: torch.dtype) -> float:
    """Fraction of the non-zero entries of ``t`` that become exactly 0 in FP8 (current scaling).

    Underflow: with the amax mapped to the format's max, anything below half the smallest
    subnormal rounds to 0, i.e. ``|t| < amax * 2⁻¹⁰ / 448`` (≈ 2.2e-6 amax) in E4M3 and
    ``|t| < amax * 2⁻¹⁷ / 57344`` (≈ 1.3e-10 amax) in E5M2.
    """
    nonzero = t != 0
    count = int(nonzero.sum())
    if count == 0:
        return 0.0
    q = quantize(t, dtype, compute_scale(amax(t), dtype))
    return float((((q.view(torch.uint8) & 0x7F) == 0) & nonzero).sum()) / count


def delayed_scale(current_amax: Tensor, history: Tensor, dtype: torch.dtype, update: bool) -> Tensor:
    """Scale from the amax history ``(H,)`` (newest first), then push ``current_amax`` into it.

    ``s = max / max(history)``: the scale known before this tensor was seen, as Transformer
    Engine's DelayedScaling with ``amax_compute_algo="max"``. An empty (all-zero) history, i.e.
    the first step, falls back to the current amax. ``update=False`` (evaluation) reads the
    history without changing it.
    """
    past = history.max()
    scale = compute_scale(torch.where(past > 0, past, current_amax), dtype)
    if update:
        history.copy_(torch.roll(history, 1))
        history[0] = current_amax
    return scale


def _scale_for(t: Tensor, dtype: torch.dtype, history: Tensor | None, update: bool) -> Tensor:
    """Current scale (``history is None``) or delayed scale; records the amax when updating."""
    a = amax(t)
    if history is None:
        return compute_scale(a, dtype)
    return delayed_scale(a, history, dtype, update)


class _FP8LinearFn(torch.autograd.Function):
    """``x (..., in) @ Wᵀ (in, out) -> (..., out)`` with FP8 operands in all three GEMMs.

    ``history`` is ``None`` (current scaling) or the layer's ``(3, H)`` amax history (delayed).
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, history: Tensor | None, update: bool,
                out_dtype: torch.dtype) -> Tensor:
        with torch.autocast(x.device.type, enabled=False):
            sx = _scale_for(x, E4M3, None if history is None else history[INPUT], update)
            sw = _scale_for(weight, E4M3, None if history is None else history[WEIGHT], update)
            qx, qw = quantize(x, E4M3, sx), quantize(weight, E4M3, sw)
            y = dequantize(qx, sx) @ dequantize(qw, sw).t()
        ctx.save_for_backward(qx, sx, qw, sw)
        ctx.history, ctx.update = history, update
        ctx.x_dtype, ctx.w_dtype = x.dtype, weight.dtype
        return y.to(out_dtype)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        qx, sx, qw, sw = ctx.saved_tensors
        with torch.autocast(grad_out.device.type, enabled=False):
            hist = None if ctx.history is None else ctx.history[GRAD]
            sg = _scale_for(grad_out, E5M2, hist, ctx.update)
            g = quantize_dequantize(grad_out, E5M2, sg)  # (..., out)
            grad_x = grad_w = None
            if ctx.needs_input_grad[0]:
                grad_x = (g @ dequantize(qw, sw)).to(ctx.x_dtype)
            if ctx.needs_input_grad[1]:
                g2 = g.reshape(-1, g.shape[-1])
                x2 = dequantize(qx, sx).reshape(-1, qx.shape[-1])
                grad_w = (g2.t() @ x2).to(ctx.w_dtype)
        return grad_x, grad_w, None, None, None


def fp8_linear(x: Tensor, weight: Tensor, bias: Tensor | None = None, history: Tensor | None = None,
               update: bool = True) -> Tensor:
    """Functional FP8 linear: ``(..., in) -> (..., out)``, see :class:`_FP8LinearFn`.

    The output has the autocast dtype when autocast is on (as a BF16 GEMM's would), else the
    input's dtype. The bias is added in high precision, outside the FP8 GEMM (as torchao and TE).
    """
    device = x.device.type
    out_dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else x.dtype
    y = _FP8LinearFn.apply(x, weight, history, update, out_dtype)
    return y if bias is None else y + bias.to(y.dtype)


class FP8Linear(nn.Linear):
    """An ``nn.Linear`` whose three GEMMs see FP8-rounded operands (emulated; any device).

    Same parameters and state-dict keys as the ``nn.Linear`` it replaces; the amax history
    ``(3, H)`` (rows: input, weight, gradient; newest first) is a non-persistent buffer, so
    checkpoints of FP8 and BF16 runs are interchangeable. It is updated in training mode only.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 recipe: str = "current", amax_history_len: int = 16, device=None, dtype=None):
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        self._init_fp8(recipe, amax_history_len)

    def _init_fp8(self, recipe: str, amax_history_len: int) -> None:
        if recipe not in ("current", "delayed"):
            raise ValueError(f"recipe: must be 'current' or 'delayed', got {recipe!r}")
        self.recipe = recipe
        self.register_buffer("amax_history", torch.zeros(3, amax_history_len, device=self.weight.device),
                             persistent=False)

    @classmethod
    def from_linear(cls, linear: nn.Linear, recipe: str = "current",
                    amax_history_len: int = 16) -> "FP8Linear":
        """Wrap ``linear``'s own Parameters (no copy: works on the meta device, keeps ties)."""
        new = cls.__new__(cls)
        nn.Module.__init__(new)
        new.in_features, new.out_features = linear.in_features, linear.out_features
        new.weight, new.bias = linear.weight, linear.bias
        new._init_fp8(recipe, amax_history_len)
        return new

    def forward(self, x: Tensor) -> Tensor:
        history = self.amax_history if self.recipe == "delayed" else None
        return fp8_linear(x, self.weight, self.bias, history, update=self.training)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, fp8=e4m3/e5m2, recipe={self.recipe}"
