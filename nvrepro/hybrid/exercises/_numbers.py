"""A shared verdict on numeric predictions."""

from __future__ import annotations

import math


from nvrepro.core.exercises import Check
from nvrepro.core.exercises import report as _report


def _check_number(answer, actual: float, *, rel_tol: float, variable: str, unit: str, why: str,
                  slips: tuple[tuple[float, str], ...] = (), verbose: bool) -> Check:
    """The verdict on a numeric prediction: None -> not attempted; within ``rel_tol`` of
    ``actual`` -> correct; otherwise wrong, naming the first known slip whose value it matches."""
    if answer is None:
        return _report(Check(None, f"set `{variable}` to your prediction ({unit})."), verbose)
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return _report(Check(False, f"expected a number of {unit}, got {answer!r}."), verbose)
    if math.isclose(value, actual, rel_tol=rel_tol):
        return _report(Check(True, why), verbose)
    slip = next((f" ({text})" for v, text in slips if math.isclose(value, v, rel_tol=0.01)), "")
    return _report(Check(False, f"you said {value:,.0f} {unit}, the code gives {actual:,.0f}{slip}: {why}"), verbose)
