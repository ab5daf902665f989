"""The notebook's explorer: a question's retrieved passages with the retriever's and RankRAG's
scores side by side, the passages kept, and the answer.

:func:`explain` does the work (plain text, testable); :func:`rankrag_explorer` wraps it in
ipywidgets: pick a held-out question from the list or type any question.
"""

from __future__ import annotations

from typing import Sequence


def explain(pipeline, question: str, gold: Sequence[int] = (), width: int = 90) -> str:
    """Lines for one question: every retrieved passage (retriever rank, similarity, P(True), kept or
    not, ``*`` for a gold passage), then the answer from the kept ones."""
    out = pipeline.run([question])
    kept = set(int(i) for i in out.kept[0])
    order = sorted(range(out.retrieved.shape[1]), key=lambda j: -out.relevance[0, j])
    lines = [f"Q: {question}",
             f"{'retr.':>5} {'sim':>6} {'P(True)':>8}  kept  passage ({len(kept)} of {out.retrieved.shape[1]} kept, "
             "sorted by P(True); * = gold)"]
    for j in order:
        pid = int(out.retrieved[0, j])
        if pid < 0:
            continue
        text = pipeline.retriever.texts([pid])[0]
        mark = "*" if pid in set(gold) else " "
        lines.append(f"{j + 1:>5} {out.retriever_scores[0, j]:>6.3f} {out.relevance[0, j]:>8.3f}  "
                     f"{'yes ' if pid in kept else '    '} {mark} {text[:width]}")
    lines.append(f"A: {out.answers[0]!r}")
    return "\n".join(lines)


def rankrag_explorer(pipeline, questions: Sequence) -> object:
    """An ipywidgets box: a combobox of ``questions`` (world questions, with gold passages marked)
    that also takes typed text, and the :func:`explain` lines of the chosen one."""
    import ipywidgets as widgets
    from IPython.display import display

    by_text = {q.text: q for q in questions}
    box = widgets.Combobox(options=list(by_text), value=questions[0].text if questions else "",
                           placeholder="pick or type a question", description="question",
                           ensure_option=False, layout=widgets.Layout(width="95%"))
    out = widgets.Output()

    def show(change=None) -> None:
        out.clear_output()
        with out:
            q = by_text.get(box.value)
            if box.value.strip():
                print(explain(pipeline, box.value, q.gold if q else ()))
                if q:
                    print(f"gold answer: {q.answers[0]!r}")

    box.observe(show, names="value")
    show()
    widget = widgets.VBox([box, out])
    display(widget)
    return widget
