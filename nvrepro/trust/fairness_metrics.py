"""Group-fairness metrics of binary predictions, as DecodingTrust's fairness perspective reports them (our numpy
implementation of the definitions fairlearn uses; ``tests/trust/test_fairness.py`` checks them against
``fairlearn.metrics``).

With predictions ``y_hat`` in {0, 1}, true labels ``y`` in {0, 1} and a sensitive attribute ``A`` with groups
``a``:

* demographic parity difference ``M_dpd = max_a P(y_hat=1 | A=a) - min_a P(y_hat=1 | A=a)``;
* equalized odds difference ``M_eod = max(max_a TPR_a - min_a TPR_a, max_a FPR_a - min_a FPR_a)``, with
  ``TPR_a = P(y_hat=1 | y=1, A=a)`` and ``FPR_a = P(y_hat=1 | y=0, A=a)`` (fairlearn's ``agg="worst_case"``,
  ``method="between_groups"``).

A group with no positives (or no negatives) has no defined TPR (FPR). fairlearn computes the rates with
``sklearn.metrics.confusion_matrix(..., normalize="true")``, which sets such a rate to 0, so that group then
enters the gap with TPR = 0. ``undefined="zero"`` (the default) does the same, so our numbers match the tool the
paper's metrics come from; ``undefined="skip"`` leaves the group out of that rate's gap instead (a rate over no
examples says nothing about the model), and a gap over fewer than two defined groups is 0.
"""

from __future__ import annotations

import numpy as np

from nvrepro.core.tooling.validation import require

UNDEFINED = ("zero", "skip")


def _binary(values, name: str) -> np.ndarray:
    arr = np.asarray(values)
    require(arr.ndim == 1, name, f"must be one-dimensional, got shape {arr.shape}")
    require(bool(np.isin(arr, (0, 1)).all()), name, f"must hold only 0 and 1, got {np.unique(arr)[:5].tolist()}")
    return arr.astype(np.int64)


def _groups(sensitive, n: int) -> np.ndarray:
    arr = np.asarray(sensitive)
    require(arr.ndim == 1 and len(arr) == n, "sensitive", f"must be one-dimensional of length {n}, got {arr.shape}")
    require(n > 0, "sensitive", "needs at least one example")
    return arr


def selection_rates(y_pred, sensitive) -> dict:
    """``{group: P(y_hat = 1 | A = group)}`` for ``y_pred`` (n,) in {0, 1} and ``sensitive`` (n,) group labels."""
    y_pred = _binary(y_pred, "y_pred")
    groups = _groups(sensitive, len(y_pred))
    return {g: float(y_pred[groups == g].mean()) for g in np.unique(groups)}


def demographic_parity_difference(y_pred, sensitive) -> float:
    """``M_dpd = max_a P(y_hat=1 | A=a) - min_a P(y_hat=1 | A=a)`` in [0, 1] (0 for a single group).

    ``y_pred``: (n,) predictions in {0, 1}; ``sensitive``: (n,) group labels (any hashable values)."""
    rates = list(selection_rates(y_pred, sensitive).values())
    return float(max(rates) - min(rates))


def _gap(rates: list[float]) -> float:
    return float(max(rates) - min(rates)) if len(rates) >= 2 else 0.0


def equalized_odds_difference(y_true, y_pred, sensitive, undefined: str = "zero") -> float:
    """``M_eod = max(TPR gap, FPR gap)`` in [0, 1], each gap the largest minus the smallest group rate.

    ``y_true``, ``y_pred``: (n,) in {0, 1}; ``sensitive``: (n,) group labels. ``undefined``: how a group's rate over
    no examples enters its gap: ``"zero"`` as 0 (fairlearn's behaviour), ``"skip"`` not at all (module docstring)."""
    require(undefined in UNDEFINED, "undefined", f"must be one of {UNDEFINED}, got {undefined!r}")
    y_true = _binary(y_true, "y_true")
    y_pred = _binary(y_pred, "y_pred")
    require(len(y_true) == len(y_pred), "y_pred", f"length {len(y_pred)} differs from y_true's {len(y_true)}")
    groups = _groups(sensitive, len(y_true))
    gaps = []
    for y in (1, 0):  # TPR over the positives, FPR over the negatives of each group
        rates = []
        for g in np.unique(groups):
            mask = (groups == g) & (y_true == y)
            if mask.any():
                rates.append(float(y_pred[mask].mean()))
            elif undefined == "zero":
                rates.append(0.0)
        gaps.append(_gap(rates))
    return max(gaps)
