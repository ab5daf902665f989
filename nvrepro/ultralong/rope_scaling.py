"""Notebook 01 (``notebooks/ultralong/01_rope_scaling.ipynb``): RoPE scalings compared per channel
pair at UltraLong-8B-1M's setting. Closed forms only, no training, so both profiles draw the same
figure.

The experiment's shape: :data:`PROFILES`, :func:`run` (plain data: :func:`rope_scaling_table` and
:func:`rope_summary`), :func:`summary_text` (what the notebook prints), the claim its figure tests
(:data:`ROPE_SCALING`, exact checks on the closed forms: no intervals) and its plot
(:mod:`nvrepro.ultralong.figures`, notebook 01's section).

Per channel pair ``i`` and per method: the inverse frequency ``w'_i``, the wavelength, the
interpolation ratio ``w'_i / w_i``, and the **unseen-angle fraction**: the part of the circle
that pair ``i`` sweeps at the extended length ``sL`` but never swept within the original ``L``,

    unseen_i = max(0, min(sL w'_i, 2 pi) - min(L w_i, 2 pi)) / (2 pi).

A pair that turned at least once in training has seen every angle (0); a slow pair that never
completed a turn sees new angles when positions grow past ``L`` unless it is interpolated. This
is the argument of YaRN Sec. 3.2 ("NTK-by-parts") for interpolating exactly those pairs.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from nvrepro.core.lm.config import AttentionConfig, model_config_from_yaml
from nvrepro.core.lm.layers.rope_scaling import rotations, scaled_rope, wavelengths
from nvrepro.core.tooling.claims import Claim, Judgement
from nvrepro.core.tooling.paths import CONFIGS_DIR
from nvrepro.core.tooling.claims import all_parts
from nvrepro.core.tooling.profiles import profile_settings
from nvrepro.ultralong.judging import part
from nvrepro.core.tooling.report import table_text

METHODS = ("none", "linear", "ntk", "yarn")
METHOD_LABELS = {"none": "none (extrapolate)", "linear": "PI (linear)", "ntk": "NTK-aware",
                 "yarn": "YaRN", "llama3": "Llama-3.1 (llama3)"}
# The setting studied: UltraLong-8B-1M's attention config (its s and L are the paper's).
CONFIG = CONFIGS_DIR / "ultralong" / "ultralong_8b_1m.yaml"
# Closed forms, no training: both profiles compute the same table from the same config.
PROFILES = {"smoke": {"config": CONFIG.name}, "paper": {"config": CONFIG.name}}


def ultralong_attention(config: str = CONFIG.name) -> AttentionConfig:
    """The attention config of ``configs/ultralong/<config>`` (default UltraLong-8B-1M's)."""
    return model_config_from_yaml(CONFIGS_DIR / "ultralong" / config).attention


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


def run(profile: str = "smoke", seed: int = 0) -> dict:
    """The per-pair table and its summary at the profile's setting: ``{"table":
    rope_scaling_table(...), "summary": rope_summary(table)}``. ``seed`` changes nothing (closed
    forms); it is there for the experiment shape every notebook shares."""
    a = ultralong_attention(profile_settings(PROFILES, profile)["config"])
    table = rope_scaling_table(a.head_dim, a.rope_theta, a.rope_factor, a.rope_original_max_len, a.rope_alpha,
                               a.rope_beta)
    return {"table": table, "summary": rope_summary(table)}


def summary_text(result: dict) -> str:
    """One line per method of ``result["summary"]`` (:func:`run`; what the notebook prints)."""
    return table_text(result["summary"], [("w0 ratio", "fastest_ratio", ".4g"), ("w_last ratio", "slowest_ratio", ".4g"),
                                          ("kept", "unchanged_pairs", "d"), ("squeezed", "interpolated_pairs", "d"),
                                          ("max unseen", "max_unseen", ".3f"), ("attn factor", "attention_factor", ".3f")],
                      first="method", labels=METHOD_LABELS, first_width=20)


def judge_rope_scaling(metrics: Mapping[str, Any]) -> Judgement:
    """The closed-form facts of :data:`ROPE_SCALING`, each an exact check (floats compared with
    ``math.isclose`` where a formula is recomputed) on ``metrics = {"summary", "table"}``: the
    table's config gives ``s`` and ``beta``, its ``rotations`` the pairs turning more than ``beta``
    times within ``L``. Deterministic: no intervals."""
    summary, table = metrics["summary"], metrics["table"]
    s, beta = table["config"]["factor"], table["config"]["beta"]
    above_beta = sum(r > beta for r in table["rotations"])
    checks = {
        "none: unseen angles on slow pairs": summary["none"]["max_unseen"] > 0,
        "PI: no unseen angles": summary["linear"]["max_unseen"] == 0,
        "PI: fastest pair squeezed by s": math.isclose(summary["linear"]["fastest_ratio"], 1 / s),
        "NTK: fastest pair kept": summary["ntk"]["fastest_ratio"] == 1,
        "NTK: some unseen angles remain": summary["ntk"]["max_unseen"] > 0,
        "YaRN: pairs above beta kept": summary["yarn"]["unchanged_pairs"] == above_beta > 0,
        "YaRN: no unseen angles": summary["yarn"]["max_unseen"] == 0,
        "YaRN: attention factor 0.1 ln s + 1": math.isclose(summary["yarn"]["attention_factor"], 0.1 * math.log(s) + 1),
    }
    return all_parts({name: part(ok, "exact") for name, ok in checks.items()},
                     evidence=dict(pairs_above_beta=above_beta))


ROPE_SCALING = Claim(
    "rope_scaling",
    "At UltraLong-8B-1M's RoPE setting, no scaling leaves slow pairs sweeping unseen angles; PI removes them but "
    "squeezes every pair by s; NTK-aware keeps the fastest pair but still leaves unseen angles; YaRN keeps the pairs "
    "turning more than beta times, leaves no unseen angles, and sharpens attention.",
    judge_rope_scaling)
