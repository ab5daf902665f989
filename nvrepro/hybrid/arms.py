"""The three arms of the "why a hybrid" comparison: layer patterns and equal parameter counts.

Nemotron-H (arXiv:2504.03624, Sec. 2.1, Table 1) keeps about 8% of its layers as self-attention
and spreads them evenly through a stack of alternating Mamba-2 (``M``) and FFN (``-``) layers:
the 8B model has 24 ``M-`` pairs and 4 ``*``, each ``*`` inserted between a Mamba-2 layer and
its FFN; the first after 4 Mamba-2 layers, then one every 5, and the last 5 pairs have none, so
attention never sits at the end. :func:`nemotron_pattern` states that rule and reproduces the
8B and 56B patterns exactly (tested against ``configs/hybrid/``).

The arms differ in their pattern only: a pure Transformer (``*-`` repeated), a pure Mamba-2
stack (``M`` repeated, no FFN, as the pure-Mamba-2 baseline of Waleffe et al. 2024,
arXiv:2406.07887) and the hybrid. Same ``d_model`` and vocabulary; the parameter counts are made
equal with the layer counts and, for the Transformer, the FFN width (:func:`solve_ffn_width`).
"""

from __future__ import annotations

import dataclasses

from nvrepro.core.lm.config import ModelConfig
from nvrepro.core.lm.info import count_parameters


def nemotron_pattern(n_mamba: int, n_attention: int) -> str:
    """A Nemotron-H layer pattern with ``n_mamba`` ``M-`` pairs and ``n_attention`` ``*`` layers.

    The pairs are cut into ``n_attention + 1`` runs: the last ``n_attention`` runs have
    ``s = round(n_mamba / (n_attention + 1))`` pairs, the first the rest; an attention layer
    follows the Mamba-2 layer that ends each run but the last (before that pair's FFN).
    ``nemotron_pattern(24, 4)`` is the 8B pattern; ``nemotron_pattern(54, 10)`` the 56B one.
    """
    if not (isinstance(n_mamba, int) and n_mamba > 0):
        raise ValueError(f"n_mamba: must be a positive integer, got {n_mamba!r}")
    if not (isinstance(n_attention, int) and n_attention >= 0):
        raise ValueError(f"n_attention: must be a non-negative integer, got {n_attention!r}")
    if n_attention == 0:
        return "M-" * n_mamba
    s = round(n_mamba / (n_attention + 1))
    first = n_mamba - n_attention * s
    if s < 1 or first < 1:
        raise ValueError(f"n_attention: {n_attention} attention layers do not fit evenly among "
                         f"{n_mamba} Mamba-2 layers; need n_mamba >= n_attention + 1")
    runs = [first] + [s] * n_attention
    after = {sum(runs[:i + 1]) for i in range(n_attention)}  # Mamba-2 layers before each '*'
    return "".join("M*-" if i in after else "M-" for i in range(1, n_mamba + 1))


def attention_fraction(pattern: str) -> float:
    """Share of all layers (``M``, ``*`` and ``-``) that are attention: ``count('*') / len``."""
    if not pattern:
        raise ValueError("pattern: must be a non-empty layer pattern")
    return pattern.count("*") / len(pattern)


def attention_positions(pattern: str) -> list[int]:
    """0-based indices of the attention layers, and how many Mamba-2 layers precede each."""
    return [i for i, c in enumerate(pattern) if c == "*"]


def solve_ffn_width(cfg: ModelConfig, target_params: int, multiple: int = 8) -> int:
    """The FFN width (a multiple of ``multiple``) that brings ``cfg`` closest to ``target_params``.

    The parameter count is affine in the FFN width ``f``: ``P(f) = P(0) + f * k`` with
    ``k = n_ffn * d_model * m`` (``m`` = 2 matrices for squared ReLU, 3 for SwiGLU). ``k`` is
    measured by counting ``cfg`` at two widths (:func:`~nvrepro.core.lm.info.count_parameters`),
    so the solver assumes nothing about the FFN's layout; ``f = (target - P(0)) / k``, rounded.
    """
    if "-" not in cfg.pattern:
        raise ValueError(f"pattern: {cfg.pattern!r} has no FFN layer ('-') whose width could be solved for")
    at = {w: count_parameters(dataclasses.replace(cfg, ffn=dataclasses.replace(cfg.ffn, hidden=w)))[0]
          for w in (multiple, 2 * multiple)}
    per_width = (at[2 * multiple] - at[multiple]) / multiple
    base = at[multiple] - multiple * per_width
    width = round((target_params - base) / per_width / multiple) * multiple
    if width < multiple:
        raise ValueError(f"target_params: {target_params:,} is below the {int(base + multiple * per_width):,} "
                         f"parameters of {cfg.pattern!r} at the narrowest FFN width {multiple}")
    return int(width)


def parameter_table(configs: dict[str, ModelConfig]) -> dict[str, dict]:
    """Per arm: ``params`` (total), ``by_type`` (breakdown), ``pattern``, ``layers`` by kind,
    ``attention_fraction`` and ``relative`` (params / the mean over arms)."""
    rows = {}
    for arm, cfg in configs.items():
        total, by_type = count_parameters(cfg)
        rows[arm] = {"params": total, "by_type": by_type, "pattern": cfg.pattern,
                     "layers": {"mamba": cfg.count("M"), "attention": cfg.count("*"), "ffn": cfg.count("-")},
                     "attention_fraction": attention_fraction(cfg.pattern)}
    mean = sum(r["params"] for r in rows.values()) / len(rows)
    for r in rows.values():
        r["relative"] = r["params"] / mean
    return rows
