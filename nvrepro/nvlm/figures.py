"""Figures of the NVLM notebooks: pages and their tiles, the tile-tag arms, D vs X vs H, retention."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from nvrepro.core.tooling.figures import interval_lengths, new_figure
from nvrepro.core.vision.tiling import Tiles

ARM_COLORS = {"low_res": "#9e9e9e", "none": "#64b5f6", "1d": "#1565c0", "2d_grid": "#ef6c00", "2d_bbox": "#c62828"}
ARCH_COLORS = {"D": "#1565c0", "X": "#2e7d32", "H": "#ef6c00"}


def show_tiles(tiles: Tiles, tags: list[str] | None = None, title: str = ""):
    """The tiles in their grid and the thumbnail beside them, each titled with its tag."""
    cols, rows = tiles.grid
    extra = 1 if tiles.thumbnail is not None else 0
    fig, axes = new_figure(rows, cols + extra, squeeze=False)
    fig.set_size_inches(1.7 * (cols + extra), 1.8 * rows + 0.4)
    for k, tile in enumerate(tiles.tiles):
        ax = axes[k // cols][k % cols]
        ax.imshow(tile, interpolation="nearest")
        ax.set_title(tags[k] if tags and tags[k] else f"tile {k + 1}", fontsize=7)
    for r in range(rows):
        if extra:
            ax = axes[r][cols]
            if r == 0:
                ax.imshow(tiles.thumbnail, interpolation="nearest")
                ax.set_title(tags[-1] if tags and tags[-1] else "thumbnail", fontsize=7)
            else:
                ax.set_visible(False)
    for ax in np.ravel(axes):
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def _bar(ax, names, estimates, colors, labels, ylabel):
    values = [e.value for e in estimates]
    ax.bar(range(len(names)), values, yerr=interval_lengths(estimates), color=[colors[n] for n in names], capsize=3)
    ax.set_xticks(range(len(names)), [labels[n] for n in names], rotation=20, ha="right", fontsize=7)
    ax.set_ylabel(ylabel)


def plot_tile_tags(metrics: Mapping[str, Any]):
    """Exact match per arm (95% bootstrap intervals over held-out questions), per question kind, and the
    paper's OCRBench scores for the same arms."""
    from nvrepro.nvlm import tile_tag_experiment as exp

    arms = list(exp.ARMS)
    fig, (ax, ax_kind, ax_paper) = new_figure(1, 3)
    _bar(ax, arms, [exp.accuracy(metrics, a) for a in arms], ARM_COLORS, exp.ARM_LABELS, "exact match (held-out forms)")
    ax.set_title(f"NVLM-D, {len(metrics['seeds'])} seed(s), {len(metrics['kinds'])} questions", fontsize=9)
    ax.set_ylim(bottom=0)
    kinds = sorted(set(metrics["kinds"]))
    width = 0.8 / len(arms)
    for i, arm in enumerate(arms):
        per_seed = metrics["arms"][arm]["by_kind"]
        values = [np.mean([run.get(k, np.nan) for run in per_seed]) for k in kinds]
        ax_kind.bar(np.arange(len(kinds)) + (i - (len(arms) - 1) / 2) * width, values, width, color=ARM_COLORS[arm],
                    label=exp.ARM_LABELS[arm])
    ax_kind.set_xticks(range(len(kinds)), kinds)
    ax_kind.set(ylabel="exact match", title="by question kind", ylim=(0, None))
    ax_kind.legend(frameon=False, fontsize=6)
    ax_paper.bar(range(len(arms)), [exp.PAPER_OCRBENCH[a] for a in arms], color=[ARM_COLORS[a] for a in arms])
    ax_paper.set_xticks(range(len(arms)), [exp.ARM_LABELS[a] for a in arms], rotation=20, ha="right", fontsize=7)
    ax_paper.set(ylim=(500, 850), ylabel="OCRBench", title="paper, Table 1 (NVLM-D 34B)")
    return fig


def plot_architectures(metrics: Mapping[str, Any]):
    """Exact match per architecture (95% intervals), training samples/s per timed round, and decoder
    sequence length, each next to the paper's number."""
    from nvrepro.nvlm import architecture_experiment as exp

    archs = list(exp.ARCHITECTURES)
    labels = {a: f"NVLM-{a}" for a in archs}
    fig, (ax_acc, ax_speed, ax_len) = new_figure(1, 3)
    _bar(ax_acc, archs, [exp.accuracy(metrics, a) for a in archs], ARCH_COLORS, labels, "exact match (held-out forms)")
    ax_acc.set(ylim=(0, None), title=f"accuracy, {len(metrics['seeds'])} seed(s)")
    for i, a in enumerate(archs):
        rates = metrics["samples_per_s"][a]
        ax_speed.scatter([i] * len(rates), rates, color=ARCH_COLORS[a], s=14, alpha=0.7)
        ax_speed.hlines(np.median(rates), i - 0.3, i + 0.3, color=ARCH_COLORS[a])
    ax_speed.set_xticks(range(len(archs)), [labels[a] for a in archs])
    ax_speed.set(ylabel="training samples/s (toy, CPU)", ylim=(0, None),
                 title="throughput; paper (34B): " + " / ".join(f"{a} {exp.PAPER_SAMPLES_PER_S[a]}" for a in archs))
    ax_speed.title.set_fontsize(8)
    ax_len.bar(range(len(archs)), [metrics["sequence_length"][a] for a in archs], color=[ARCH_COLORS[a] for a in archs])
    ax_len.set_xticks(range(len(archs)), [labels[a] for a in archs])
    ax_len.set(ylabel="decoder tokens per example (mean)", title="what the decoder carries")
    return fig


def plot_retention(metrics: Mapping[str, Any]):
    """Text exact match before and after each SFT arm, and forms exact match after it (95% intervals)."""
    from nvrepro.nvlm import retention_experiment as exp

    stages = ["before", *exp.ARMS]
    colors = {"before": "#9e9e9e", "forms_only": "#c62828", "text_blend": "#2e7d32"}
    fig, (ax_text, ax_forms) = new_figure(1, 2)
    _bar(ax_text, stages, [exp.text_score(metrics, s) for s in stages], colors, exp.ARM_LABELS,
         "exact match, held-out text instructions")
    ax_text.set(ylim=(0, None), title="text-only skills")
    _bar(ax_forms, list(exp.ARMS), [exp.forms_score(metrics, a) for a in exp.ARMS], colors, exp.ARM_LABELS,
         "exact match, held-out forms")
    ax_forms.set(ylim=(0, None), title="the multimodal task")
    return fig
