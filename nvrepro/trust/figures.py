"""Figures and tables of the DecodingTrust report: the radar chart of the eight perspective scores per model
(the paper's summary figure), and the same numbers as a table."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from nvrepro.core.tooling.figures import new_figure
from nvrepro.trust.registry import NAMES, SHORT_LABELS

MODEL_COLORS = ("#2e7d32", "#c62828", "#1565c0", "#ef6c00", "#6a1b9a", "#00838f")


def plot_radar(scores: Mapping[str, Mapping[str, float]], title: str = "", errors: Mapping[str, Mapping[str, tuple]] | None = None):
    """One radar chart: an axis per perspective (0 at the centre, 100 at the rim; higher = more trustworthy),
    one closed polygon per model. ``scores[model][perspective]``; perspectives missing for every model are left
    out. ``errors[model][perspective] = (low, high)`` draws each score's interval as a radial bar."""
    names = [n for n in NAMES if any(n in s for s in scores.values())]
    if len(names) < 3:
        raise ValueError(f"a radar chart needs at least 3 perspectives, got {names}")
    angles = np.linspace(0, 2 * np.pi, len(names), endpoint=False)
    fig, ax = new_figure(subplot_kw={"projection": "polar"})
    fig.set_size_inches(5.2, 4.6)
    for i, (model, values) in enumerate(scores.items()):
        color = MODEL_COLORS[i % len(MODEL_COLORS)]
        r = np.array([values.get(n, np.nan) for n in names], dtype=float)
        ax.plot(np.append(angles, angles[0]), np.append(r, r[0]), "-o", color=color, lw=1.6, ms=3, label=model)
        ax.fill(np.append(angles, angles[0]), np.append(r, r[0]), color=color, alpha=0.12)
        for a, n in zip(angles, names):
            if errors and n in errors.get(model, {}):
                low, high = errors[model][n]
                ax.plot([a, a], [low, high], color=color, lw=3, alpha=0.5)
    ax.set_xticks(angles, [SHORT_LABELS[n] for n in names], fontsize=7)
    ax.set_ylim(0, 100)
    ax.set_yticks([25, 50, 75, 100], ["25", "50", "75", "100"], fontsize=6)
    ax.legend(loc="upper right", bbox_to_anchor=(1.32, 1.12), fontsize=7, frameon=False)
    if title:
        ax.set_title(title, fontsize=9, pad=16)
    return fig


def score_table(scores: Mapping[str, Mapping[str, float]]) -> str:
    """The scores as text: a row per perspective, a column per model, and the average."""
    models = list(scores)
    names = [n for n in NAMES if any(n in s for s in scores.values())]
    width = max(12, *(len(m) + 2 for m in models))
    lines = [f"{'perspective':<22}" + "".join(f"{m:>{width}}" for m in models)]
    for n in names:
        lines.append(f"{SHORT_LABELS[n]:<22}" + "".join(
            f"{scores[m][n]:>{width}.1f}" if n in scores[m] else f"{'-':>{width}}" for m in models))
    lines.append(f"{'average':<22}" + "".join(
        f"{np.mean([scores[m][n] for n in names if n in scores[m]]):>{width}.1f}" for m in models))
    return "\n".join(lines)


def plot_report(metrics: Mapping) -> "object":
    """The safe-vs-unsafe report (:mod:`nvrepro.trust.report_experiment`): left, the radar of the eight scores
    per model (seed means); right, safe - unsafe per perspective with its 95% interval (the claim: every bar
    right of 0)."""
    import matplotlib.pyplot as plt

    from nvrepro.core.tooling.figures import figure_style

    means = {b: {n: sum(v) / len(v) for n, v in per.items()} for b, per in metrics["scores"].items()}
    names = [n for n in NAMES if n in metrics["difference"]]
    with figure_style():
        fig = plt.figure(figsize=(10.5, 4.4), constrained_layout=True)
        ax = fig.add_subplot(1, 2, 1, projection="polar")
        bars = fig.add_subplot(1, 2, 2)
    angles = np.linspace(0, 2 * np.pi, len(names), endpoint=False)
    for i, (model, values) in enumerate(means.items()):
        color = MODEL_COLORS[i % len(MODEL_COLORS)]
        r = np.array([values[n] for n in names])
        ax.plot(np.append(angles, angles[0]), np.append(r, r[0]), "-o", color=color, lw=1.6, ms=3,
                label=f"{model} toy model")
        ax.fill(np.append(angles, angles[0]), np.append(r, r[0]), color=color, alpha=0.12)
    ax.set_xticks(angles, [SHORT_LABELS[n] for n in names], fontsize=7)
    ax.set_ylim(0, 100)
    ax.set_yticks([25, 50, 75, 100], ["25", "50", "75", "100"], fontsize=6)
    ax.legend(loc="lower left", bbox_to_anchor=(-0.25, -0.18), fontsize=7, frameon=False)
    ax.set_title("DecodingTrust scores (0-100, higher = more trustworthy)", fontsize=9, pad=14)
    d = [metrics["difference"][n] for n in names]
    ys = np.arange(len(names))[::-1]
    bars.barh(ys, [e["value"] for e in d], xerr=[[e["value"] - e["low"] for e in d], [e["high"] - e["value"] for e in d]],
              color="#546e7a", capsize=3)
    bars.axvline(0, color="k", lw=0.8)
    bars.set_yticks(ys, [SHORT_LABELS[n] for n in names], fontsize=8)
    bars.set_xlabel("score, safe - unsafe (95% interval: probes resampled within scenarios)")
    bars.set_title("the harness tells them apart where every bar is right of 0", fontsize=9)
    return fig


def plot_privacy(metrics: Mapping) -> "object":
    """Leak rate of training-data emails against how often each was repeated in training (log2 axis), per model,
    with Wilson intervals over people and seeds (:mod:`nvrepro.trust.privacy_experiment`)."""
    fig, ax = new_figure()
    for i, behaviour in enumerate(("safe", "unsafe")):
        rates = metrics["rates"][behaviour]
        ks = sorted(int(k) for k in rates)
        est = [rates[str(k)] for k in ks]
        ax.errorbar(ks, [e["value"] for e in est], yerr=[[e["value"] - e["low"] for e in est],
                                                          [e["high"] - e["value"] for e in est]],
                    fmt="-o", ms=4, capsize=3, color=MODEL_COLORS[i], label=f"{behaviour} toy model")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("times the email appeared in the training data")
    ax.set_ylabel("share of emails extracted (greedy)")
    ax.set_title("memorisation grows with repetition", fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    return fig


def plot_fairness(metrics: Mapping) -> "object":
    """M_dpd against the base-rate parity of the few-shot demonstrations, per model
    (:mod:`nvrepro.trust.fairness_experiment`); the unsafe model's gain (largest parity - 0) with its interval in
    the legend."""
    fig, ax = new_figure()
    parities = metrics["parities"]
    for i, behaviour in enumerate(("safe", "unsafe")):
        values = metrics["dpd"][behaviour]
        ys = [values[p] if p in values else values[str(p)] for p in parities]
        g = metrics["gain"][behaviour]
        ax.plot(parities, ys, "-o", ms=4, color=MODEL_COLORS[i],
                label=f"{behaviour}: gain {g['value']:+.2f} [{g['low']:+.2f}, {g['high']:+.2f}]")
    ax.set_xlabel("base-rate parity of the demonstrations, P(y=1 | Male) - P(y=1 | Female)")
    ax.set_ylabel("demographic parity difference M_dpd")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title("few-shot demonstrations move the model's parity", fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    return fig
