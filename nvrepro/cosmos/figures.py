"""Figures of the Cosmos notebooks: the generated clips, accuracy per task and stage against chance and
the paper, the format rate, and GRPO's reward and KL curves."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from nvrepro.core.tooling.figures import interval_lengths, new_figure

STAGE_COLORS = {"caption": "#9e9e9e", "sft": "#1565c0", "rl": "#2e7d32"}
# Cosmos-Reason1-8B on the intuitive-physics benchmark, average of the three tasks (the paper's intuitive-physics table): the base VLM,
# after Physical AI SFT, after Physical AI RL.
PAPER_8B = {"caption": 42.3, "sft": 65.7, "rl": 68.7}


def show_clips(items: Sequence[tuple[np.ndarray, str]], title: str = ""):
    """One row per clip: its frames ``(n, S, S, 3)`` left to right, the row's label (question and answer)
    above the first frame."""
    cols = max(len(frames) for frames, _ in items)
    fig, axes = new_figure(len(items), cols, squeeze=False)
    fig.set_size_inches(1.6 * cols, 1.9 * len(items) + 0.3)
    for r, (frames, label) in enumerate(items):
        for c in range(cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(frames):
                ax.imshow(frames[c], interpolation="nearest")
                ax.set_xlabel(f"{c + 1}", fontsize=7)
            else:
                ax.set_visible(False)
        axes[r][0].set_title(label, fontsize=7, loc="left")
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def plot_accuracy(metrics: Mapping[str, Any]):
    """Left: accuracy per task after each stage (95% bootstrap intervals over held-out questions), chance
    as a dashed line; right: the average against the paper's 8B numbers (different benchmark, same
    direction)."""
    from nvrepro.cosmos import pipeline_experiment as exp

    tasks = list(metrics["chance"])
    fig, (ax, ax_paper) = new_figure(1, 2)
    width = 0.26
    for k, stage in enumerate(exp.STAGES):
        estimates = [exp.accuracy(metrics, stage, t) for t in tasks] + [exp.accuracy(metrics, stage)]
        xs = np.arange(len(tasks) + 1) + (k - 1) * width
        ax.bar(xs, [e.value for e in estimates], width,
               yerr=interval_lengths(estimates),
               color=STAGE_COLORS[stage], capsize=2, label=exp.STAGE_LABELS[stage])
    for i, t in enumerate(tasks):
        ax.plot([i - 1.6 * width, i + 1.6 * width], [metrics["chance"][t]] * 2, "k--", lw=1)
    ax.plot([], [], "k--", lw=1, label="chance")
    ax.set_xticks(range(len(tasks) + 1), [t.replace("_", " ") for t in tasks] + ["average"], fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy (held-out questions)")
    ax.set_title(f"toy, {len(metrics['seeds'])} seed(s), {len(metrics['tasks'])} questions", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    ours = [100 * exp.accuracy(metrics, s).value for s in exp.STAGES]
    xs = np.arange(len(exp.STAGES))
    ax_paper.plot(xs, ours, "o-", color="#1565c0", label="toy: average accuracy")
    ax_paper.plot(xs, [PAPER_8B[s] for s in exp.STAGES], "s--", color="#c62828",
                  label="paper: Cosmos-Reason1-8B, intuitive physics")
    ax_paper.set_xticks(xs, ["base / before SFT", "after SFT", "after RL"], fontsize=7)
    ax_paper.set_ylabel("average accuracy (%)")
    ax_paper.set_ylim(0, 100)
    ax_paper.legend(fontsize=7)
    ax_paper.set_title("direction: toy vs paper", fontsize=9)
    return fig


def plot_format(metrics: Mapping[str, Any]):
    """Share of well-formed ``<think>..</think><answer>..</answer>`` responses after each stage."""
    from nvrepro.cosmos import pipeline_experiment as exp

    fig, ax = new_figure()
    estimates = [exp.format_rate(metrics, s) for s in exp.STAGES]
    ax.bar(range(len(estimates)), [e.value for e in estimates],
           yerr=interval_lengths(estimates),
           color=[STAGE_COLORS[s] for s in exp.STAGES], capsize=3)
    for i, e in enumerate(estimates):
        ax.text(i, e.value + 0.03, f"{e.value:.2f}", ha="center", fontsize=8)
    ax.axhline(0.95, color="k", ls=":", lw=1, label="claim's 95%")
    ax.set_xticks(range(len(estimates)), [exp.STAGE_LABELS[s] for s in exp.STAGES])
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("well-formed responses")
    ax.legend(fontsize=7, loc="center left")
    return fig


def _smooth(values: Sequence[float], window: int) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if len(values) < window:
        return values
    return np.convolve(values, np.ones(window) / window, mode="valid")


def plot_curves(metrics: Mapping[str, Any]):
    """GRPO per step: the mean reward of the sampled responses (with its accuracy and format parts) and
    the KL to the reference model, one thin line per seed and a moving average."""
    fig, (ax_r, ax_kl) = new_figure(1, 2)
    window = max(1, len(metrics["curves"][0]) // 10)
    for s, history in enumerate(metrics["curves"]):
        steps = np.arange(1, len(history) + 1)
        for key, color, label in (("reward", "#2e7d32", "reward (accuracy + format)"),
                                  ("accuracy", "#1565c0", "accuracy part"), ("format", "#ef6c00", "format part")):
            values = [h[key] for h in history]
            ax_r.plot(steps, values, color=color, alpha=0.2, lw=0.8)
            smooth = _smooth(values, window)
            ax_r.plot(steps[len(steps) - len(smooth):], smooth, color=color, lw=1.8,
                      label=label if s == 0 else None)
        kl = [h["kl"] for h in history]
        ax_kl.plot(steps, kl, color="#6a1b9a", alpha=0.25, lw=0.8)
        smooth = _smooth(kl, window)
        ax_kl.plot(steps[len(steps) - len(smooth):], smooth, color="#6a1b9a", lw=1.8,
                   label="KL to the reference (k3, per token)" if s == 0 else None)
    ax_r.set_xlabel("GRPO step")
    ax_r.set_ylabel("mean over sampled responses")
    ax_r.legend(fontsize=7)
    ax_kl.set_xlabel("GRPO step")
    ax_kl.set_ylabel("nats per token")
    ax_kl.legend(fontsize=7)
    return fig
