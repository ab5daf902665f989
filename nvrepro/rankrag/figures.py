"""Plots for the RankRAG track, one section per notebook. Each takes the plain-data result of its
experiment module's ``run`` and returns the figure; the notebook saves it with the module's claim.
Error bars are 95% bootstrap intervals of a mean over the test questions."""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import NullFormatter

from nvrepro.core.tooling.figures import mean_error_bar, new_figure

_SYSTEM_STYLE = {"chatqa": dict(color="C7", marker="s"), "rankrag_no_rerank": dict(color="C0", marker="v"),
                 "reranker": dict(color="C2", marker="^"), "rankrag": dict(color="C3", marker="o")}
_RANKER_STYLE = {"retriever": "C7", "reranker": "C2", "rankrag": "C3"}
_STAGE_COLORS = {"retrieve": "C7", "rerank": "C3", "generate": "C0"}


def _errorbar(ax, xs, series, **style):
    stats = [mean_error_bar(v) for v in series]
    ax.errorbar(xs, [s[0] for s in stats], yerr=[[s[1] for s in stats], [s[2] for s in stats]], capsize=3, **style)


# --- 01: the world, the blend, the retriever ------------------------------------------------------

def plot_retriever_recall(result: dict):
    """Recall@k of the MiniLM retriever against k, single-hop and two-hop questions apart (left);
    rows of each task in the stage II blend at several ranking shares (right)."""
    from nvrepro.rankrag.blend import TASKS
    from nvrepro.rankrag.blend_experiment import K_SHOWN

    fig, (ax, ax_blend) = new_figure(1, 2)
    ks = result["ks"]
    for hops, color in (("1", "C0"), ("2", "C1")):
        rec = result["recall"][hops]
        if rec["questions"]:
            _errorbar(ax, ks, [rec[str(k)] for k in ks], color=color, marker="o",
                      label=f"{'one' if hops == '1' else 'two'}-passage questions ({rec['questions']})")
    ax.axvline(K_SHOWN, color="C3", lw=0.8, ls="--")
    ax.set(xscale="log", xlabel="k (passages kept)", ylabel="recall@k (gold passages in the top k)", ylim=(0, 1.05),
           title=f"MiniLM over {result['passages']} passages, held-out questions")
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.legend(frameon=False, fontsize=7, loc="lower right")
    shares = sorted(result["blends"], key=float)
    tasks = [t for t in TASKS if any(t in b for b in result["blends"].values())]
    bottom = np.zeros(len(shares))
    for i, task in enumerate(tasks):
        counts = np.array([result["blends"][s].get(task, 0) for s in shares], dtype=float)
        ax_blend.bar(range(len(shares)), counts, bottom=bottom, color=f"C{i}", label=task)
        bottom += counts
    ax_blend.set_xticks(range(len(shares)), shares)
    ax_blend.set(xlabel="ranking share of the stage II blend", ylabel="rows", title="What each blend holds")
    ax_blend.legend(frameon=False, fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    return fig


# --- 02: the experiment --------------------------------------------------------------------------

def plot_em_vs_k(result: dict):
    """Exact match against the number of passages kept, one line per system."""
    from nvrepro.rankrag.experiment import SYSTEMS

    fig, ax = new_figure()
    ks = result["ks"]
    for name, by_k in result["systems"].items():
        _errorbar(ax, ks, [by_k[str(k)]["em"] for k in ks], label=SYSTEMS[name], **_SYSTEM_STYLE[name])
    ax.set(xlabel=f"k (passages in the answer prompt, of n = {result['n']} retrieved)", ylabel="exact match",
           title=f"{len(result['questions'])} held-out questions", ylim=(0, 1.05))
    ax.set_xticks(ks)
    ax.legend(frameon=False, fontsize=7)
    return fig


def plot_recall(result: dict):
    """Recall@k for each k of the sweep, before re-ranking (the retriever) and after (the dedicated
    re-ranker, RankRAG)."""
    from nvrepro.rankrag.experiment import RANKERS

    fig, ax = new_figure()
    ks = result["ks"]
    width = 0.8 / len(result["recall"])
    for i, (ranker, values) in enumerate(result["recall"].items()):
        stats = [mean_error_bar(values[f"R@{k}"]) for k in ks]
        ax.bar(np.arange(len(ks)) + (i - (len(result["recall"]) - 1) / 2) * width, [s[0] for s in stats], width,
               yerr=[[s[1] for s in stats], [s[2] for s in stats]], capsize=2, color=_RANKER_STYLE[ranker],
               label=RANKERS[ranker])
    ax.set_xticks(range(len(ks)), [f"recall@{k}" for k in ks])
    ax.set(ylabel="share of gold passages kept", ylim=(0, 1.1), title=f"Re-ranking the top {result['n']}")
    ax.legend(frameon=False, fontsize=7, loc="lower right")
    return fig


def plot_share_curve(result: dict):
    """Exact match and recall@k against the ranking share of the stage II blend (each model answers
    from its own top-k; share 0 from the retriever's)."""
    fig, ax = new_figure()
    shares = sorted(result["shares"], key=float)
    xs = [float(s) for s in shares]
    _errorbar(ax, xs, [result["shares"][s]["em"] for s in shares], color="C3", marker="o", label="exact match")
    _errorbar(ax, xs, [result["shares"][s]["recall"] for s in shares], color="C2", marker="^", ls="--",
              label=f"recall@{result['k']} of its own ranking")
    ax.set(xlabel="ranking share of the stage II blend", ylabel="share of held-out questions", ylim=(0, 1.05),
           title=f"How much ranking data? (k = {result['k']})")
    ax.legend(frameon=False, fontsize=7)
    return fig


def plot_time_vs_n(result: dict):
    """Seconds per question of each stage against n, RankRAG (stacked bars) and the retriever-only
    pipeline (line), on the same questions and generator."""
    fig, ax = new_figure()
    ns = sorted(result["timing"]["rankrag"], key=int)
    bottom = np.zeros(len(ns))
    for stage, color in _STAGE_COLORS.items():
        values = np.array([result["timing"]["rankrag"][n].get(stage, 0.0) for n in ns]) * 1000
        ax.bar(range(len(ns)), values, bottom=bottom, color=color, label=f"RankRAG: {stage}")
        bottom += values
    ax.plot(range(len(ns)), [result["timing"]["retriever_only"][n]["total"] * 1000 for n in ns], "k--o",
            label="retriever only (no re-ranking)")
    ax.set_xticks(range(len(ns)), ns)
    ax.set(xlabel="n (passages retrieved and scored)", ylabel="ms per question",
           title=f"The cost of re-ranking ({result['plan']['time_questions']} questions, k = {result['k']})")
    ax.legend(frameon=False, fontsize=7)
    return fig
