"""The needle-in-a-haystack explorer of notebook 02: pick a RoPE scaling method and an evaluated
context length, see that heatmap column's passkey accuracy per depth and the RULER-style
accuracies at that length, each with its Wilson interval.

A heatmap cell holds only a few probes, so its colour alone says little; the explorer shows how
wide each cell's interval is. :func:`cell_view` selects the numbers (plain data, tested),
:func:`~nvrepro.ultralong.figures.plot_niah_cell` draws them, :func:`show_niah_explorer` is the
widget's callback (prints and draws) and :func:`niah_explorer_widget` wires it to a method
dropdown and a length slider. Notebooks call the callback once for a default choice (headless
runs see that) and display the widget only when someone can move it.
"""

from __future__ import annotations

from nvrepro.core.tooling.intervals import Estimate, wilson
from nvrepro.core.tooling.validation import ConfigError
from nvrepro.ultralong.rope_scaling import METHOD_LABELS

__all__ = ["cell_view", "format_cell", "niah_explorer_widget", "show_niah_explorer"]


def cell_view(result: dict, method: str, length: int, confidence: float = 0.95) -> dict:
    """The numbers behind one column of one heatmap of notebook 02's ``result``
    (:func:`nvrepro.ultralong.context_extension.run`, or its sidecar's ``metrics["result"]``).

    Returns ``{"method", "label", "length", "factor" (length / L), "short_len" (L), "depths" (d,),
    "passkey": [Estimate per depth] (correct of ``samples`` probes, Wilson), "passkey_pooled":
    Estimate (every depth pooled), "ruler": {task: Estimate}, "ruler_pooled": Estimate (every task
    pooled)}``. Raises :class:`ConfigError` naming ``method`` or ``length`` when the result has no
    such method or did not evaluate that length.
    """
    methods = result["methods"]
    if method not in methods:
        raise ConfigError(f"method: {method!r} is not in this result; choose one of {list(methods)}")
    ev = methods[method]["eval"]
    niah, ruler = ev["niah"], ev["ruler"]
    if isinstance(length, bool) or length not in niah["lengths"] or length not in ruler["lengths"]:
        raise ConfigError(f"length: {length!r} was not evaluated; choose one of {list(niah['lengths'])}")
    j, k = niah["lengths"].index(length), ruler["lengths"].index(length)
    n = niah["samples"]
    correct = [int(row[j]) for row in niah["correct"]]
    ruler_correct = {task: int(counts[k]) for task, counts in ruler["correct"].items()}
    return {"method": method, "label": METHOD_LABELS.get(method, method), "length": int(length),
            "factor": length / result["short_len"], "short_len": result["short_len"],
            "depths": list(niah["depths"]),
            "passkey": [wilson(c, n, confidence) for c in correct],
            "passkey_pooled": wilson(sum(correct), n * len(correct), confidence),
            "ruler": {task: wilson(c, ruler["samples"], confidence) for task, c in ruler_correct.items()},
            "ruler_pooled": wilson(sum(ruler_correct.values()), ruler["samples"] * len(ruler_correct), confidence)}


def _est(e: Estimate) -> str:
    return f"{round(e.value * e.n)}/{e.n} = {e.value:.2f} [{e.low:.2f}, {e.high:.2f}]"


def format_cell(view: dict) -> str:
    """:func:`cell_view` as text: one line for the passkey (pooled, then per depth) and one for the
    RULER-style tasks."""
    depths = ", ".join(f"{d:.0%}: {_est(e)}" for d, e in zip(view["depths"], view["passkey"]))
    tasks = ", ".join(f"{t}: {_est(e)}" for t, e in view["ruler"].items())
    return (f"{view['label']} at {view['length']:,} tokens ({view['factor']:g} L): passkey {_est(view['passkey_pooled'])} "
            f"(Wilson 95%); per depth {depths}\n"
            f"RULER-style {_est(view['ruler_pooled'])}; per task {tasks}")


def show_niah_explorer(result: dict, method: str = "yarn", length: int | None = None) -> None:
    """The explorer's callback: prints :func:`format_cell` and draws
    :func:`~nvrepro.ultralong.figures.plot_niah_cell` for ``method`` at ``length`` (default: the
    longest evaluated length, ``s L``). Returns None, so a widget does not display a value twice."""
    import matplotlib.pyplot as plt

    from nvrepro.ultralong.figures import plot_niah_cell

    view = cell_view(result, method, result["lengths"][-1] if length is None else length)
    print(format_cell(view))
    plot_niah_cell(view)
    plt.show()


def niah_explorer_widget(result: dict, method: str = "yarn", length: int | None = None):
    """ipywidgets controls (a method dropdown, a length slider over the evaluated lengths) wired to
    :func:`show_niah_explorer` on ``result``."""
    import ipywidgets as widgets

    methods = list(result["methods"])
    lengths = list(result["lengths"])
    pick = widgets.Dropdown(options=[(METHOD_LABELS.get(m, m), m) for m in methods],
                            value=method if method in methods else methods[-1], description="method")
    at = widgets.SelectionSlider(options=[(f"{n:,}", n) for n in lengths],
                                 value=lengths[-1] if length is None else length, description="length")
    return widgets.interactive(lambda method, length: show_niah_explorer(result, method, length),
                               method=pick, length=at)
