"""One forward pass of the Mamba-2 block, stage by stage, with the core layer's own weights.

The model's Mamba-2 layer (:class:`nvrepro.core.lm.layers.mamba2.Mamba2Mixer`) does all of this
in a few fused calls. :func:`walk_mamba2` redoes it one readable step at a time, on the layer's
parameters, and keeps every intermediate with its shape so a notebook can print the block as a
table (Dao & Gu 2024, Sec. 7.1, the "parallel" Mamba-2 block; Nemotron-H Sec. 2.1)::

    zxBCdt = in_proj(u)                                 (b, l, 2 d_inner + 2 g n + h)
    z, xBC, dt_raw = split(zxBCdt)                      (b, l, d_inner), (b, l, d_inner + 2 g n), (b, l, h)
    xBC = silu(causal_depthwise_conv1d(xBC))            a window of d_conv tokens per channel
    x, B, C = split(xBC)                                (b, l, h, p), (b, l, g, n), (b, l, g, n)
    dt = softplus(dt_raw + dt_bias);  A = -exp(A_log)   (b, l, h), (h,)
    L = exp(segsum(dt A))                               (b, h, l, l) decay mask
    y = (L ∘ C Bᵀ) (dt x) + D x                         (b, l, h, p) the SSD, in its dual form
    out = out_proj(GroupRMSNorm(y * silu(z)))           groups of d_inner / g channels

The scan here is the SSD's quadratic ("attention-like") dual form over the whole sequence, not
the layer's chunked algorithm: the walk is a second, independent computation of the layer's
output (``tests/hybrid/test_mamba2_block.py`` checks they agree), and its cost is ``O(l^2)``,
meant for the short sequences of a notebook.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from nvrepro.core.lm.config import MambaConfig, ModelConfig, model_config_from_yaml
from nvrepro.core.lm.layers.mamba2 import Mamba2Mixer
from nvrepro.core.tooling.validation import ConfigError
from nvrepro.hybrid.arms import attention_fraction


@dataclass(frozen=True)
class Stage:
    """One step of the block: its ``name``, the ``formula`` it computes, its output ``tensor``,
    and the ``dims`` naming the tensor's axes (e.g. ``"b l h p"``)."""

    name: str
    formula: str
    tensor: Tensor
    dims: str

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.tensor.shape)


@dataclass
class BlockWalk:
    """The stages of one Mamba-2 forward pass, in order; ``walk["x"]`` is a stage's tensor."""

    stages: list[Stage] = field(default_factory=list)

    def add(self, name: str, formula: str, tensor: Tensor, dims: str) -> Tensor:
        if len(dims.split()) != tensor.dim():
            raise AssertionError(f"stage {name}: dims {dims!r} do not match shape {tuple(tensor.shape)}")
        self.stages.append(Stage(name, formula, tensor, dims))
        return tensor

    def __getitem__(self, name: str) -> Tensor:
        for stage in self.stages:
            if stage.name == name:
                return stage.tensor
        raise KeyError(f"name: no stage {name!r}; stages are {self.names}")

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.stages]

    @property
    def output(self) -> Tensor:
        """The block's output ``(b, l, d_model)``."""
        return self.stages[-1].tensor

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """``{stage name: shape}`` in order."""
        return {s.name: s.shape for s in self.stages}

    def table(self) -> str:
        """A text table: stage, formula, axes and shape, one row per stage."""
        rows = [("stage", "computes", "axes", "shape")]
        rows += [(s.name, s.formula, s.dims, str(s.shape)) for s in self.stages]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)


def mamba2_layer(config: ModelConfig | str, seed: int = 0, dtype: torch.dtype = torch.float32) -> Mamba2Mixer:
    """A freshly initialised core Mamba-2 layer with the widths of ``config`` (a
    :class:`ModelConfig` or the path of a model YAML such as ``configs/hybrid/*.yaml``).

    The weights come from a generator seeded with ``seed`` (the global RNG is left as it was).
    """
    cfg = config if isinstance(config, ModelConfig) else model_config_from_yaml(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layer = Mamba2Mixer(cfg.d_model, cfg.mamba, cfg.norm_eps)
    return layer.to(dtype)


# paper_facts.yaml key -> the matching MambaConfig field
MAMBA_FACTS = {"mamba_heads_8b": "n_heads", "mamba_head_dim_8b": "head_dim", "mamba_state_8b": "d_state",
               "mamba_groups_8b": "n_groups", "mamba_conv_8b": "d_conv", "mamba_chunk_8b": "chunk_size"}


def paper_comparison(config: ModelConfig | str) -> dict[str, float]:
    """The toy's values of the 8B facts in ``paper_facts.yaml``, for ``side_by_side("hybrid", ...)``:
    ``attention_share_8b`` (share of ``*`` layers in the pattern) and the Mamba-2 widths of
    :data:`MAMBA_FACTS`. ``config``: a :class:`ModelConfig` or a model YAML path."""
    cfg = config if isinstance(config, ModelConfig) else model_config_from_yaml(config)
    return {"attention_share_8b": attention_fraction(cfg.pattern),
            **{key: getattr(cfg.mamba, name) for key, name in MAMBA_FACTS.items()}}


def stage_shapes(config: ModelConfig | str, batch: int = 1, length: int = 1) -> dict[str, tuple[int, ...]]:
    """The shape of every stage of :func:`walk_mamba2` for a model config, from the widths alone
    (no weights, nothing computed: usable for the 8B's config). ``{stage name: shape}`` in order."""
    cfg = config if isinstance(config, ModelConfig) else model_config_from_yaml(config)
    for value, name in ((batch, "batch"), (length, "length")):
        if not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
            raise ConfigError(f"{name}: must be a positive integer, got {value!r}")
    m, b, l = cfg.mamba, batch, length
    h, p, g, n, d = m.n_heads, m.head_dim, m.n_groups, m.d_state, m.d_inner
    conv = d + 2 * g * n
    return {"u": (b, l, cfg.d_model), "in_proj": (b, l, d + conv + h), "z": (b, l, d), "xBC": (b, l, conv),
            "dt_raw": (b, l, h), "conv1d": (b, l, conv), "silu": (b, l, conv), "x": (b, l, h, p),
            "B": (b, l, g, n), "C": (b, l, g, n), "dt": (b, l, h), "A": (h,), "L": (b, h, l, l),
            "CB": (b, g, l, l), "ssd": (b, l, h, p), "+Dx": (b, l, h, p), "gate": (b, l, d),
            "norm": (b, l, d), "out": (b, l, cfg.d_model)}


def _check(layer: Mamba2Mixer, hidden: Tensor) -> None:
    if not isinstance(layer, Mamba2Mixer):
        raise ConfigError(f"layer: expected a core Mamba2Mixer, got {type(layer).__name__}")
    if not isinstance(hidden, Tensor) or hidden.dim() != 3 or hidden.shape[-1] != layer.d_model:
        got = tuple(hidden.shape) if isinstance(hidden, Tensor) else type(hidden).__name__
        raise ConfigError(f"hidden: expected a tensor (b, l, d_model={layer.d_model}), got {got}")
    if hidden.shape[1] == 0:
        raise ConfigError("hidden: needs at least one token (l >= 1)")


def causal_depthwise_conv(u: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``out[b, t, c] = bias[c] + Σ_k weight[c, k] · u[b, t - (K-1) + k, c]`` with ``u`` zero before
    ``t = 0``: each channel sees only its own last ``K`` inputs (``u (b, l, c)``, ``weight (c, K)``)."""
    K = weight.shape[-1]
    padded = F.pad(u, (0, 0, K - 1, 0))  # K - 1 zeros before the first token: causal
    windows = padded.unfold(1, K, 1)  # (b, l, c, K): the K inputs ending at each t
    out = (windows * weight).sum(-1)
    return out if bias is None else out + bias


def segsum_decay(a: Tensor) -> Tensor:
    """``L[..., i, j] = exp(a[..., j+1] + ... + a[..., i])`` for ``i >= j``, 0 above the diagonal.

    ``a (..., l)`` are log decays per step (``dt A <= 0``) -> ``(..., l, l)``. A masked cumulative sum
    (no difference of two long cumsums, which cancels badly in low precision).
    """
    l = a.shape[-1]
    below = torch.ones(l, l, dtype=torch.bool, device=a.device).tril(-1)
    terms = a.unsqueeze(-1).expand(*a.shape, l).masked_fill(~below, 0.0)  # [i, j] = a_i where i > j
    s = terms.cumsum(-2)  # s[i, j] = a_{j+1} + ... + a_i
    return torch.exp(s).masked_fill(~below.logical_or(torch.eye(l, dtype=torch.bool, device=a.device)), 0.0)


def walk_mamba2(layer: Mamba2Mixer, hidden: Tensor) -> BlockWalk:
    """One forward pass of ``layer`` on ``hidden (b, l, d_model)``, stage by stage (module doc).

    Returns a :class:`BlockWalk` whose stages (in order) are ``u``, ``in_proj``, ``z``, ``xBC``,
    ``dt_raw``, ``conv1d``, ``silu``, ``x``, ``B``, ``C``, ``dt``, ``A``, ``L``, ``CB``, ``ssd``,
    ``+Dx``, ``gate``, ``norm`` and ``out``; ``walk.output (b, l, d_model)`` equals
    ``layer(hidden)`` to float rounding. Shapes, with ``h`` heads of ``p`` channels
    (``d_inner = h p``), ``g`` groups of state size ``n``, ``K = d_conv``:
    ``in_proj (b, l, 2 d_inner + 2 g n + h)``, ``xBC`` and ``conv1d`` and ``silu (b, l, d_inner + 2 g n)``,
    ``x (b, l, h, p)``, ``B``, ``C (b, l, g, n)``, ``dt (b, l, h)``, ``A (h,)``, ``L (b, h, l, l)``,
    ``CB (b, g, l, l)``, ``ssd`` and ``+Dx (b, l, h, p)``, ``gate`` and ``norm (b, l, d_inner)``.
    Computed under ``no_grad`` in ``promote(hidden.dtype, float32)``; raises ``ConfigError``
    naming ``layer`` or ``hidden`` on bad input.
    """
    _check(layer, hidden)
    cfg: MambaConfig = layer.cfg
    h, p, g, n = cfg.n_heads, cfg.head_dim, cfg.n_groups, cfg.d_state
    d_inner, r = cfg.d_inner, cfg.n_heads // cfg.n_groups
    cdt = torch.promote_types(hidden.dtype, torch.float32)
    w = {k: v.detach().to(cdt) if v is not None else None for k, v in layer.named_parameters()}
    w.setdefault("conv1d.bias", None)
    b, l, _ = hidden.shape
    walk = BlockWalk()
    with torch.no_grad():
        u = walk.add("u", "input (after the block's pre-norm)", hidden.to(cdt), "b l d_model")
        zxbcdt = walk.add("in_proj", "u W_inᵀ: one projection for all five", u @ w["in_proj.weight"].T, "b l proj")
        z, xBC, dt_raw = torch.split(zxbcdt, [d_inner, d_inner + 2 * g * n, h], dim=-1)
        walk.add("z", "gate branch", z, "b l d_inner")
        walk.add("xBC", "x, B, C before the conv", xBC, "b l conv")
        walk.add("dt_raw", "one step size per head, before softplus", dt_raw, "b l h")
        conv = walk.add("conv1d", f"causal depthwise conv, window d_conv={cfg.d_conv}",
                        causal_depthwise_conv(xBC, w["conv1d.weight"][:, 0], w["conv1d.bias"]), "b l conv")
        act = walk.add("silu", "silu(conv1d)", F.silu(conv), "b l conv")
        x, B, C = torch.split(act, [d_inner, g * n, g * n], dim=-1)
        x = walk.add("x", f"split into {h} heads x {p}", x.reshape(b, l, h, p), "b l h p")
        B = walk.add("B", f"{g} group(s) x state {n}, shared by {r} heads", B.reshape(b, l, g, n), "b l g n")
        C = walk.add("C", "like B; reads the state out", C.reshape(b, l, g, n), "b l g n")
        dt = F.softplus(dt_raw + w["dt_bias"])
        lo, hi = cfg.dt_limit
        if (lo, hi) != (0.0, math.inf):
            dt = dt.clamp(min=lo, max=hi)
        dt = walk.add("dt", "softplus(dt_raw + dt_bias) > 0", dt, "b l h")
        A = walk.add("A", "-exp(A_log) < 0", -torch.exp(w["A_log"]), "h")
        L = walk.add("L", "exp(dt_{j+1}A + ... + dt_iA), i >= j", segsum_decay((dt * A).transpose(1, 2)), "b h l l")
        CB = walk.add("CB", "C_i · B_j per group (like Q Kᵀ)", torch.einsum("bign,bjgn->bgij", C, B), "b g l l")
        M = CB.repeat_interleave(r, dim=1) * L  # (b, h, l, l): head i reads group i // r
        y = torch.einsum("bhij,bjhp->bihp", M, dt[..., None] * x)
        y = walk.add("ssd", "(L ∘ C Bᵀ)(dt x): the SSD scan", y, "b l h p")
        y = walk.add("+Dx", "ssd + D x (skip)", y + w["D"][:, None] * x, "b l h p")
        gated = walk.add("gate", "y * silu(z)", y.reshape(b, l, d_inner) * F.silu(z), "b l d_inner")
        grouped = gated.reshape(b, l, g, d_inner // g)
        rms = torch.sqrt(grouped.pow(2).mean(-1, keepdim=True) + layer.norm.eps)
        normed = walk.add("norm", f"RMSNorm over {g} group(s) of {d_inner // g}, x weight",
                          (grouped / rms).reshape(b, l, d_inner) * w["norm.weight"], "b l d_inner")
        walk.add("out", "out_proj: back to d_model", normed @ w["out_proj.weight"].T, "b l d_model")
    return walk
