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
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

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
