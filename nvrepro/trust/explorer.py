"""The probe explorer: pick a perspective and a model, page through the probes with the model's answers and what
the metric read from each.

:func:`describe_record` does the work (plain text, testable); :func:`probe_explorer` wraps it in ipywidgets
controls.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

SHOWN_ANSWERS = 5  # toxicity has 25 answers per probe; the first few tell the story


def describe_record(record: Mapping[str, Any], shown: int = SHOWN_ANSWERS) -> str:
    """Lines for one probe's record (a :class:`~nvrepro.trust.types.PerspectiveResult` record): its scenario,
    the prompt, the first ``shown`` answers, and every other field the metric filled in."""
    answers = list(record.get("answers", []))
    lines = [f"probe {record.get('id')}  (scenario: {record.get('scenario')})", "prompt:", f"  {record.get('prompt', '')}",
             f"answers ({len(answers)}):"]
    lines += [f"  {i + 1}. {a!r}" for i, a in enumerate(answers[:shown])]
    if len(answers) > shown:
        lines.append(f"  ... {len(answers) - shown} more")
    extra = {k: v for k, v in record.items() if k not in ("id", "scenario", "prompt", "answers")}
    lines += [f"{k}: {v}" for k, v in extra.items()]
    return "\n".join(lines)


def probe_explorer(records: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]]):
    """An ipywidgets box over ``records[model][perspective]`` (lists of records): a model and a perspective
    picker, a probe slider, and :func:`describe_record` of the chosen probe."""
    import ipywidgets as widgets
    from IPython.display import display

    models = list(records)
    model = widgets.Dropdown(options=models, description="model")
    perspective = widgets.Dropdown(options=list(records[models[0]]), description="perspective")
    index = widgets.IntSlider(value=0, min=0, max=0, description="probe")
    out = widgets.Output()

    def rows():
        return records[model.value].get(perspective.value, [])

    def draw(*_):
        index.max = max(0, len(rows()) - 1)
        with out:
            out.clear_output(wait=True)
            print(describe_record(rows()[index.value]) if rows() else "(no probes)")

    for w in (model, perspective, index):
        w.observe(draw, names="value")
    draw()
    box = widgets.VBox([widgets.HBox([model, perspective]), index, out])
    display(box)
    return box
