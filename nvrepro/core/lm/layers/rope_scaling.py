"""RoPE scaling: stretch a model's rotary positions to a context ``s`` times longer.

Every method returns ``(inv_freq, attention_factor)``: the ``head_dim/2`` inverse frequencies
``w_i`` (the angle of channel pair ``i`` at position ``m`` is ``m * w_i``) and a factor that
multiplies the rotated queries *and* keys -- HF transformers multiplies ``cos`` and ``sin`` by it,
which is the same thing -- so the attention logits are multiplied by ``attention_factor ** 2``.

Notation (YaRN, Peng et al. 2023, arXiv:2309.00071, Sec. 3): base ``theta``, head dimension ``D``,
``w_i = theta^(-2i/D)``, wavelength ``lambda_i = 2 pi / w_i``, original context ``L``, scale
``s = L' / L``, and the number of full rotations a pair makes over the original context
``r_i = L / lambda_i`` (large for fast, high-frequency pairs; below 1 for slow ones).

* ``none``: ``w_i`` unchanged; positions past ``L`` give angles never seen in training.
* ``linear`` -- position interpolation (PI, Chen et al. 2023, arXiv:2306.15595): ``w_i / s``
  for every pair; also squeezes the fast pairs that resolve neighbouring tokens.
* ``ntk`` -- "NTK-aware" (bloc97 2023; YaRN Sec. 3.1): a new base
  ``theta' = theta * s^(D/(D-2))``: the slowest pair is interpolated by exactly ``s``, the fastest
  is barely touched. Static: HF's ``dynamic`` type with ``factor=1`` at length ``s L`` gives the
  same frequencies (that is how the tests compare).
* ``yarn`` -- "NTK-by-parts" plus attention temperature (YaRN Sec. 3.2-3.4):
  ``w'_i = (1 - g_i) w_i / s + g_i w_i`` with a ramp ``g_i`` equal to 1 (keep: pair ``i`` turns more
  than ``beta`` times within ``L``) down to 0 (interpolate by ``s``: fewer than ``alpha`` turns),
  and ``attention_factor = 0.1 ln s + 1`` (the paper's ``sqrt(1/t)``).
  The ramp is linear in the pair index ``i`` between ``floor(i(beta))`` and ``ceil(i(alpha))``,
  ``i(r) = D ln(L / (2 pi r)) / (2 ln theta)`` (the index where ``r_i = r``), as in the YaRN
  reference code and HF; the paper writes it as linear in ``r``.
* ``llama3`` -- Llama-3.1's own variant: the same three regions and ``alpha``/``beta``, but the
  ramp is linear in ``r`` (``g = (r - alpha) / (beta - alpha)``) and there is no temperature.
  Llama-3.1-8B ships with it (``s = 8``, ``alpha = 1``, ``beta = 4``, ``L = 8192``).

Names (map them carefully): the paper's ``alpha`` / ``beta`` are HF's ``beta_slow`` /
``beta_fast`` for ``yarn`` and ``low_freq_factor`` / ``high_freq_factor`` for ``llama3``;
``s`` is HF's ``factor``; ``L`` is ``original_max_position_embeddings``.

All arithmetic is float64 (HF computes in float32; the tests allow for that).
"""

from __future__ import annotations

import math

import torch

from nvrepro.core.lm.config import ROPE_SCALINGS, ConfigError
from nvrepro.core.lm.layers.rope import rope_inv_freq

YARN_DEFAULT_ALPHA, YARN_DEFAULT_BETA = 1.0, 32.0  # YaRN Sec. 3.2, recommended for LLaMA


def yarn_attention_factor(factor: float) -> float:
    """YaRN's ``sqrt(1/t) = 0.1 ln s + 1`` (Sec. 3.4); 1 for ``s <= 1``."""
    return 1.0 if factor <= 1 else 0.1 * math.log(factor) + 1.0


def rotations(inv_freq: torch.Tensor, original_max_len: int) -> torch.Tensor:
    """``r_i = L / lambda_i = L w_i / (2 pi)``: full turns of each pair over the original context."""
    return original_max_len * inv_freq.double() / (2 * math.pi)


def ntk_base(theta: float, head_dim: int, factor: float) -> float:
    """NTK-aware base ``theta * s^(D / (D - 2))`` (YaRN Eq. 16)."""
    return theta * factor ** (head_dim / (head_dim - 2))


def _pair_index_of_rotations(r: float, head_dim: int, theta: float, original_max_len: int) -> float:
    """The (fractional) pair index ``i`` where ``r_i = r``: ``D ln(L / (2 pi r)) / (2 ln theta)``."""
    return head_dim * math.log(original_max_len / (2 * math.pi * r)) / (2 * math.log(theta))


def yarn_ramp(head_dim: int, theta: float, original_max_len: int, alpha: float = YARN_DEFAULT_ALPHA,
              beta: float = YARN_DEFAULT_BETA, truncate: bool = True, device=None) -> torch.Tensor:
    """YaRN's per-pair ramp ``g_i`` ``(head_dim/2,)`` float64: 1 = keep ``w_i``, 0 = divide by ``s``.

    Linear in the pair index between ``low = i(beta)`` and ``high = i(alpha)`` (floored / ceiled
    when ``truncate``, as HF and the YaRN code do), clamped to ``[0, head_dim - 1]``.
    """
    low = _pair_index_of_rotations(beta, head_dim, theta, original_max_len)
    high = _pair_index_of_rotations(alpha, head_dim, theta, original_max_len)
    if truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, head_dim - 1)
    if low == high:
        high += 0.001  # avoid 0/0 (HF does the same)
    i = torch.arange(head_dim // 2, dtype=torch.float64, device=device)
    interpolate = ((i - low) / (high - low)).clamp(0.0, 1.0)  # 0 at fast pairs, 1 at slow pairs
    return 1.0 - interpolate


def llama3_ramp(inv_freq: torch.Tensor, original_max_len: int, alpha: float, beta: float) -> torch.Tensor:
    """Llama-3.1's ramp ``g_i = clamp((r_i - alpha) / (beta - alpha), 0, 1)``, linear in rotations."""
    r = rotations(inv_freq, original_max_len)
    return ((r - alpha) / (beta - alpha)).clamp(0.0, 1.0)


def scaled_rope(head_dim: int, theta: float, scaling: str = "none", factor: float = 1.0,
                original_max_len: int | None = None, alpha: float = YARN_DEFAULT_ALPHA,
                beta: float = YARN_DEFAULT_BETA, attention_factor: float | None = None,
                truncate: bool = True, device=None) -> tuple[torch.Tensor, float]:
    """``(inv_freq (head_dim/2,) float64, attention_factor)`` of one scaling method.

    ``scaling`` is one of ``none``, ``linear``, ``ntk``, ``yarn``, ``llama3`` (module docstring);
    ``factor`` is ``s``; ``original_max_len`` (``L``) is needed by ``yarn`` and ``llama3``;
    ``alpha``/``beta`` bound their ramps; ``attention_factor`` overrides the default
    (``0.1 ln s + 1`` for ``yarn``, 1 otherwise).
    """
    if scaling not in ROPE_SCALINGS:
        raise ConfigError(f"rope_scaling: unknown method {scaling!r}; allowed: {', '.join(ROPE_SCALINGS)}")
    if head_dim % 2 or head_dim <= 2:
        raise ConfigError(f"head_dim: must be even and > 2 for RoPE, got {head_dim}")
    if not factor >= 1:
        raise ConfigError(f"rope_factor: the scale s must be >= 1, got {factor}")
    base = rope_inv_freq(head_dim, theta, device=device)
    default_attn = 1.0
    if scaling == "none":
        inv = base
    elif scaling == "linear":
        inv = base / factor
    elif scaling == "ntk":
        inv = rope_inv_freq(head_dim, ntk_base(theta, head_dim, factor), device=device)
    else:
        if not (isinstance(original_max_len, int) and original_max_len > 0):
            raise ConfigError(f"rope_original_max_len: {scaling} needs the original context length "
                              f"(a positive integer), got {original_max_len!r}")
        if not 0 < alpha < beta:
            raise ConfigError(f"rope_alpha: need 0 < rope_alpha < rope_beta, got {alpha} and {beta}")
        if scaling == "yarn":
            keep = yarn_ramp(head_dim, theta, original_max_len, alpha, beta, truncate, device)
            default_attn = yarn_attention_factor(factor)
        else:
            keep = llama3_ramp(base, original_max_len, alpha, beta)
        inv = (1.0 - keep) * base / factor + keep * base
    if attention_factor is not None and not attention_factor > 0:
        raise ConfigError(f"rope_attention_factor: must be > 0 or None, got {attention_factor}")
    return inv, float(default_attn if attention_factor is None else attention_factor)


def scaled_rope_from_config(cfg, device=None) -> tuple[torch.Tensor, float]:
    """:func:`scaled_rope` with the fields of an :class:`~nvrepro.core.lm.config.AttentionConfig`."""
    return scaled_rope(cfg.head_dim, cfg.rope_theta, cfg.rope_scaling, cfg.rope_factor,
                       cfg.rope_original_max_len, cfg.rope_alpha, cfg.rope_beta,
                       cfg.rope_attention_factor, device=device)


def wavelengths(inv_freq: torch.Tensor) -> torch.Tensor:
    """``lambda_i = 2 pi / w_i`` in tokens, ``(head_dim/2,)``."""
    return 2 * math.pi / inv_freq.double()
