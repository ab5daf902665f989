"""What the UltraLong notebooks call. Each function returns plain data (lists, floats).

Notebook 01 (RoPE scaling explained) uses :func:`rope_scaling_table` and :func:`rope_summary`:
per channel pair ``i`` and per method, the inverse frequency ``w'_i``, the wavelength, the
interpolation ratio ``w'_i / w_i``, and the **unseen-angle fraction**: the part of the circle
that pair ``i`` sweeps at the extended length ``sL`` but never swept within the original ``L``,

    unseen_i = max(0, min(sL w'_i, 2 pi) - min(L w_i, 2 pi)) / (2 pi).

A pair that turned at least once in training has seen every angle (0); a slow pair that never
completed a turn sees new angles when positions grow past ``L`` unless it is interpolated. This
is the argument of YaRN Sec. 3.2 ("NTK-by-parts") for interpolating exactly those pairs.
"""

from __future__ import annotations

import math

from nvrepro.core.lm.layers.rope_scaling import rotations, scaled_rope, wavelengths

METHODS = ("none", "linear", "ntk", "yarn")
METHOD_LABELS = {"none": "none (extrapolate)", "linear": "PI (linear)", "ntk": "NTK-aware",
                 "yarn": "YaRN", "llama3": "Llama-3.1 (llama3)"}


def unseen_angle_fraction(inv_freq, base_inv_freq, factor: float, original_max_len: int) -> list[float]:
    """Per pair: the fraction of the circle swept at ``s L`` with ``inv_freq`` but not at ``L``
    with ``base_inv_freq`` (module docstring)."""
    two_pi = 2 * math.pi
    out = []
    for w_new, w in zip(inv_freq.tolist(), base_inv_freq.tolist()):
        seen = min(original_max_len * w, two_pi)
        reach = min(factor * original_max_len * w_new, two_pi)
        out.append(max(0.0, reach - seen) / two_pi)
    return out


def rope_scaling_table(head_dim: int, theta: float, factor: float, original_max_len: int,
                       alpha: float = 1.0, beta: float = 32.0, methods=METHODS) -> dict:
    """Per-method, per-pair frequencies for one setting (see the module docstring).

    Returns ``{"config": {...}, "rotations": [r_i], "methods": {method: {"inv_freq",
    "wavelength", "ratio", "unseen", "attention_factor"}}}`` (lists of ``head_dim/2`` floats).
    """
    base, _ = scaled_rope(head_dim, theta)
    out = {"config": dict(head_dim=head_dim, theta=theta, factor=factor, original_max_len=original_max_len,
                          alpha=alpha, beta=beta),
           "rotations": rotations(base, original_max_len).tolist(), "methods": {}}
    for method in methods:
        inv, attn = scaled_rope(head_dim, theta, method, factor if method != "none" else 1.0,
                                original_max_len, alpha=alpha, beta=beta)
        out["methods"][method] = {
            "inv_freq": inv.tolist(),
            "wavelength": wavelengths(inv).tolist(),
            "ratio": (inv / base).tolist(),
            "unseen": unseen_angle_fraction(inv, base, factor, original_max_len),
            "attention_factor": attn,
        }
    return out


def rope_summary(table: dict, rtol: float = 1e-9) -> dict:
    """Headline numbers per method: the ratio ``w'/w`` of the fastest and slowest pair, how many
    pairs are unchanged (ratio 1) and fully interpolated (ratio 1/s), the largest unseen-angle
    fraction, and the attention factor."""
    s = table["config"]["factor"]
    out = {}
    for method, m in table["methods"].items():
        ratio = m["ratio"]
        out[method] = {
            "fastest_ratio": ratio[0],
            "slowest_ratio": ratio[-1],
            "unchanged_pairs": sum(abs(r - 1) <= rtol for r in ratio),
            "interpolated_pairs": sum(abs(r * s - 1) <= rtol for r in ratio),
            "max_unseen": max(m["unseen"]),
            "attention_factor": m["attention_factor"],
        }
    return out
