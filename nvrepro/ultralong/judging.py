"""How the UltraLong claims are decided from a figure's metrics: the rules the predicates of
:mod:`~nvrepro.ultralong.rope_scaling`, :mod:`~nvrepro.ultralong.context_extension` and
:mod:`~nvrepro.ultralong.ablations` share.

A claim is a list of named **parts** (:func:`part`), each held, not held or undecided, with the
estimates it was decided on; core's :func:`~nvrepro.core.tooling.claims.all_parts` combines them
(every part held -> held; any part not held -> not held; otherwise undecided) into the
:class:`~nvrepro.core.tooling.claims.Judgement` whose evidence the sidecar records.

* **Accuracy at ``s L``**: the probes of every depth (passkey) or every task (RULER-style) at the
  extended length, pooled into one proportion with Wilson's interval (:func:`probes_at_sL`); over
  the training seeds too for notebook 02's headline (:func:`pooled_at_sL`). A
  heatmap cell holds only ``samples`` probes (2 in the paper profile), far too few for an
  interval of its own.
* **Losses of two models on the same text** (the same packed blocks, the same instruction probes)
  are compared **paired**: :func:`~nvrepro.core.tooling.intervals.paired_gain` is the bootstrap mean over the shared units of
  ``factor * other - this``, the amount by which ``this`` model's loss is lower. Pairing removes the
  block-to-block spread of the text itself, which both models share; two unpaired intervals would
  overlap for a difference the pairs show plainly. "At most" / "within" holds when the gain's whole
  interval is at or above 0 (:func:`not_worse`; :func:`non_inferior` adds "not held" when it lies
  wholly below 0, for notebook 03's claim, whose margin is the gain's ``factor``), "below" /
  "drops" when it is above 0 (:func:`lower`). Fewer than two units give no interval: the part is
  undecided.
"""

from __future__ import annotations

from typing import Any, Mapping

from nvrepro.core.tooling.claims import Judgement
from nvrepro.core.tooling.intervals import Estimate, wilson


def probes_at_sL(row: Mapping[str, Any], *kinds: str) -> Estimate:
    """Share of the probes of ``kinds`` (``"niah"``, ``"ruler"``) answered at ``s L``, pooled, with
    Wilson's interval, from a summary row's ``<kind>_correct_at_sL`` / ``<kind>_probes_at_sL``."""
    return wilson(sum(row[f"{k}_correct_at_sL"] for k in kinds), sum(row[f"{k}_probes_at_sL"] for k in kinds))


def pooled_at_sL(headline: Mapping[str, Any], method: str) -> dict:
    """The probes of ``method`` answered and asked at ``s L``, summed over the seeds of ``headline``
    (``{method: [per seed: counts]}``, :func:`nvrepro.ultralong.context_extension.run`), in the keys
    :func:`probes_at_sL` reads."""
    rows = headline[method]
    return {k: sum(r[k] for r in rows) for k in ("niah_correct_at_sL", "niah_probes_at_sL", "ruler_correct_at_sL",
                                                 "ruler_probes_at_sL")}


def not_worse(gain: Estimate | None) -> bool | None:
    """"At most" on a :func:`paired_gain`: its whole interval is at or above 0 (``None``: no interval)."""
    return None if gain is None else gain.low >= 0.0


def non_inferior(gain: Estimate | None) -> bool | None:
    """Three-valued "at most" on a :func:`paired_gain` (whose ``factor`` carries any margin): held
    when its whole interval is at or above 0, not held when it lies wholly below 0, undecided when
    it straddles 0 or there is no interval (``None``)."""
    if gain is None:
        return None
    return True if gain.low >= 0.0 else False if gain.high < 0.0 else None


def lower(gain: Estimate | None) -> bool | None:
    """"Below" on a :func:`paired_gain`: its whole interval is above 0 (``None``: no interval)."""
    return None if gain is None else gain.above(0.0)


def part(held: bool | None, rule: str, **estimates: Any) -> Judgement:
    """One part of a claim (a :class:`Judgement`): whether it ``held`` (``None``: undecided), the
    ``rule`` it was decided by (its reason) and the estimates or numbers it used. Parts combine
    with core's :func:`~nvrepro.core.tooling.claims.all_parts`. The reason is the rule followed
    by the numbers, so a printed verdict (or the README gallery) shows what decided it."""
    numbers = "; ".join(f"{name} {_short(value)}" for name, value in estimates.items())
    return Judgement(held, f"{rule}: {numbers}" if numbers else rule, estimates)


def _short(value: Any) -> str:
    if value is None:
        return "n/a (fewer than 2 units)"
    if isinstance(value, Estimate):
        return f"{value.value:.4g} [{value.low:.4g}, {value.high:.4g}] (n={value.n})"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
