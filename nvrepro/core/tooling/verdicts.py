"""The verdict type every track's exercise checkers return (``nvrepro/<track>/exercises.py``).

A checker compares the student's answer with what the real code does, prints a message saying
whether the answer holds and why, and returns a :class:`Check` (truthy when it holds;
``ok is None`` when not attempted yet, so a notebook with placeholders still runs headlessly).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class Check:
    """The verdict on one answer: ``ok`` (None: not attempted) and a message saying why."""

    ok: bool | None
    message: str

    def __bool__(self) -> bool:
        return bool(self.ok)

    def __str__(self) -> str:
        mark = {True: "correct", False: "not yet", None: "not attempted yet"}[self.ok]
        return f"[{mark}] {self.message}"


def report(check: Check, verbose: bool) -> Check:
    """Print ``check`` when ``verbose``; return it (so a checker ends with ``return report(...)``)."""
    if verbose:
        print(check)
    return check


def as_number(answer, what: str) -> tuple[float | None, Check | None]:
    """``(float(answer), None)``, or ``(None, verdict)`` for a placeholder ``None`` (not attempted,
    asking for ``what``) or something that is not a number."""
    if answer is None:
        return None, Check(None, f"set `answer` to {what}.")
    try:
        return float(answer), None
    except (TypeError, ValueError):
        return None, Check(False, f"expected a number, got {answer!r}.")


def call_student(fn, *args, name: str) -> tuple[object, Check | None]:
    """``(fn(*args), None)``, or ``(None, verdict)`` when the placeholder still raises
    ``NotImplementedError`` (not attempted) or the student's code raises (reported, not re-raised)."""
    try:
        return fn(*args), None
    except NotImplementedError:
        return None, Check(None, f"implement `{name}` and run the cell again.")
    except Exception as exc:  # noqa: BLE001 - report the student's error, do not crash the notebook
        return None, Check(False, f"{name} raised {type(exc).__name__}: {exc}")


def check_number(answer, expected: float, *, what: str, rel_tol: float = 0.0, abs_tol: float = 0.0,
                 unit: str = "", why: str = "", slips: tuple[tuple[float, str], ...] = (),
                 verbose: bool = True, variable: str = "answer") -> Check:
    """The verdict on a numeric prediction ``answer`` against the code's ``expected`` value.

    ``None`` -> not attempted (asks for ``what``); not a number -> wrong; within ``rel_tol`` /
    ``abs_tol`` of ``expected`` (``math.isclose``) -> correct, with ``why``; otherwise wrong,
    naming the first known slip (``(value, explanation)``) the answer matches to 1%.
    """
    if answer is None:
        return report(Check(None, f"set `{variable}` to {what}."), verbose)
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return report(Check(False, f"expected a number ({what}), got {answer!r}."), verbose)
    if not math.isfinite(value):
        return report(Check(False, f"expected a finite number ({what}), got {value}."), verbose)
    unit_text = f" {unit}" if unit else ""
    if math.isclose(value, expected, rel_tol=rel_tol, abs_tol=abs_tol):
        return report(Check(True, why or f"{value:,.4g}{unit_text} matches the code."), verbose)
    slip = next((f" ({text})" for v, text in slips if math.isclose(value, v, rel_tol=0.01)), "")
    tail = f": {why}" if why else "."
    return report(Check(False, f"you said {value:,.4g}{unit_text}, the code gives "
                               f"{expected:,.4g}{unit_text}{slip}{tail}"), verbose)


def check_claim_prediction(prediction, claim, metrics, *, verbose: bool = True) -> Check:
    """The verdict on a student's prediction (``True``/``False``) of whether ``claim`` holds on this
    run's ``metrics``: compared with the claim's own judgement; not decidable when the judgement is
    undecided (its interval straddles the bar, or the smoke profile measured too little)."""
    if prediction is None:
        return report(Check(None, "set `prediction` to True or False."), verbose)
    verdict = claim.judge(metrics)
    if verdict.held is None:
        return report(Check(None, f"this run cannot decide it ({verdict.reason}); try the paper profile."), verbose)
    ok = bool(prediction) == verdict.held
    said = "" if ok else f"you predicted {bool(prediction)}; "
    return report(Check(ok, f"{said}the run says {verdict.reason}"), verbose)
