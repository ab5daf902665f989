"""How the UltraLong claims are decided from a figure's metrics: the rules the predicates of
:mod:`~nvrepro.ultralong.rope_scaling`, :mod:`~nvrepro.ultralong.context_extension` and
:mod:`~nvrepro.ultralong.ablations` share.

A claim is a list of named **parts** (``part``), each held, not held or undecided, with the
estimates it was decided on; :func:`verdict` combines them (every part held -> held; any part not
held -> not held; otherwise undecided) into the :class:`~nvrepro.core.tooling.claims.Judgement`
whose evidence the sidecar records.

* **Accuracy at ``s L``**: the probes of every depth (passkey) or every task (RULER-style) at the
  extended length, pooled into one proportion with Wilson's interval (:func:`probes_at_sL`). A
  heatmap cell holds only ``samples`` probes (2 in the paper profile), far too few for an
  interval of its own.
* **Losses of two models on the same text** (the same packed blocks, the same instruction probes)
  are compared **paired**: :func:`paired_gain` is the bootstrap mean over the shared units of
  ``factor * other - this``, the amount by which ``this`` model's loss is lower. Pairing removes the
  block-to-block spread of the text itself, which both models share; two unpaired intervals would
  overlap for a difference the pairs show plainly. "At most" / "within" holds when the gain's whole
  interval is at or above 0 (:func:`not_worse`), "below" / "drops" when it is above 0
  (:func:`lower`). Fewer than two units give no interval: the part is undecided.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from nvrepro.core.tooling.claims import Judgement
from nvrepro.core.tooling.intervals import Estimate, bootstrap_mean, wilson

# Seed of every bootstrap resampling: the same metrics always give the same interval.
BOOTSTRAP_SEED = 0


def probes_at_sL(row: Mapping[str, Any], *kinds: str) -> Estimate:
    """Share of the probes of ``kinds`` (``"niah"``, ``"ruler"``) answered at ``s L``, pooled, with
    Wilson's interval, from a summary row's ``<kind>_correct_at_sL`` / ``<kind>_probes_at_sL``."""
    return wilson(sum(row[f"{k}_correct_at_sL"] for k in kinds), sum(row[f"{k}_probes_at_sL"] for k in kinds))


def paired_gain(this: Sequence[float], other: Sequence[float], factor: float = 1.0) -> Estimate | None:
    """Bootstrap mean of ``factor * other[i] - this[i]`` over paired units ``i`` (blocks, probes:
    both ``(n,)``); positive means ``this`` is lower. ``None`` for fewer than two units."""
    if len(this) != len(other):
        raise ValueError(f"this, other: paired values need equal lengths, got {len(this)} and {len(other)}")
    if len(this) < 2:
        return None
    return bootstrap_mean([factor * b - a for a, b in zip(this, other)], seed=BOOTSTRAP_SEED)


def not_worse(gain: Estimate | None) -> bool | None:
    """"At most" on a :func:`paired_gain`: its whole interval is at or above 0 (``None``: no interval)."""
    return None if gain is None else gain.low >= 0.0


def lower(gain: Estimate | None) -> bool | None:
    """"Below" on a :func:`paired_gain`: its whole interval is above 0 (``None``: no interval)."""
    return None if gain is None else gain.above(0.0)


def part(held: bool | None, rule: str, **estimates: Any) -> dict[str, Any]:
    """One part of a claim: whether it ``held`` (``None``: undecided), the ``rule`` it was
    decided by, and the estimates (or numbers) it used."""
    return {"held": held, "rule": rule, **estimates}


def verdict(parts: Mapping[str, Mapping[str, Any]], **evidence: Any) -> Judgement:
    """The :class:`Judgement` of a claim made of ``parts`` (name -> :func:`part`): held when every
    part held, not held when any did not, undecided otherwise; ``evidence`` adds thresholds."""
    failed = [name for name, p in parts.items() if p["held"] is False]
    open_ = [name for name, p in parts.items() if p["held"] is None]
    if failed:
        held, reason = False, "did not hold: " + "; ".join(failed)
    elif open_:
        held, reason = None, "undecided (too few units for an interval): " + "; ".join(open_)
    else:
        held, reason = True, "every part held"
    return Judgement(held, reason, {"parts": dict(parts), **evidence})
