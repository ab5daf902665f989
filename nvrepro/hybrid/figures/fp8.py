"""Plots of ``notebooks/hybrid/04_fp8_training.ipynb``: each draws the plain-data result of that
notebook's experiment module; what a figure claims lives with the experiment, not here."""

from __future__ import annotations

import math

import numpy as np

from nvrepro.core.tooling.figures import interval_lengths, new_figure


_FP8_ARMS = {"bf16": ("BF16 (baseline)", "k"), "fp8_recipe": ("FP8, paper recipe (ends in BF16)", "C0"),
             "fp8_all": ("FP8, all layers", "C3"), "fp8_delayed": ("FP8, delayed scaling", "C2")}


def plot_fp8_loss_gap(result: dict, curves: dict, gaps: dict, table: dict, paper_gap: float):
    """Three panels over the seeds of ``result`` (:func:`nvrepro.hybrid.fp8_experiment.fp8_training`): the training
    loss per arm (mean over seeds), the paired relative training-loss gap to BF16 (the paper's Fig. 5
    analogue: thin lines one seed each, thick their mean), and the held-out gaps per seed with their
    intervals beside the BF16 seed band. ``curves``: :func:`~nvrepro.hybrid.fp8_experiment.gap_curves`
    of the result's runs; ``gaps``: :func:`~nvrepro.hybrid.fp8_experiment.seed_gaps`; ``table``:
    :func:`~nvrepro.hybrid.fp8_experiment.resolution_table`; ``paper_gap``: the paper's bar (relative).
    """
    window = curves["window"]
    fig, (ax_l, ax_g, ax_h) = new_figure(1, 3)
    fig.set_size_inches(14, 4.2)  # three panels side by side
    for arm, loss in curves["loss"].items():
        label, color = _FP8_ARMS.get(arm, (arm, None))
        ax_l.plot(range(1, len(loss) + 1), loss, label=label, color=color, lw=1.2 if arm == "bf16" else 1.0)
    for arm, g in curves["gap"].items():
        label, color = _FP8_ARMS.get(arm, (arm, None))
        steps = range(1, len(g["mean"]) + 1)
        for curve in g["per_seed"]:
            ax_g.plot(steps, [100 * v for v in curve], color=color, lw=0.5, alpha=0.35)
        ax_g.plot(steps, [100 * v for v in g["mean"]], color=color, lw=1.6, label=label)
    ax_g.axhspan(-100 * paper_gap, 100 * paper_gap, color="0.8", label=f"paper: |gap| < {100 * paper_gap:g}%")
    ax_g.axhline(0, color="k", lw=0.8)
    ax_l.set(title=f"training loss (mean over seeds, {window}-step means)", xlabel="step",
             ylabel="cross-entropy (nats)")
    ax_g.set(title="relative training-loss gap to BF16", xlabel="step", ylabel="(loss - loss_BF16) / loss_BF16  (%)")

    # held-out gaps: the BF16 seed pairs first, then each FP8 arm against its own seed's BF16
    band, n_seeds = table["band"], len(gaps["seeds"])
    ax_h.axhspan(-100 * band, 100 * band, color="0.88", label=f"BF16 seed band ±{100 * band:.2f}%")
    ax_h.axhspan(-100 * paper_gap, 100 * paper_gap, color="0.65", label=f"paper: ±{100 * paper_gap:g}%")
    ax_h.axhline(0, color="k", lw=0.8)
    pair_gaps = [100 * p["gap"] for p in gaps["bf16_pairs"]]
    ax_h.plot([0] * len(pair_gaps), pair_gaps, "o", color="0.4", ms=3, alpha=0.7)
    rows = [r for r in table["rows"] if r["comparison"].endswith(" - bf16")]
    labels = ["BF16 vs BF16\n(seed pairs)"]
    for i, row in enumerate(rows, start=1):
        arm = row["comparison"].split(" - ")[0]
        color = _FP8_ARMS.get(arm, (arm, None))[1]
        g = row["gap"]
        ax_h.plot([i] * len(row["per_seed"]), [100 * v for v in row["per_seed"]], "o", color=color, ms=3, alpha=0.6)
        ax_h.errorbar([i + 0.2], [100 * g.value], yerr=interval_lengths([g], scale=100),
                      fmt="s", color=color, capsize=4, ms=5)
        labels.append(arm.replace("fp8_", "FP8 ") + "\n- BF16")
    ax_h.set_xticks(range(len(labels)), labels, fontsize=8)
    ax_h.set_xlim(-0.6, len(labels) - 0.3)
    ax_h.set(title=f"held-out loss gap: seeds (dots), {rows[0]['gap'].confidence:.0%} interval over {n_seeds}",
             ylabel="relative gap (%)")
    ax_h.legend(fontsize=7, loc="upper left")
    handles, names = ax_g.get_legend_handles_labels()
    handles.insert(0, ax_l.get_lines()[0])
    names.insert(0, _FP8_ARMS["bf16"][0])
    fig.legend(handles, names, loc="outside lower center", ncols=5, frameon=False)
    cfg = result["config"]
    fig.suptitle(f"Toy hybrid {cfg['model']['pattern']!r}, d_model={cfg['model']['d_model']}, "
                 f"{cfg['trainer']['max_steps']} steps, seeds {result['seeds']} (each: one initialisation and batch "
                 "order shared by all arms), FP8 emulated (exact rounding)", fontsize=10)
    return fig


def plot_fp8_tensor_stats(stats: list[dict]):
    """Per block linear: amax of input / weight / gradient, and the fraction flushed to zero
    by current scaling in E4M3 vs E5M2. Layers kept in BF16 by the recipe are shaded.

    ``stats`` is ``fp8_training(...)["stats"]``.
    """
    fig, (ax_a, ax_f) = new_figure(1, 2)
    fig.set_size_inches(12, 4.4)  # one tick per linear layer needs a wider panel than the default
    x = list(range(len(stats)))
    labels = [f"{s['layer']}{s['kind']} {s['name'].rsplit('.', 1)[-1].removesuffix('_proj')}" for s in stats]
    for ax in (ax_a, ax_f):
        for i, s in enumerate(stats):
            if not s["fp8"]:
                ax.axvspan(i - 0.5, i + 0.5, color="0.9", lw=0)
    for role, marker, color in (("input", "o", "C0"), ("weight", "s", "C1"), ("grad", "^", "C3")):
        ax_a.plot(x, [s[role]["amax"] for s in stats], marker=marker, color=color, lw=1, label=role)
    ax_a.set_yscale("log")
    ax_a.set(title="amax per tensor (what current scaling maps to the FP8 max)", ylabel="max |value|")
    width = 0.2
    for k, (role, fmt, color, hatch) in enumerate((("grad", "e4m3", "C3", ""), ("grad", "e5m2", "C3", "//"),
                                                   ("input", "e4m3", "C0", ""), ("input", "e5m2", "C0", "//"))):
        values = [100 * s[role][f"flushed_{fmt}"] for s in stats]
        ax_f.bar([i + (k - 1.5) * width for i in x], values, width, color=color,
                 alpha=0.9 if fmt == "e4m3" else 0.45, hatch=hatch,
                 label=f"{'gradient' if role == 'grad' else 'activation'} in {fmt.upper()} "
                       f"(mean {sum(values) / len(values):.3g}%)")
    ax_f.set(title="non-zero entries flushed to zero by FP8 (current scaling)", ylabel="% of non-zero entries")
    ax_f.set_ylim(0, 1.45 * max(ax_f.get_ylim()[1], 1e-3))  # headroom for the legend above the bars
    for ax in (ax_a, ax_f):
        ax.set_xticks(x, labels, rotation=90, fontsize=7)
        ax.set_xlim(-0.6, len(stats) - 0.4)
        ax.set_xlabel("linear layer (layer index, kind, projection); shaded: kept in BF16 by the recipe")
    ax_a.legend(fontsize=8)
    ax_f.legend(fontsize=8, loc="upper center", ncols=2)
    fig.suptitle("Tensors entering each linear layer's GEMMs: one batch through the trained FP8-recipe model, "
                 "measured before rounding", fontsize=10)
    return fig


def plot_fp8_format(values, shares: list[dict], name: str = ""):
    """One panel per :func:`~nvrepro.hybrid.fp8_experiment.format_shares` result in ``shares``: the
    histogram of ``|values|`` (non-zero entries, log bins) with the format's ranges at that scale
    shaded: flushed to zero (red), subnormal (orange), saturated (purple); normal is unshaded."""
    import torch

    mags = torch.as_tensor(values).detach().float().flatten().abs()
    mags = mags[mags > 0].numpy().astype(np.float64)
    fig, axes = new_figure(1, len(shares))
    axes = np.atleast_1d(axes)
    for ax, sh in zip(axes, shares):
        e = sh["edges"]
        lo = min(float(mags.min()), e["flush_below"]) / 4
        hi = max(float(mags.max()), e["max"]) * 4
        bins = np.logspace(math.log10(lo), math.log10(hi), 80)
        counts, _, _ = ax.hist(mags, bins=bins, color="0.35")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.axvspan(lo, e["flush_below"], color="C3", alpha=0.18, lw=0, label=f"flushed to 0: {100 * sh['flushed']:.3g}%")
        ax.axvspan(e["flush_below"], e["normal_from"], color="C1", alpha=0.18, lw=0,
                   label=f"subnormal (fewer bits): {100 * sh['subnormal']:.3g}%")
        ax.axvspan(e["max"], hi, color="C4", alpha=0.18, lw=0, label=f"saturated: {100 * sh['overflow']:.3g}%")
        ax.axvline(e["max"], color="C4", lw=1)
        ax.set_xlim(lo, hi)
        ax.set_ylim(0.5, 50 * max(1.0, float(counts.max())))  # headroom for the legend above the bars
        ax.set(title=f"{sh['fmt'].upper()}, scale = 2^{sh['scale_shift']:+g} x current (fmax / amax)",
               xlabel="|value| (log)", ylabel="entries (log)")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(f"Gradient arriving at {name}: where its entries land in FP8" if name else
                 "Where the entries land in FP8", fontsize=10)
    return fig
