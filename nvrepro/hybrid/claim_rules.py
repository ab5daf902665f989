"""How the hybrid track's claims are decided: three-valued comparisons and their combination.

Every claim of the track is a :class:`~nvrepro.core.tooling.claims.Claim` in its notebook's
experiment module; its predicate builds the parts of the claim with the rules here and joins
them with :func:`all_parts`. A part is a :class:`~nvrepro.core.tooling.claims.Judgement`:

* ``True``: the data support it (an interval clears the bar, a test rejects the opposite);
* ``False``: the data support the opposite;
* ``None``: not separated (an interval straddles the bar, too few repeats) or not applicable.

Rules, each on the evidence its kind of number allows:

* exact properties (bytes, float64 equivalence, closed forms): plain booleans, no interval;
* proportions and means: :class:`~nvrepro.core.tooling.intervals.Estimate` s compared with
  :func:`at_least_threshold`, :func:`at_least_estimate` and :func:`beats`, which add a ``False``
  side to the one-sided comparisons of :mod:`nvrepro.core.tooling.claims`;
* wall-clock timings: :func:`faster` (and :func:`exceeds` for ratios of them), a one-sided exact
  Mann-Whitney U test on the timed repeats.
  A handful of repeats (3-7) with outliers from other processes is too few for a bootstrap interval
  to mean much; the rank test needs no distribution and states exactly how likely the observed
  ordering is by chance (3 vs 3 repeats completely separated: p = 1/20).

(Kept in the track, not in ``nvrepro.core.tooling.claims``, because core is not edited here; the
timing rule is a candidate for core.)
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping, Sequence

from scipy import stats

from nvrepro.core.tooling.claims import Judgement, at_least, better
from nvrepro.core.tooling.intervals import Estimate

ALPHA = 0.05  # one-sided level of the timing test (95% intervals elsewhere)
_WORD = {True: "held", False: "did not hold", None: "undecided"}


def all_parts(parts: Mapping[str, Judgement], *, evidence: Mapping | None = None) -> Judgement:
    """The conjunction of named parts, three-valued: ``False`` if any part is ``False``, else
    ``None`` if any is ``None``, else ``True``. The reason names the parts that decided it;
    the evidence holds every part (its verdict, reason and evidence) plus ``evidence``."""
    verdicts = [p.held for p in parts.values()]
    held = False if False in verdicts else None if None in verdicts else True
    deciding = [name for name, p in parts.items() if p.held is held] if held is not True else list(parts)
    reason = f"{_WORD[held]}: " + "; ".join(f"{name} ({parts[name].reason})" for name in deciding)
    return Judgement(held, reason, {**(evidence or {}), "parts": {n: p.to_dict() for n, p in parts.items()}})


def exact(held: bool, reason: str, **evidence) -> Judgement:
    """A part decided exactly (no noise to allow for): ``held`` as a plain bool."""
    return Judgement(bool(held), reason, evidence)


def not_applicable(reason: str) -> Judgement:
    """A part that this run cannot decide (e.g. the measurement it needs was not taken)."""
    return Judgement(None, reason)


def at_least_threshold(estimate: Estimate, threshold: float, what: str) -> Judgement:
    """"``estimate`` >= ``threshold``": ``True`` when its whole interval lies above the threshold,
    ``False`` when it lies below, ``None`` when it straddles it."""
    held = True if estimate.above(threshold) else False if estimate.below(threshold) else None
    return Judgement(held, f"{what} {estimate} vs {threshold:g}",
                     {"estimate": estimate, "threshold": threshold})


def at_least_estimate(a: Estimate, b: Estimate, what: str, margin: float = 0.0) -> Judgement:
    """"``a`` is at least ``b`` (less ``margin``)": ``True`` by
    :func:`~nvrepro.core.tooling.claims.at_least` (``a``'s whole interval at or above ``b``'s
    estimate less ``margin``), ``False`` when ``a``'s whole interval lies below that level,
    ``None`` otherwise."""
    level = b.value - margin
    held = True if at_least(a, b, margin) else False if a.high < level else None
    return Judgement(held, f"{what}: {a} vs {level:.3f}", {"a": a, "b": b, "margin": margin})


def beats(a: Estimate, b: Estimate, what: str) -> Judgement:
    """"``a`` beats ``b``": ``True`` by :func:`~nvrepro.core.tooling.claims.better` (the intervals
    do not overlap, ``a`` above), ``False`` when ``b``'s interval lies wholly above ``a``'s,
    ``None`` when they overlap."""
    held = True if better(a, b) else False if better(b, a) else None
    return Judgement(held, f"{what}: {a} vs {b}", {"a": a, "b": b})


def exceeds(high: Sequence[float], low: Sequence[float], what: str, factor: float = 1.0,
            alpha: float = ALPHA) -> Judgement:
    """"``high`` is larger than ``factor`` x ``low``", from repeated measurements of each (any
    counts >= 1; e.g. timed repeats, or per-round speed-up ratios at two contexts).

    A one-sided exact Mann-Whitney U test of ``high`` against ``factor * low``: ``True`` when
    ``p <= alpha`` for "larger", ``False`` when ``p <= alpha`` for "smaller", ``None`` otherwise
    (1 or 2 values each can never reach p <= 0.05). Under the null the values are exchangeable;
    the test uses ranks only, so one outlier from a busy machine costs one rank.
    """
    scaled = [factor * v for v in low]
    if not scaled or not high:
        return not_applicable(f"{what}: no measurements")
    p_greater = float(stats.mannwhitneyu(high, scaled, alternative="greater", method="exact").pvalue)
    p_less = float(stats.mannwhitneyu(high, scaled, alternative="less", method="exact").pvalue)
    held = True if _significant(p_greater, alpha) else False if _significant(p_less, alpha) else None
    ratio = _median(high) / _median(low)
    evidence = {"median_ratio": ratio, "factor": factor, "p_greater": p_greater, "p_less": p_less,
                "alpha": alpha, "n_high": len(high), "n_low": len(low),
                "test": "one-sided exact Mann-Whitney U"}
    return Judgement(held, f"{what}: median ratio {ratio:.3g}x vs {factor:g}x, p = {p_greater:.3g} "
                           f"({len(high)} vs {len(low)} values)", evidence)


def faster(fast: Sequence[float], slow: Sequence[float], what: str, factor: float = 1.0) -> Judgement:
    """"``fast`` takes less than ``1/factor`` of ``slow``'s time" from the timed repeats of each
    (seconds; ``factor`` 3: "at least 3x as fast"): :func:`exceeds` of ``slow`` over ``fast``."""
    return exceeds(slow, fast, what, factor)


def _significant(p: float, alpha: float) -> bool:
    return p <= alpha or math.isclose(p, alpha, rel_tol=1e-9)


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def recorded_judgement(png: str | Path) -> dict:
    """The judgement a figure's sidecar recorded (``<name>.json`` next to ``png``)."""
    return json.loads(Path(png).with_suffix(".json").read_text())["judgement"]


def format_judgement(judgement: Mapping) -> str:
    """A judgement's plain-data form (:meth:`Judgement.to_dict`) as printed lines: the verdict
    and its reason, or, for a judgement of several parts (:func:`all_parts`), one line per part."""
    verdict = f"claim {_WORD[judgement['held']].upper()}"
    parts = judgement.get("evidence", {}).get("parts", {})
    if not parts:
        return f"{verdict}: {judgement['reason']}"
    return "\n".join([f"{verdict}, part by part:"]
                     + [f"  {_WORD[p['held']]:>12}: {name}: {p['reason']}" for name, p in parts.items()])
