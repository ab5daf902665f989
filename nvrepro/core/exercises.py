"""The verdict type every track's exercise checkers return (``nvrepro/<track>/exercises.py``).

A checker compares the student's answer with what the real code does, prints a message saying
whether the answer holds and why, and returns a :class:`Check` (truthy when it holds;
``ok is None`` when not attempted yet, so a notebook with placeholders still runs headlessly).
"""

from __future__ import annotations

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
