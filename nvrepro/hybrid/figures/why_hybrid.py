"""Plots of ``notebooks/hybrid/02_why_hybrid.ipynb``: each draws the plain-data result of that
notebook's experiment module; what a figure claims lives with the experiment, not here."""

from __future__ import annotations

from nvrepro.core.tooling.figures import interval_lengths, new_figure
from nvrepro.core.tooling.intervals import wilson


_ARM_STYLE = {"transformer": dict(color="C0", marker="o", label="Transformer (attention + FFN)"),
              "mamba2": dict(color="C3", marker="s", label="pure Mamba-2"),
              "hybrid": dict(color="C2", marker="^", label="hybrid (Nemotron-H pattern)")}


def _arm_style(arm: str, params: int | None = None) -> dict:
    style = dict(_ARM_STYLE.get(arm, dict(label=arm)))
    if params is not None:
        style["label"] = f"{style['label']}, {params / 1e3:.0f}K params"
    return style


def plot_recall_grid(result: dict, hard_pairs: int | None = None):
    """MQAR per-query accuracy against the number of key-value pairs; a panel per sequence length.

    ``result`` is :func:`nvrepro.hybrid.why_hybrid.mqar_recall`'s: a line per arm through the
    accuracy pooled over its training seeds (error bars: Wilson intervals over the pooled queries),
    small dots for each seed. The dotted line is ``1/n``: what a model scores that has learned to
    answer with *some* value seen in the context but not which one (no lookup). With
    ``hard_pairs``, the cells the claim compares on are shaded.
    """
    lengths, pairs = result["lengths"], result["pairs"]
    fig, axes = new_figure(1, len(lengths), sharey=True, squeeze=False)
    fig.set_size_inches(max(6.5, 3.6 * len(lengths)), 4.2)
    for ax, length in zip(axes[0], lengths):
        for arm, r in result["arms"].items():
            key = length if length in r["accuracy"] else str(length)
            rows = [(n, a, c, q, sa) for n, a, c, q, sa in zip(pairs, r["accuracy"][key], r["correct"][key],
                                                                r["queries"][key], r["seed_accuracy"][key])
                    if a is not None]
            style = _arm_style(arm, r["params"])
            err = interval_lengths([wilson(c, q) for _, _, c, q, _ in rows])
            ax.errorbar([n for n, *_ in rows], [a for _, a, *_ in rows], yerr=err, capsize=2, **style)
            for n, *_, seeds in rows:
                ax.plot([n] * len(seeds), seeds, ".", color=style.get("color"), ms=3, alpha=0.5)
        ns = [n for n, a in zip(pairs, next(iter(result["arms"].values()))["accuracy"][key]) if a is not None]
        ax.plot(ns, [1 / n for n in ns], ls=":", color="0.45", label="1/n: a random value from the context")
        if hard_pairs is not None and any(n >= hard_pairs for n in ns):
            ax.axvspan(hard_pairs / 2 ** 0.5, max(ns) * 2 ** 0.5, color="0.9", zorder=0,
                       label=f"the claim's cells (>= {hard_pairs} pairs)")
        ax.set_xscale("log", base=2)
        ax.set_xticks(pairs, [str(n) for n in pairs])
        ax.minorticks_off()
        ax.set(title=f"sequence length {length}", xlabel="key-value pairs in context", ylim=(-0.02, 1.02))
    axes[0][0].set_ylabel("per-query recall accuracy")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2, frameon=False)
    steps = {s for r in result["arms"].values() for s in r["steps"]}
    fig.suptitle(f"Multi-query associative recall, each arm at its own depth and width within one parameter budget, "
                 f"{'/'.join(map(str, sorted(steps)))} training steps, seeds {result['seeds']}, {result['num_test']} "
                 "held-out examples per cell (the same for every arm and seed)", fontsize=10)
    return fig


def plot_lm_curves(result: dict, margin: float | None = None):
    """Validation loss (nats per byte) against training steps: per arm, a thin line per training
    seed and a thick one through their mean.

    ``result`` is :func:`nvrepro.hybrid.why_hybrid.lm_curves`'s; with ``margin``, a band shows
    where the hybrid's final loss must land to be "within ``margin`` of the Transformer".
    """
    fig, ax = new_figure(1, 1)
    fig.set_size_inches(6.5, 4.2)
    for arm, r in result["arms"].items():
        style = _arm_style(arm, r["params"])
        style["label"] += f": final {r['final_val_loss']:.3f}"
        for curve in r["curves"]:
            ax.plot(r["step"][:len(curve)], curve, color=style.get("color"), lw=0.6, alpha=0.4)
        mean = [sum(v) / len(v) for v in zip(*r["curves"])]
        ax.plot(r["step"][:len(mean)], mean, **style)
    if margin is not None and "transformer" in result["arms"]:
        t = result["arms"]["transformer"]
        ax.axhspan(t["final_val_loss"], (1 + margin) * t["final_val_loss"], color="C0", alpha=0.12,
                   label=f"Transformer final loss + {100 * margin:g}% (the claim's margin)")
    ax.set(xlabel="training step", ylabel="validation loss (nats per byte)",
           title=f"Byte-level LM on the World English Bible, seeds {result['seeds']}")
    ax.legend(fontsize=8)
    return fig


def _pooled_over_lengths(run: dict, pairs: list[int]) -> list[float | None]:
    """Per pair count: correct / queries summed over the lengths where the cell exists."""
    out = []
    for i, _ in enumerate(pairs):
        c = sum(col[i] for col in run["correct"].values() if col[i] is not None)
        q = sum(col[i] for col in run["queries"].values() if col[i] is not None)
        out.append(c / q if q else None)
    return out


def plot_state_sweep(sweep: dict, transformer: list[float] | None = None):
    """Recall against the Mamba-2 state size (:func:`nvrepro.hybrid.state_sweep.state_sweep`'s result).

    Left: each training seed's recall on the cells with ``sweep["hard_pairs"]`` or more pairs (dots)
    and their mean (line) against ``d_state``, for the pure Mamba-2 model and the hybrid; with
    ``transformer`` (the recall Transformer's per-seed values on the same cells), its mean and range
    as a band for reference. Right: recall against the number of pairs, pooled over lengths and
    seeds, at the smallest (solid) and the largest (dashed) state size.
    """
    fig, (left, right) = new_figure(1, 2)
    fig.set_size_inches(11, 4.3)
    states = sorted({d for r in sweep["arms"].values() for d in r["d_state"]})
    for arm, r in sweep["arms"].items():
        style = _arm_style(arm)
        means = [sum(run["hard_recall"]) / len(run["hard_recall"]) for run in r["runs"]]
        left.plot(r["d_state"], means, **style)
        for d, run in zip(r["d_state"], r["runs"]):
            left.plot([d] * len(run["hard_recall"]), run["hard_recall"], ".", color=style["color"], ms=6, alpha=0.6)
        for d, run, ls in ((min(r["d_state"]), r["runs"][0], "-"), (max(r["d_state"]), r["runs"][-1], "--")):
            right.plot(sweep["pairs"], _pooled_over_lengths(run, sweep["pairs"]), ls=ls, color=style["color"],
                       marker=style["marker"], label=f"{style['label']}, d_state {d}")
    if transformer:
        mean = sum(transformer) / len(transformer)
        left.axhspan(min(transformer), max(transformer), color="C0", alpha=0.1)
        left.axhline(mean, color="C0", lw=1, label="recall Transformer (no state; mean and seed range)")
    left.set_xscale("log", base=2)
    left.set_xticks(states, [str(d) for d in states])
    left.minorticks_off()
    left.set(xlabel="Mamba-2 state size d_state (per head: d_state x head_dim)", ylim=(-0.02, 1.02),
             ylabel=f"recall on the cells with >= {sweep['hard_pairs']} pairs",
             title="each dot one training seed, line through the mean")
    left.legend(fontsize=8)
    right.plot(sweep["pairs"], [1 / n for n in sweep["pairs"]], ls=":", color="0.45", label="1/n")
    right.set_xscale("log", base=2)
    right.set_xticks(sweep["pairs"], [str(n) for n in sweep["pairs"]])
    right.minorticks_off()
    right.set(xlabel="key-value pairs in context", ylabel="per-query recall (pooled over lengths and seeds)",
              ylim=(-0.02, 1.02), title="recall against pairs at the smallest and largest state")
    right.legend(fontsize=7)
    fig.suptitle(f"Where the fixed state runs out: the recall arms with a smaller Mamba-2 state, seeds {sweep['seeds']}, "
                 f"{sweep['num_test']} held-out examples per cell", fontsize=10)
    return fig
