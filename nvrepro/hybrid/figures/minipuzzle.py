"""Plots of ``notebooks/hybrid/05_minipuzzle.ipynb``: each draws the plain-data result of that
notebook's experiment module; what a figure claims lives with the experiment, not here."""

from __future__ import annotations

from matplotlib.patches import Patch

from nvrepro.core.tooling.figures import new_figure


_KIND_STYLE = {"M": ("Mamba-2", "C0"), "*": ("attention", "C3"), "-": ("FFN", "C2")}
_MINIPUZZLE_ARMS = {"distilled": ("pruned + distilled (forward KL)", "C0", "o"),
                    "scratch": ("same architecture from scratch", "C1", "s"),
                    "scratch_parent_budget": ("from scratch, parent's token budget", "C7", "^")}


def plot_layer_importance(result: dict):
    """Bars: MSE of the final hidden state when each layer is removed (log scale), by layer kind;
    hatched bars are the layers the chosen candidate drops (the paper's Fig. 9 analogue).
    ``result``: :func:`nvrepro.hybrid.minipuzzle_experiment.run`'s (or ``run_minipuzzle``'s)."""
    fig, ax = new_figure(1, 1)
    fig.set_size_inches(max(6.0, 0.4 * len(result["pattern"])), 3.6)  # one bar per layer
    pattern, scores, kept = result["pattern"], result["importance"], set(result["kept_layers"])
    floor = min(s for s in scores if s > 0) / 10  # zero scores would vanish on a log axis
    for i, (kind, score) in enumerate(zip(pattern, scores)):
        _, color = _KIND_STYLE[kind]
        dropped = i not in kept
        ax.bar(i, max(score, floor), color=color, alpha=0.35 if dropped else 0.9,
               hatch="//" if dropped else None, edgecolor=color)
    ax.set_yscale("log")
    ax.set_xticks(range(len(pattern)), [f"{i}\n{k}" for i, k in enumerate(pattern)], fontsize=8)
    ax.set(xlabel="layer (index, kind)", ylabel="MSE of final hidden state\nwith the layer removed",
           title="Layer importance of the toy parent (MiniPuzzle, Nemotron-H Fig. 9 analogue)")
    handles = [Patch(color=c, label=name) for name, c in _KIND_STYLE.values()]
    handles.append(Patch(facecolor="white", edgecolor="grey", hatch="//", label="dropped by the chosen candidate"))
    ax.set_axisbelow(True)
    fig.legend(handles=handles, loc="outside lower center", ncols=4, frameon=False, fontsize=8)
    return fig


def plot_minipuzzle_recovery(result: dict):
    """Three panels: held-out accuracy and agreement with the parent against training tokens for
    each training arm (dashed: the parent, dotted: the pruned model before training), and greedy
    decode speed through the caches, parent vs pruned."""
    fig, (ax_a, ax_g, ax_d) = new_figure(1, 3)
    rows = {r["model"]: r for r in result["table"]}
    for name, curve in result["curves"].items():
        label, color, marker = _MINIPUZZLE_ARMS[name]
        tokens = [c["tokens"] / 1e3 for c in curve]
        ax_a.plot(tokens, [c["acc"] for c in curve], label=label, color=color, marker=marker, markersize=3)
        ax_g.plot(tokens, [c["agreement"] for c in curve], label=label, color=color, marker=marker, markersize=3)
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
