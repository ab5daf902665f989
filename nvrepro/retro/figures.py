"""Plots for the RETRO track, one section per notebook. Each takes the plain-data result of its
experiment module's ``run`` and returns the figure; the notebook saves it with the module's claim."""

from __future__ import annotations

import numpy as np

from nvrepro.core.tooling.claims import finite
from nvrepro.core.tooling.figures import bars_with_intervals, interval_lengths, new_figure
from nvrepro.core.tooling.intervals import bootstrap_mean

_ARM = {"gpt": dict(color="C7", marker="s", label="GPT"), "retro": dict(color="C3", marker="o", label="Retro")}


# --- 01: the database ---------------------------------------------------------------------------

def plot_index_tradeoff(result: dict):
    """Recall@k against exact search vs queries per second, one point per index type (the claim's
    bar drawn: recall and the speed-up over exact search); top-1 similarity of every chunk right."""
    from nvrepro.retro.database_experiment import APPROXIMATE_LABEL, RECALL_BAR, SPEEDUP_BAR

    fig, (ax, ax_hist) = new_figure(1, 2)
    flat = next(r for r in result["indexes"] if r["factory"] == "Flat")
    for i, row in enumerate(result["indexes"]):
        est = bootstrap_mean(row["per_query_recall"]) if len(row["per_query_recall"]) > 1 else None
        color = "C3" if row["label"] == APPROXIMATE_LABEL else "k" if row is flat else f"C{i}"
        ax.errorbar(row["queries_per_second"], row["recall"], color=color, marker="o", capsize=3,
                    yerr=None if est is None else [[row["recall"] - est.low], [est.high - row["recall"]]])
        ax.annotate(row["label"], (row["queries_per_second"], row["recall"]), textcoords="offset points",
                    xytext=(5, -10), fontsize=7)
    ax.axhline(RECALL_BAR, color="C3", lw=0.8, ls="--")
    ax.axvline(SPEEDUP_BAR * flat["queries_per_second"], color="C3", lw=0.8, ls=":")
    ax.set(xscale="log", xlabel=f"queries / s ({result['threads']} thread)", ylabel=f"recall@{result['k']} vs exact",
           ylim=(min(0.0, ax.get_ylim()[0]), 1.05),
           title=f"{result['vectors']:,} MiniLM keys, {result['queries']} held-out chunks as queries")
    hist = result["top1_histogram"]
    ax_hist.stairs(hist["counts"], hist["edges"], fill=True, color="C0")
    ax_hist.set(xlabel="cosine similarity of the top neighbour (other documents)", ylabel="chunks",
                title="How close is each chunk's nearest neighbour?")
    return fig


# --- 02: the RETRO study ---------------------------------------------------------------------

def plot_study_perplexity(result: dict):
    """Held-out loss (nats per byte) against d_model for GPT and Retro, mean over held-out
    documents with 95% bootstrap intervals (left); the per-document gain at each width (right)."""
    from nvrepro.retro.study import gains, per_document_loss

    widths = sorted(result["widths"], key=int)
    fig, (ax_loss, ax_gain) = new_figure(1, 2)
    for arm in ("gpt", "retro"):
        est = [bootstrap_mean(per_document_loss(result["widths"][w][arm])) for w in widths]
        ax_loss.errorbar([int(w) for w in widths], [e.value for e in est],
                         yerr=interval_lengths(est), capsize=3, **_ARM[arm])
    ax_loss.set(xlabel="d_model", ylabel="held-out loss (nats / byte)", title="GPT vs Retro, same tokens",
                xticks=[int(w) for w in widths])
    ax_loss.legend(frameon=False)
    data = [gains(result, w) for w in widths]
    ax_gain.boxplot(data, tick_labels=widths, showfliers=True)
    ax_gain.axhline(0, color="k", lw=0.8, ls=":")
    ax_gain.set(xlabel="d_model", ylabel="GPT loss - Retro loss (nats / byte)",
                title=f"gain per held-out document ({len(data[0])} documents)")
    return fig


def plot_study_overlap(result: dict):
    """Per held-out document at the main width: Retro's gain over GPT against the overlap of the
    document with its retrieved neighbours, the threshold of the near-duplicate group marked."""
    from nvrepro.retro.study import gains, overlap_groups

    g = np.asarray(gains(result, result["main_width"]))
    overlap = np.asarray([o if finite(o) else np.nan for o in result["overlap"]], dtype=float)
    fig, ax = new_figure(1, 1)
    ax.scatter(overlap, g, s=14, color="C3", alpha=0.7)
    ax.axvline(result["overlap_threshold"], color="k", lw=0.8, ls="--")
    ax.axhline(0, color="k", lw=0.8, ls=":")
    for name, group, x in zip(("with near-duplicates", "without"), overlap_groups(result), (0.98, 0.02)):
        if len(group) >= 2:
            est = bootstrap_mean(g[group])
            ax.text(x, 0.97, f"{name}: {len(group)} docs\nmean gain {est.value:.3f} [{est.low:.3f}, {est.high:.3f}]",
                    transform=ax.transAxes, ha="right" if x > 0.5 else "left", va="top", fontsize=7)
    ax.set(xlabel=f"overlap with retrieved neighbours (share of {result['overlap_ngram']}-byte n-grams)",
           ylabel="GPT loss - Retro loss (nats / byte)",
           title=f"Where Retro gains (d_model {result['main_width']})")
    return fig


def plot_study_repetition(result: dict):
    """Repetition rate of greedy continuations per prompt, GPT against Retro (one point per prompt;
    below the diagonal: Retro repeats less)."""
    from nvrepro.retro.study import REPETITION_NGRAM

    rep = result["generation"]["repetition"]
    gpt, retro = ([r if finite(r) else np.nan for r in rep[arm]] for arm in ("gpt", "retro"))
    fig, ax = new_figure(1, 1)
    ax.scatter(gpt, retro, s=18, color="C3")
    ax.plot([0, 1], [0, 1], color="k", lw=0.8, ls=":")
    ax.set(xlim=(-0.03, 1.03), ylim=(-0.03, 1.03), xlabel="GPT repetition rate", ylabel="Retro repetition rate",
           title=f"Repeated word {REPETITION_NGRAM}-grams in {result['generation']['new_tokens']}-token continuations")
    return fig


# --- 03: RETRO++ and InstructRetro ---------------------------------------------------------------

# The arms each claim of nvrepro.retro.instruct compares, drawn in colour; the others in grey.
_QA_CLAIM_ARMS = {"retro_plus_plus": ("instructretro", "retro"), "instructretro_vs_gpt": ("instructretro", "gpt"),
                  "instructretro_encoder_ablation": ("instructretro", "instructretro_decoder")}


def plot_qa_exact_match(result: dict, claim_name: str):
    """Exact match on the test people's questions per arm (Wilson 95% intervals over questions),
    the two arms that ``claim_name`` compares in colour; per attribute on the right."""
    from nvrepro.core.tooling.intervals import wilson
    from nvrepro.retro.instruct import ARMS

    compared = _QA_CLAIM_ARMS[claim_name]
    arms = list(result["em"])
    fig, (ax, ax_attr) = new_figure(1, 2)
    for i, arm in enumerate(arms):
        values = result["em"][arm]
        est = wilson(int(round(sum(values))), len(values))
        color = ("C3" if arm == compared[0] else "C0") if arm in compared else "0.75"
        bars_with_intervals(ax, [i], [est], 0.8, capsize=4, color=color)
    ax.set_xticks(range(len(arms)), [ARMS[a].replace(" (", "\n(") for a in arms], fontsize=7)
    ax.set(ylabel="exact match on test questions", ylim=(0, 1),
           title=f"{len(result['questions'])} questions about unseen people")
    attributes = sorted(set(result["attributes"]))
    width = 0.8 / len(compared)
    for j, arm in enumerate(compared):
        em = np.asarray(result["em"][arm], dtype=float)
        ax_attr.bar(np.arange(len(attributes)) + j * width, [em[[a == x for x in result["attributes"]]].mean()
                                                             for a in attributes], width,
                    color="C3" if j == 0 else "C0", label=ARMS[arm])
    ax_attr.set_xticks(np.arange(len(attributes)) + width / 2, attributes)
    ax_attr.set(ylim=(0, 1), ylabel="exact match", title="by attribute")
    ax_attr.legend(frameon=False, fontsize=7)
    return fig
