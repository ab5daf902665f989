"""Plots of ``notebooks/hybrid/04_fp8_training.ipynb``: each draws the plain-data result of that
notebook's experiment module; what a figure claims lives with the experiment, not here."""

from __future__ import annotations

from nvrepro.core.tooling.figures import new_figure


_FP8_ARMS = {"bf16": ("BF16 (baseline)", "k"), "fp8_recipe": ("FP8, paper recipe (ends in BF16)", "C0"),
             "fp8_all": ("FP8, all layers", "C3"), "fp8_delayed": ("FP8, delayed scaling", "C2")}


def plot_fp8_loss_gap(result: dict, gaps: dict, paper_gap: float | None = None):
    """Training loss per arm, and the relative loss gap to BF16 (the paper's Fig. 5 analogue).

    ``result`` from :func:`nvrepro.hybrid.fp8_experiment.fp8_training`, ``gaps`` from
    :func:`~nvrepro.hybrid.fp8_experiment.loss_gaps`; the band is ``±paper_gap`` (default the
    claim's tolerance, :data:`~nvrepro.hybrid.fp8_experiment.LOSS_GAP_TOLERANCE`: the paper's 0.1%).
    """
    from nvrepro.hybrid.fp8_experiment import LOSS_GAP_TOLERANCE, moving_average

    paper_gap = LOSS_GAP_TOLERANCE if paper_gap is None else paper_gap

    fig, (ax_l, ax_g) = new_figure(1, 2)
    window = gaps["window"]
    for arm, rec in result["arms"].items():
        label, color = _FP8_ARMS.get(arm, (arm, None))
        steps = range(1, len(rec["loss"]) + 1)
        ax_l.plot(steps, moving_average(rec["loss"], window), label=label, color=color,
                  lw=1.2 if arm == "bf16" else 1.0)
        if arm in gaps["arms"]:
            ax_g.plot(steps, [100 * g for g in gaps["arms"][arm]["curve"]], label=label, color=color)
    ax_g.axhspan(-100 * paper_gap, 100 * paper_gap, color="0.85", label=f"paper: |gap| < {100 * paper_gap:g}%")
    ax_g.axhline(0, color="k", lw=0.8)
    ax_l.set(title=f"training loss (mean of {window} steps)", xlabel="step", ylabel="cross-entropy (nats)")
    ax_g.set(title=f"relative gap to BF16 (mean of {window} steps)", xlabel="step",
             ylabel="(loss - loss_BF16) / loss_BF16  (%)")
    handles, labels = ax_g.get_legend_handles_labels()
    handles.insert(0, ax_l.get_lines()[0])
    labels.insert(0, _FP8_ARMS["bf16"][0])
    fig.legend(handles, labels, loc="outside lower center", ncols=3, frameon=False)
    cfg = result["config"]
    fig.suptitle(f"Toy hybrid {cfg['model']['pattern']!r}, d_model={cfg['model']['d_model']}, "
                 f"{cfg['trainer']['max_steps']} steps, FP8 emulated (exact rounding), seed {result['seed']}",
                 fontsize=10)
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
