"""A claim's text and its predicate in one object, so the figure's sidecar and the tests agree.

A paper module states each claim once::

    RECALL = Claim(
        "why_hybrid_recall",
        "The hybrid recalls key-value pairs at least as well as pure Mamba-2 ...",
        judge_recall,            # metrics dict -> Judgement
    )

and the notebook saves the figure with ``save_figure(..., metrics=m, claim=RECALL)``: the sidecar
then records the text, ``held``, the judgement's evidence (the intervals it was decided on, with
their numbers of examples) and where the claim lives (``claim_id``, ``module:attribute``). A test
(``tests/test_figures_of_record.py``) imports every committed sidecar's claim and re-judges it from
the sidecar's own metrics, so a threshold changed in code without a new run, or a sidecar edited
by hand, fails.

Judging on intervals (brief: "a toy claim is judged on its confidence interval"): a predicate
builds :class:`~nvrepro.core.tooling.intervals.Estimate` s from the counts in the metrics and says a
comparison holds only when the intervals support it; :func:`at_least`, :func:`above` and
:func:`below` are the comparisons claims use. Thresholds live in the predicate's module, in code,
never in a notebook.
"""

from __future__ import annotations

import importlib
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from scipy import stats

from nvrepro.core.tooling.intervals import Estimate


@dataclass(frozen=True)
class Judgement:
    """The verdict on one claim for one run: ``held`` (``None``: undecided, e.g. a prerequisite
    of the claim was not met) with the ``evidence`` it rests on (plain data for the sidecar:
    estimates as dicts, thresholds) and a one-line ``reason``."""

    held: bool | None
    reason: str
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"held": self.held, "reason": self.reason, "evidence": _plain(self.evidence)}


def _plain(obj: Any) -> Any:
    if isinstance(obj, Estimate):
        return obj.to_dict()
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


@dataclass(frozen=True)
class Claim:
    """A claim a figure tests: ``name`` (the figure's), ``text`` (what the sidecar and the README
    gallery say), and ``predicate``: the figure's metrics dict -> :class:`Judgement` (or a bool; ``None``: undecided)."""

    name: str
    text: str
    predicate: Callable[[Mapping[str, Any]], Judgement | bool]

    def judge(self, metrics: Mapping[str, Any]) -> Judgement:
        """Decide the claim from ``metrics`` (the very dict the sidecar stores)."""
        verdict = self.predicate(metrics)
        if isinstance(verdict, Judgement):
            return verdict
        if isinstance(verdict, np.bool_):
            verdict = bool(verdict)
        if verdict is None or isinstance(verdict, bool):
            return Judgement(verdict, {True: "held", False: "did not hold", None: "undecided"}[verdict])
        raise TypeError(f"predicate of claim {self.name!r} returned {type(verdict).__name__}; "
                        "expected a Judgement or a bool")

    @property
    def claim_id(self) -> str:
        """``module:ATTRIBUTE`` where this claim is defined (what the sidecar records)."""
        module = importlib.import_module(self.predicate.__module__)
        for attribute, value in vars(module).items():
            if value is self:
                return f"{module.__name__}:{attribute}"
        raise LookupError(f"claim {self.name!r} is not a module-level name of {module.__name__}; "
                          "define it there so its sidecar can be re-judged")


def find_claim(claim_id: str) -> Claim:
    """The :class:`Claim` a sidecar's ``claim_id`` (``module:ATTRIBUTE``) names."""
    module, _, attribute = claim_id.partition(":")
    claim = getattr(importlib.import_module(module), attribute, None)
    if not isinstance(claim, Claim):
        raise LookupError(f"claim_id: {claim_id!r} names no Claim")
    return claim


# --- comparisons on intervals --------------------------------------------------------------------
def at_least(a: Estimate, b: Estimate, margin: float = 0.0) -> bool:
    """"``a`` is at least ``b``" (non-inferiority): the whole interval of ``a`` lies at or above
    ``b``'s estimate less ``margin``. A point estimate that wins by less than its own noise does
    not hold; a tie holds only within a stated ``margin``."""
    return a.low >= b.value - margin


def better(a: Estimate, b: Estimate) -> bool:
    """"``a`` beats ``b``": the intervals do not overlap and ``a`` is above (conservative)."""
    return a.low > b.high


def above(a: Estimate, threshold: float) -> bool:
    """The whole interval of ``a`` lies above ``threshold``."""
    return a.above(threshold)


def below(a: Estimate, threshold: float) -> bool:
    """The whole interval of ``a`` lies below ``threshold``."""
    return a.below(threshold)


def finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


# --- three-valued parts and their conjunction ---------------------------------------------------
# A claim of several parts judges each as a Judgement: True (the data support it: an interval
# clears the bar, a test rejects the opposite), False (the data support the opposite), None (not
# separated: an interval straddles the bar, too few repeats; or not applicable). Rules, each on
# the evidence its kind of number allows: exact properties (bytes, float64 equivalence, closed
# forms) are plain booleans; proportions and means are Estimates compared with at_least_threshold,
# at_least_estimate and beats (the one-sided comparisons above, with a False side added);
# wall-clock timings use faster / exceeds, a one-sided exact Mann-Whitney U test on the timed
# repeats: 3-7 repeats with outliers from other processes are too few for a bootstrap interval to
# mean much, while the rank test needs no distribution and states how likely the observed
# ordering is by chance (3 vs 3 repeats completely separated: p = 1/20).
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
    ratio = statistics.median(high) / statistics.median(low)
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
