"""Plots of ``notebooks/hybrid/05_minipuzzle.ipynb``: each draws the plain-data result of that
notebook's experiment module; what a figure claims lives with the experiment, not here."""

from __future__ import annotations

import statistics

from matplotlib.patches import Patch

from nvrepro.core.lm.info import human_bytes
from nvrepro.core.tooling.figures import interval_lengths, new_figure
from nvrepro.core.tooling.intervals import wilson


_KIND_STYLE = {"M": ("Mamba-2", "C0"), "*": ("attention", "C3"), "-": ("FFN", "C2")}
_MINIPUZZLE_ARMS = {"distilled": ("pruned + distilled (forward KL)", "C0", "o"),
                    "scratch": ("same architecture from scratch", "C1", "s"),
                    "scratch_parent_budget": ("from scratch, parent's token budget", "C7", "^")}


def plot_layer_importance(result: dict):
    """Two panels. Left: MSE of the final hidden state when each layer is removed (log scale), by
    layer kind; solid bars are the layers the chosen candidate *keeps*, faded hatched bars the
    ones it *drops* (the paper's Fig. 9 analogue). Right: agreement with the parent, before any
    training, of the same layer counts with the layers chosen three ways: least important
    dropped, each random draw (dots; bar: median) and most important dropped sparing the
    catastrophic layers (95% Wilson intervals).
    ``result``: :func:`nvrepro.hybrid.minipuzzle_experiment.run`'s (or ``run_minipuzzle``'s)."""
    fig, (ax, ax_r) = new_figure(1, 2, gridspec_kw={"width_ratios": [3, 1.2]})
    fig.set_size_inches(max(9.0, 0.4 * len(result["pattern"]) + 4), 3.8)  # one bar per layer
    pattern, scores, kept = result["pattern"], result["importance"], set(result["kept_layers"])
    floor = min(s for s in scores if s > 0) / 10  # zero scores would vanish on a log axis
    for i, (kind, score) in enumerate(zip(pattern, scores)):
        _, color = _KIND_STYLE[kind]
        dropped = i not in kept
        ax.bar(i, max(score, floor), color=color, alpha=0.3 if dropped else 0.9,
               hatch="//" if dropped else None, edgecolor=color)
    ax.set_yscale("log")
    ax.set_xticks(range(len(pattern)), [f"{i}\n{k}" for i, k in enumerate(pattern)], fontsize=8)
    ax.set(xlabel="layer (index, kind)", ylabel="MSE of final hidden state\nwith the layer removed",
           title="Layer importance of the toy parent (Nemotron-H Fig. 9 analogue)")
    handles = [Patch(color=c, label=name) for name, c in _KIND_STYLE.values()]
    handles += [Patch(facecolor="grey", alpha=0.9, label="kept by the chosen candidate"),
                Patch(facecolor="white", edgecolor="grey", hatch="//", label="dropped by the chosen candidate")]
    ax.set_axisbelow(True)

    drops = result["drops"]
    rows = [("least important\ndropped", drops["importance"], "C0"),
            ("most important\ndropped (sparing\n" + ", ".join(map(str, drops["most_important"]["spared"]))
             + ")" if drops["most_important"]["spared"] else "most important\ndropped", drops["most_important"], "C3")]
    for y, (_, arm, color) in enumerate(rows):
        e = wilson(arm["agree"], arm["count"])
        ax_r.errorbar([e.value], [y], xerr=interval_lengths([e]), fmt="o", color=color, capsize=3)
    rand = [r["agreement"] for r in drops["random"]]
    y_rand = len(rows)
    if rand:
        jitter = [(k % 5 - 2) * 0.06 for k in range(len(rand))]  # spread equal values apart
        ax_r.scatter(rand, [y_rand + j for j in jitter], s=12, color="C7", alpha=0.8)
        ax_r.plot([statistics.median(rand)] * 2, [y_rand - 0.3, y_rand + 0.3], color="k", lw=2)
    ax_r.set_yticks(range(len(rows) + 1), [r[0] for r in rows] + [f"random drops\n({len(rand)} seeds)"], fontsize=8)
    ax_r.set_ylim(-0.6, len(rows) + 0.6)
    ax_r.invert_yaxis()
    ax_r.set(xlabel="agreement with the parent\n(no training)", title="which layers go")
    fig.legend(handles=handles, loc="outside lower center", ncols=5, frameon=False, fontsize=8)
    return fig


def plot_minipuzzle_recovery(result: dict):
    """Three panels: held-out accuracy and agreement with the parent against training tokens for
    each training arm (lines: the first seed; open markers at the end: every seed's final value;
    dashed: the parent, dotted: the pruned model before training), and greedy decode speed through
    the caches, parent vs pruned."""
    fig, (ax_a, ax_g, ax_d) = new_figure(1, 3)
    rows = {r["model"]: r for r in result["table"]}
    finals = result.get("finals", {})
    for name, curve in result["curves"].items():
        label, color, marker = _MINIPUZZLE_ARMS[name]
        tokens = [c["tokens"] / 1e3 for c in curve]
        for ax, key in ((ax_a, "acc"), (ax_g, "agreement")):
            ax.plot(tokens, [c[key] for c in curve], label=label, color=color, marker=marker, markersize=3)
            ends = finals.get(name, [])
            ax.scatter([f["tokens"] / 1e3 for f in ends], [f[key] for f in ends], color=color, marker=marker,
                       facecolors="none", s=30, zorder=3)
    for ax, key in ((ax_a, "acc"), (ax_g, "agreement")):
        ax.axhline(rows["parent"][key], color="k", ls="--", lw=1, label="parent")
        ax.axhline(rows["pruned (no training)"][key], color="grey", ls=":", lw=1.2, label="pruned, no training")
        ax.set_xlabel("training tokens (thousands)")
    ax_a.set(title="next-token accuracy (held out)", ylabel="accuracy")
    ax_g.set(title="agreement with the parent's argmax", ylabel="fraction of positions")
    names = ["parent", "pruned"]
    speeds = [result["decode"][n] for n in names]
    bars = ax_d.bar(names, speeds, color=["k", "C0"], alpha=0.8)
    ax_d.bar_label(bars, [f"{s:.0f}" for s in speeds], fontsize=9)
    cfg = result["decode_config"]
    ax_d.set(title=f"greedy decode, context {cfg['context']}, {cfg['threads']} thread",
             ylabel="tokens / second (median)")
    handles, labels = ax_a.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, frameon=False, fontsize=8)
    fig.suptitle(f"MiniPuzzle at toy scale: parent {result['pattern']} -> pruned "
                 f"{rows['pruned (no training)']['pattern']} (FFN {rows['parent']['ffn_width']} -> "
                 f"{rows['pruned (no training)']['ffn_width']})", fontsize=10)
    return fig


def plot_budget_explorer(rows: list[dict], limit_bytes: float, title: str = ""):
    """One bar per candidate (``Candidate.row()`` dicts), its inference memory, smallest at the top:
    green where it fits ``limit_bytes`` (the dashed line), grey where it does not; the candidate
    the search would pick (:func:`nvrepro.hybrid.search.pick_under_budget`) is outlined and
    starred; each evaluated candidate's score (mean of accuracy and agreement) is printed at its
    bar's end. Rows without a ``score`` (meta device) get no pick."""
    from nvrepro.hybrid.search import pick_under_budget

    _, pick = pick_under_budget(rows, limit_bytes)
    order = sorted(rows, key=lambda r: r["memory_bytes"])
    fig, ax = new_figure(1, 1)
    fig.set_size_inches(7.5, 1.2 + 0.22 * len(order))
    for y, r in enumerate(order):
        fits = r["memory_bytes"] <= limit_bytes
        chosen = r is pick
        ax.barh(y, r["memory_bytes"], color="C2" if fits else "0.75", edgecolor="k" if chosen else "none",
                linewidth=2 if chosen else 0)
        if "score" in r:  # measured before any training: what the ranking sees
            ax.annotate(f" {r['score']:.3f}" + ("  <- picked" if chosen else ""), (r["memory_bytes"], y),
                        va="center", fontsize=7, fontweight="bold" if chosen else "normal")
    ax.axvline(limit_bytes, color="k", ls="--", lw=1)
    ax.set_yticks(range(len(order)), [r["name"] + ("  *" if r is pick else "") for r in order], fontsize=7)
    ax.invert_yaxis()
    right = 1.25 * max(max(r["memory_bytes"] for r in order), limit_bytes)
    ax.set_xlim(0, right)
    ticks = [t for t in ax.get_xticks() if 0 <= t <= right]
    ax.set_xticks(ticks, [human_bytes(t) for t in ticks], fontsize=8)
    fits = sum(r["memory_bytes"] <= limit_bytes for r in rows)
    ax.set(xlabel="inference memory (weights + caches)",
           title=title or f"budget {human_bytes(limit_bytes)}: {fits} of {len(rows)} candidates fit")
    ax.legend(handles=[Patch(color="C2", label="fits"), Patch(color="0.75", label="over budget")],
              loc="lower right", fontsize=8)
    return fig
