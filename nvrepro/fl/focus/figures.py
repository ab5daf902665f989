"""Plots of the FOCUS notebooks. Each takes the plain-data result of its experiment module's ``run``;
error bars are 95% bootstrap intervals of a mean over seeds."""

from __future__ import annotations

import numpy as np

from nvrepro.core.tooling.figures import mean_error_bar, new_figure
from nvrepro.fl.focus.runner import METHOD_LABELS

METHOD_COLORS = {"focus": "C0", "ifca": "C2", "fedavg": "C7", "qffl": "C1"}
GROUP_MARKERS = ("o", "s", "^", "D", "v")


def _bar_panel(ax, methods: dict, key: str, ylabel: str, title: str) -> None:
    names = list(methods)
    stats = [mean_error_bar(methods[m][key]) for m in names]
    x = np.arange(len(names))
    ax.bar(x, [s[0] for s in stats], yerr=[[s[1] for s in stats], [s[2] for s in stats]], capsize=3,
           color=[METHOD_COLORS[m] for m in names])
    for xi, m in zip(x, names):
        ax.scatter(np.full(len(methods[m][key]), xi) + np.linspace(-0.15, 0.15, len(methods[m][key])),
                   methods[m][key], s=8, color="k", zorder=3)
    ax.set_xticks(x, [f"{METHOD_LABELS[m]}\nK={methods[m]['num_clusters']}" for m in names])
    ax.set(ylabel=ylabel, title=title)
    for xi, s in zip(x, stats):
        ax.annotate(f"{s[0]:.3g}", (xi, s[0] + s[2]), ha="center", va="bottom", fontsize=7,
                    textcoords="offset points", xytext=(0, 2))


def _curve_panel(ax, methods: dict) -> None:
    for m, d in methods.items():
        curves = np.asarray(d["curve_faa"], dtype=float)
        mean = curves.mean(axis=0)
        ax.plot(d["curve_rounds"], mean, color=METHOD_COLORS[m], label=METHOD_LABELS[m])
        if len(curves) > 1:
            ax.fill_between(d["curve_rounds"], curves.min(axis=0), curves.max(axis=0), color=METHOD_COLORS[m],
                            alpha=0.15, lw=0)
    ax.set(xlabel="round", ylabel="FAA (lower is fairer)", yscale="log", title="FAA per round (band: seeds' range)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(frameon=False, fontsize=7)


def _agents_panel(ax, methods: dict, group_names: list[str]) -> None:
    """Each agent's excess loss under each method (first seed), markers by group."""
    names = list(methods)
    for xi, m in enumerate(names):
        first = methods[m]["first"]
        ex, groups = np.asarray(first["excess"]), np.asarray(first["groups"])
        for g, gname in enumerate(group_names):
            sel = groups == g
            jitter = np.linspace(-0.25, 0.25, max(sel.sum(), 1))[: sel.sum()]
            ax.scatter(xi + jitter, ex[sel], marker=GROUP_MARKERS[g % len(GROUP_MARKERS)], s=16,
                       color=METHOD_COLORS[m], alpha=0.8, label=gname if xi == 0 else None,
                       edgecolor="k", linewidth=0.3)
        ax.plot([xi - 0.3, xi + 0.3], [ex.max()] * 2, color="k", lw=0.8)
        ax.plot([xi - 0.3, xi + 0.3], [ex.min()] * 2, color="k", lw=0.8)
        ax.annotate(f"FAA {first['faa']:.3g}", (xi, ex.max()), ha="center", va="bottom", fontsize=7,
                    textcoords="offset points", xytext=(0, 3))
    ax.set_xticks(range(len(names)), [METHOD_LABELS[m] for m in names])
    ax.set(ylabel="excess loss  L_i(served) - L_i(own optimum)", yscale="symlog",
           title="each agent, first seed")
    leg = ax.legend(frameon=False, fontsize=7, title="group", title_fontsize=7, loc="center left",
                    bbox_to_anchor=(1.0, 0.5))
    for h in leg.legend_handles:
        h.set_color("0.5")


# --- 03: linear task -------------------------------------------------------------------------------

def plot_linear(result: dict):
    """Per-agent excess losses (first seed), FAA per method over seeds, FAA per round."""
    fig, (ax_agents, ax_faa, ax_curve) = new_figure(1, 3)
    methods = result["methods"]
    _agents_panel(ax_agents, methods, result["group_names"])
    _bar_panel(ax_faa, methods, "faa", "FAA (lower is fairer)", f"FAA over {len(result['seeds'])} seeds")
    _curve_panel(ax_curve, methods)
    fig.suptitle("linear task: exact excess losses ||theta - w_i||^2", fontsize=10)
    return fig


def plot_sweep_k(result: dict):
    """FOCUS's FAA and benign excess loss against the number of clusters K (K = 1 is FedAvg)."""
    fig, (ax, ax_ex) = new_figure(1, 2)
    ks = sorted(int(k) for k in result["sweep_k"])
    for a, key, label in ((ax, "faa", "FAA (lower is fairer)"), (ax_ex, "benign_excess", "benign agents' mean excess loss")):
        stats = [mean_error_bar(result["sweep_k"][k][key]) for k in ks]
        a.errorbar(ks, [s[0] for s in stats], yerr=[[s[1] for s in stats], [s[2] for s in stats]], marker="o",
                   color=METHOD_COLORS["focus"], capsize=3, label="FOCUS")
        a.axvline(result["groups"], color="k", lw=0.8, ls="--", label=f"groups of agents ({result['groups']})")
        a.set(xlabel="clusters K", ylabel=label, xticks=ks, yscale="log")
        a.legend(frameon=False, fontsize=7)
    ax.set_title("K = 1 is FedAvg")
    return fig


def plot_sweep_noisy(result: dict):
    """FAA and benign excess loss of FOCUS and FedAvg against the number of noisy agents."""
    fig, (ax, ax_ex) = new_figure(1, 2)
    counts = sorted(int(n) for n in result["sweep_noisy"])
    for a, key, label in ((ax, "faa", "FAA (lower is fairer)"), (ax_ex, "benign_excess", "benign agents' mean excess loss")):
        for m in ("fedavg", "focus"):
            stats = [mean_error_bar(result["sweep_noisy"][n][m][key]) for n in counts]
            a.errorbar(counts, [s[0] for s in stats], yerr=[[s[1] for s in stats], [s[2] for s in stats]],
                       marker="o", color=METHOD_COLORS[m], capsize=3, label=METHOD_LABELS[m])
        a.set(xlabel="noisy agents (of all agents)", ylabel=label, xticks=counts, yscale="log")
        a.legend(frameon=False, fontsize=7)
    ax.set_title("FOCUS: K = groups of agents")
    return fig


# --- 04: digits and text ---------------------------------------------------------------------------

def plot_task(result: dict, name: str):
    """One task: FAA and benign accuracy per method over seeds, and FAA per round."""
    fig, (ax_faa, ax_acc, ax_curve) = new_figure(1, 3)
    methods = result[name]["methods"]
    _bar_panel(ax_faa, methods, "faa", "FAA (lower is fairer)", f"FAA over {len(result['seeds'])} seeds")
    _bar_panel(ax_acc, methods, "benign_accuracy", "benign agents' accuracy", "accuracy (benign agents)")
    lo = min(min(m["benign_accuracy"]) for m in methods.values())
    ax_acc.set_ylim(max(0.0, lo - 0.1), 1.0)
    _curve_panel(ax_curve, methods)
    fig.suptitle(f"{name}: groups {', '.join(result[name]['group_names'])}", fontsize=10)
    return fig
