"""The Mamba-2 mixer as used in Nemotron-H, in pure PyTorch (optional mamba_ssm kernels on CUDA).

Block (Dao & Gu 2024, Sec. 7.1, "parallel" Mamba-2 block; Nemotron-H Sec. 2.1)::

    z, xBC, dt = in_proj(u)                 # one projection, split [z, xBC, dt]
    x, B, C   = silu(causal_depthwise_conv(xBC))
    Δ         = clamp(softplus(dt + dt_bias), dt_limit);  A = -exp(A_log)
    y         = SSD(x, Δ, A, B, C) + D x    # ssd.py, Sec. 6
    out       = out_proj(GroupRMSNorm(y * silu(z)))

Parameter names match HF transformers' ``NemotronHMamba2Mixer`` (``in_proj``, ``conv1d``,
``dt_bias``, ``A_log``, ``D``, ``norm.weight``, ``out_proj``) so checkpoints map 1:1.

Three paths in :meth:`Mamba2Mixer.forward`:

* ``state is None``: chunked SSD over the whole sequence (training);
* ``state`` given and (``l > 1`` or not ``state.filled``): prefill, continuing from the state if
  it is filled, then writing the last conv window and the final SSM state back (chunked prefill:
  two pieces give the same result as one);
* ``state`` filled and ``l == 1``: one recurrent step (decoding), conv window rolled by one
  (:meth:`Mamba2Mixer.decode_step`, or the kernels' in-place update on CUDA).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nvrepro.core.lm.config import MambaConfig
from nvrepro.core.lm.layers.dtypes import cast
from nvrepro.core.lm.layers.norms import GatedGroupRMSNorm
from nvrepro.core.lm.layers.ssd import ssd_chunked, ssd_step

# Optional CUDA kernels; never required. Selected at run time (see Mamba2Mixer.use_kernels).
try:  # pragma: no cover - depends on the environment
    from mamba_ssm.ops.triton.selective_state_update import selective_state_update
    from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined
except Exception:  # ImportError, or a broken CUDA/triton install
    mamba_chunk_scan_combined = None
    selective_state_update = None
try:  # pragma: no cover
    from causal_conv1d import causal_conv1d_fn, causal_conv1d_update
except Exception:
    causal_conv1d_fn = None
    causal_conv1d_update = None

KERNEL_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def kernels_available() -> bool:
    """Whether the mamba_ssm Triton kernels imported (they still need CUDA tensors)."""
    return mamba_chunk_scan_combined is not None and selective_state_update is not None


@dataclass
class Mamba2State:
    """Decoding cache of one Mamba-2 layer.

    Attributes:
        conv_state: ``(b, conv_dim, d_conv)``: the last ``d_conv`` *pre-conv* ``xBC`` inputs,
            oldest first (the layout of mamba_ssm / HF / ``causal_conv1d_update``). Only the
            newest ``d_conv - 1`` are needed for the next output; the extra slot is what the
            step overwrites after rolling.
        ssm_state: ``(b, n_heads, head_dim, d_state)``; float32 (float64 for a float64 model).
        filled: False until a prefill wrote the tensors; while False they are ignored.

    The mixer replaces the tensors with new ones (CPU path) or updates them in place (kernel
    path); treat them as owned by the state.
    """

    conv_state: Tensor
    ssm_state: Tensor
    filled: bool = False

    @classmethod
    def zeros(cls, cfg: MambaConfig, batch: int, device: torch.device | str | None = None,
              dtype: torch.dtype = torch.float32) -> "Mamba2State":
        """Empty state; ``dtype`` is the activation dtype (conv window), the SSM state is
        ``promote(dtype, float32)``."""
        conv = torch.zeros(batch, cfg.conv_dim, cfg.d_conv, device=device, dtype=dtype)
        ssm = torch.zeros(batch, cfg.n_heads, cfg.head_dim, cfg.d_state, device=device,
                          dtype=torch.promote_types(dtype, torch.float32))
        return cls(conv, ssm, False)

    @property
    def batch_size(self) -> int:
        return self.ssm_state.shape[0]


def mamba2_state_bytes(cfg: MambaConfig, batch: int, bytes_per_elem_conv: int = 2,
                       bytes_per_elem_ssm: int = 4) -> int:
    """Bytes of one layer's :class:`Mamba2State`: conv window ``(b, conv_dim, d_conv)`` plus SSM
    state ``(b, h, p, n)``. Independent of sequence length (unlike a KV cache)."""
    conv = batch * cfg.conv_dim * cfg.d_conv * bytes_per_elem_conv
    ssm = batch * cfg.n_heads * cfg.head_dim * cfg.d_state * bytes_per_elem_ssm
    return conv + ssm


# --- kernel helpers: small so they can be tested on a GPU in isolation ----------------------
def chunk_scan_kernel(x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, chunk_size: int,
                      D: Tensor | None, initial_state: Tensor | None) -> tuple[Tensor, Tensor]:
    """mamba_ssm's fused chunked SSD; same contract as :func:`ssd_chunked` (``dt`` already
    softplus-ed and clamped, so no ``dt_bias`` / ``dt_softplus`` is passed)."""
    y, final = mamba_chunk_scan_combined(
        x.contiguous(), dt.contiguous(), A, B.contiguous(), C.contiguous(), chunk_size, D=D,
        initial_states=initial_state, return_final_states=True)
    return y, final


def state_update_kernel(x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, state: Tensor,
                        D: Tensor | None) -> Tensor:
    """mamba_ssm's fused single step; updates ``state (b, h, p, n)`` in place, returns
    ``y (b, h, p)``. The kernel wants per-channel A/dt/D, given as broadcast views."""
    h, p, n = state.shape[1:]
    A_hpn = A[:, None, None].expand(h, p, n).float()
    dt_bhp = dt[..., None].expand(*dt.shape, p)
    D_hp = None if D is None else D[:, None].expand(h, p)
    return selective_state_update(state, x, dt_bhp, A_hpn, B, C, D=D_hp, dt_softplus=False)


class Mamba2Mixer(nn.Module):
    """Mamba-2 mixer: ``(b, l, d_model) -> (b, l, d_model)``; see the module docstring.

    ``use_kernels``: None (auto: mamba_ssm kernels when importable and the input is a CUDA
    fp16/bf16/fp32 tensor), True (require them), False (always pure PyTorch).
    """

    def __init__(self, d_model: int, cfg: MambaConfig, norm_eps: float = 1e-5):
        super().__init__()
        cfg.validate()
        self.d_model, self.cfg = d_model, cfg
        self.n_heads, self.head_dim = cfg.n_heads, cfg.head_dim
        self.n_groups, self.d_state = cfg.n_groups, cfg.d_state
        self.d_inner, self.conv_dim = cfg.d_inner, cfg.conv_dim
        self.use_kernels: bool | None = None

        self.in_proj = nn.Linear(d_model, 2 * self.d_inner + 2 * cfg.n_groups * cfg.d_state
                                 + cfg.n_heads, bias=False)
        self.conv1d = nn.Conv1d(self.conv_dim, self.conv_dim, kernel_size=cfg.d_conv,
                                groups=self.conv_dim, padding=cfg.d_conv - 1, bias=cfg.conv_bias)
        self.dt_bias = nn.Parameter(torch.empty(cfg.n_heads))
        self.A_log = nn.Parameter(torch.empty(cfg.n_heads))
        self.D = nn.Parameter(torch.empty(cfg.n_heads))
        for p in (self.dt_bias, self.A_log, self.D):
            p._no_weight_decay = True
        self.norm = GatedGroupRMSNorm(self.d_inner, cfg.n_groups, norm_eps)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)
        self.reset_ssm_parameters()

    @torch.no_grad()
    def reset_ssm_parameters(self, A_init_range: tuple[float, float] = (1.0, 16.0)) -> None:
        """mamba_ssm's init: Δ log-uniform in [dt_min, dt_max] floored at dt_init_floor with
        ``dt_bias = softplus⁻¹(Δ)``; ``A = -uniform(1, 16)`` stored as ``A_log``; ``D = 1``."""
        cfg = self.cfg
        lo, hi = math.log(cfg.dt_min), math.log(cfg.dt_max)
        dt = torch.exp(torch.rand(cfg.n_heads) * (hi - lo) + lo).clamp(min=cfg.dt_init_floor)
        self.dt_bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        self.A_log.copy_(torch.log(torch.empty(cfg.n_heads).uniform_(*A_init_range)))
        self.D.fill_(1.0)

    def allocate_state(self, batch: int) -> Mamba2State:
        """Empty state on this module's device, for its parameter dtype."""
        w = self.in_proj.weight
        return Mamba2State.zeros(self.cfg, batch, device=w.device, dtype=w.dtype)

    # ------------------------------------------------------------------------------------
    def _kernels(self, hidden: Tensor) -> bool:
        if self.use_kernels is False:
            return False
        ok = kernels_available() and hidden.is_cuda and hidden.dtype in KERNEL_DTYPES
        if self.use_kernels and not ok:
            raise RuntimeError("use_kernels=True needs mamba_ssm importable and CUDA "
                               f"fp16/bf16/fp32 input; got device={hidden.device}, dtype={hidden.dtype}")
        return ok

    def _dt(self, dt: Tensor) -> Tensor:
        """Raw ``dt (..., h)`` -> ``clamp(softplus(dt + dt_bias), dt_limit)`` in >= float32."""
        cdt = torch.promote_types(dt.dtype, torch.float32)
        dt = F.softplus(cast(dt, cdt) + cast(self.dt_bias, cdt))
        lo, hi = self.cfg.dt_limit
        return dt.clamp(min=lo, max=hi) if (lo, hi) != (0.0, math.inf) else dt

    def _A(self, dtype: torch.dtype) -> Tensor:
        # In float32 at least (not .float(): a float64 model must stay float64).
        return -torch.exp(cast(self.A_log, torch.promote_types(dtype, torch.float32)))

    def _conv(self, xBC: Tensor, state: Mamba2State | None, kernels: bool) -> Tensor:
        """Causal depthwise conv + SiLU over ``xBC (b, l, conv_dim)``, continuing from the stored
        window if the state is filled; writes the last ``d_conv`` inputs into the state."""
        k, l = self.cfg.d_conv, xBC.shape[1]
        xt = xBC.transpose(1, 2)  # (b, conv_dim, l)
        prefix = state is not None and state.filled
        if state is not None:
            prev = state.conv_state.to(xt.dtype) if prefix else xt.new_zeros(*xt.shape[:2], k)
            # contiguous: a view would keep the whole (b, conv_dim, k + l) buffer alive.
            state.conv_state = torch.cat([prev, xt], dim=-1)[..., -k:].to(state.conv_state.dtype).contiguous()
        if prefix:
            # The newest k-1 stored inputs play the role of the zero padding.
            full = torch.cat([prev[..., 1:], xt], dim=-1)  # (b, conv_dim, k - 1 + l)
            out = F.conv1d(full, self.conv1d.weight, self.conv1d.bias, groups=self.conv_dim)
        elif kernels and causal_conv1d_fn is not None:
            return causal_conv1d_fn(xt.contiguous(), self.conv1d.weight[:, 0], self.conv1d.bias,
                                    activation="silu").transpose(1, 2)
        else:
            out = self.conv1d(xt)[..., :l]  # padding k-1 both sides; keep the causal part
        return F.silu(out).transpose(1, 2)

    def _split_xBC(self, xBC: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(..., conv_dim) -> x (..., h, p), B (..., g, n), C (..., g, n)``."""
        gn = self.n_groups * self.d_state
        x, B, C = torch.split(xBC, [self.d_inner, gn, gn], dim=-1)
        lead = xBC.shape[:-1]
        return (x.reshape(*lead, self.n_heads, self.head_dim),
                B.reshape(*lead, self.n_groups, self.d_state),
                C.reshape(*lead, self.n_groups, self.d_state))

    def forward(self, hidden: Tensor, state: Mamba2State | None = None) -> Tensor:
        """``hidden (b, l, d_model) -> (b, l, d_model)``; ``state`` selects the path (module doc)."""
        if hidden.shape[-1] != self.d_model:
            raise ValueError(f"hidden: last dim must be d_model={self.d_model}, "
                             f"got {hidden.shape[-1]} (shape {tuple(hidden.shape)})")
        if hidden.dim() != 3:
            raise ValueError(f"hidden: expected (b, l, d_model), got shape {tuple(hidden.shape)}")
        b, l, _ = hidden.shape
        if state is not None and state.batch_size != b:
            raise ValueError(f"state: batch size {state.batch_size} != hidden batch size {b}")
        kernels = self._kernels(hidden)
        if state is not None and state.filled and l == 1 and not kernels:
            out, state.conv_state, state.ssm_state = self.decode_step(
                hidden[:, 0], state.conv_state, state.ssm_state)
            return out[:, None]
        z, xBC, dt = torch.split(self.in_proj(hidden), [self.d_inner, self.conv_dim, self.n_heads],
                                 dim=-1)
        if state is not None and state.filled and l == 1:
            y = self._step_kernels(xBC[:, 0], dt[:, 0], state)[:, None]  # (b, 1, d_inner)
        else:
            y = self._chunked(xBC, dt, state, kernels)
        return self.out_proj(self.norm(y, z))

    def decode_step(self, hidden: Tensor, conv_state: Tensor, ssm_state: Tensor
                    ) -> tuple[Tensor, Tensor, Tensor]:
        """One decoding step in pure PyTorch, as a pure function of its inputs.

        Args:
            hidden: ``(b, d_model)``, the new token's (normalised) input.
            conv_state: ``(b, conv_dim, d_conv)``, the last ``d_conv`` pre-conv inputs, oldest first.
            ssm_state: ``(b, n_heads, head_dim, d_state)``.

        Returns:
            ``out (b, d_model)``, the new conv window and the new SSM state (new tensors; the
            inputs are not modified). Nothing here depends on how long the sequence already is,
            so the shapes are fixed for a whole generation: what lets torch.compile fuse the
            step once (:mod:`nvrepro.core.lm.decoding`).
        """
        z, xBC, dt = torch.split(self.in_proj(hidden), [self.d_inner, self.conv_dim, self.n_heads],
                                 dim=-1)
        xBC, window = self._conv_step(xBC, conv_state)
        x, B, C = self._split_xBC(xBC)
        y, ssm_state = ssd_step(x, self._dt(dt), self._A(x.dtype), B, C, ssm_state, D=self.D)
        return self.out_proj(self.norm(y.reshape(hidden.shape[0], self.d_inner), z)), window, ssm_state

    def _conv_step(self, xBC: Tensor, conv_state: Tensor) -> tuple[Tensor, Tensor]:
        """One step of the causal depthwise conv + SiLU: ``xBC (b, conv_dim)`` and the window
        ``(b, conv_dim, d_conv)`` -> conv output ``(b, conv_dim)`` and the new window."""
        w, bias = self.conv1d.weight[:, 0], self.conv1d.bias  # (conv_dim, d_conv)
        # Roll the window by one: drop the oldest input, append the new one.
        window = torch.cat([conv_state[..., 1:], cast(xBC, conv_state.dtype)[..., None]], -1)
        out = (cast(window, w.dtype) * w).sum(-1)
        return F.silu(out + bias if bias is not None else out), window

    def _chunked(self, xBC: Tensor, dt: Tensor, state: Mamba2State | None, kernels: bool) -> Tensor:
        """Full / prefill path: ``xBC (b, l, conv_dim)``, raw ``dt (b, l, h)`` -> ``y (b, l, d_inner)``."""
        b, l, _ = xBC.shape
        init = state.ssm_state if state is not None and state.filled else None
        x, B, C = self._split_xBC(self._conv(xBC, state, kernels))
        dt = self._dt(dt)
        A = self._A(x.dtype)
        if kernels:
            y, final = chunk_scan_kernel(x, dt, A, B, C, self.cfg.chunk_size, self.D,
                                         None if init is None else init.float())
        else:
            y, final = ssd_chunked(x, dt, A, B, C, self.cfg.chunk_size, D=self.D, initial_state=init)
        if state is not None:
            state.ssm_state = final.to(state.ssm_state.dtype)
            state.filled = True
        return y.reshape(b, l, self.d_inner)

    def _step_kernels(self, xBC: Tensor, dt: Tensor, state: Mamba2State) -> Tensor:
        """Decode path on the mamba_ssm / causal_conv1d kernels (CUDA): ``xBC (b, conv_dim)``,
        raw ``dt (b, h)`` -> ``y (b, d_inner)``; the state is updated in place."""
        w, bias = self.conv1d.weight[:, 0], self.conv1d.bias  # (conv_dim, k)
        if causal_conv1d_update is not None and state.conv_state.dtype == xBC.dtype:
            xBC = causal_conv1d_update(xBC, state.conv_state, w, bias, "silu")  # in place
        else:
            xBC, state.conv_state = self._conv_step(xBC, state.conv_state)
        x, B, C = self._split_xBC(xBC)
        y = state_update_kernel(x, self._dt(dt), self._A(x.dtype), B, C, state.ssm_state, self.D)
        return y.reshape(xBC.shape[0], self.d_inner)
