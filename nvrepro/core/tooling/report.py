"""What notebooks print: summary tables (:func:`table_text`) and each claim's
verdict, part by part with the intervals it was decided on (:func:`show`)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from nvrepro.core.tooling.claims import Claim, Judgement, format_judgement
from nvrepro.core.tooling.figures import to_jsonable


def table_text(rows: Mapping[str, Mapping[str, Any]], columns: Sequence[tuple[str, str, str]], *,
               first: str, labels: Mapping[str, str], first_width: int = 22) -> str:
    """A fixed-width text table: a header line, then one line per ``rows`` key (shown as
    ``labels[key]``, left-aligned in ``first_width`` characters under the heading ``first``), with a
    right-aligned cell per column ``(header, field, format spec)``, e.g. ``("late loss", "late_loss",
    ".3f")``; each column is two characters wider than its header."""
    widths = [len(header) + 2 for header, _, _ in columns]
    lines = [f"{first:<{first_width}}" + "".join(f"{h:>{w}}" for (h, _, _), w in zip(columns, widths))]
    for key, row in rows.items():
        lines.append(f"{labels.get(key, key):<{first_width}}"
                     + "".join(f"{format(row[field], spec):>{w}}" for (_, field, spec), w in zip(columns, widths)))
    return "\n".join(lines)


def show(claim: Claim, metrics: Mapping[str, Any]) -> Judgement:
    """Print ``claim``'s text and its verdict on ``metrics`` part by part, judged on the JSON form
    the figure's sidecar stores (what ``save_figure`` judges); returns the judgement."""
    judgement = claim.judge(to_jsonable(metrics))
    print(f"Claim ({claim.name}): {claim.text}")
    print(format_judgement(judgement.to_dict()))
    extra = {k: v for k, v in judgement.evidence.items() if k != "parts"}
    if extra:
        print("  " + ", ".join(f"{k}: {v}" for k, v in extra.items()))
    return judgement
