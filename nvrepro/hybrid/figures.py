"""Plots of the hybrid track, one section per notebook (01 SSD, 03 inference cost, 04 FP8,
02 why a hybrid, 05 MiniPuzzle). Each takes the plain-data result of that notebook's experiment
module (``run(profile, seed)``); what a figure claims lives with the experiment, not here."""

from __future__ import annotations

from matplotlib.patches import Patch

from nvrepro.core.tooling.figures import new_figure

# --- notebooks/hybrid/01_mamba2_ssd.ipynb ------------------------------------------------------
_LABELS = {
    "naive": "recurrence (token by token)",
    "quadratic": "quadratic / dual form (one chunk)",
    "chunked": "chunked SSD (Mamba-2)",
}
_STYLE = {"naive": dict(marker="o", color="C0"), "quadratic": dict(marker="s", color="C1"),
          "chunked": dict(marker="^", color="C2")}


def plot_ssd_scaling(result: dict):
    """Two log-log panels against sequence length: fwd+bwd time and activation memory.

    ``result`` is the dict returned by :func:`nvrepro.hybrid.mamba2_ssd.ssd_scaling`.
    """
    fig, (ax_t, ax_m) = new_figure(1, 2)
    cfg = result["config"]
    for form, data in result["forms"].items():
        if not data["lengths"]:
            continue
        kw = dict(label=_LABELS.get(form, form), **_STYLE.get(form, {}))
        ax_t.plot(data["lengths"], [s * 1e3 for s in data["seconds"]], **kw)
        ax_m.plot(data["lengths"], [b / 2**20 for b in data["saved_bytes"]], **kw)
    ax_t.set(title="forward + backward time", ylabel="milliseconds (median)")
    ax_m.set(title="activation memory (saved for backward)", ylabel="MiB")
    for ax in (ax_t, ax_m):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length")
    ticks = sorted({l for d in result["forms"].values() for l in d["lengths"]})
    for ax in (ax_t, ax_m):
        ax.set_xticks(ticks, [str(t) for t in ticks], rotation=45 if len(ticks) > 5 else 0)
        ax.minorticks_off()
    handles, labels = ax_t.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), frameon=False)
    fig.suptitle(f"SSD forms, float32 CPU, {cfg['threads']} thread(s): heads={cfg['heads']}, "
                 f"head_dim={cfg['head_dim']}, state={cfg['state']}, chunk={cfg['chunk_size']}",
                 fontsize=10)
    return fig


# --- notebooks/hybrid/03_inference_cost.ipynb -------------------------------------------------

_DECODE_STYLE = {"hybrid": dict(color="C2", marker="^"), "transformer": dict(color="C3", marker="o")}


def _tokens(n: int) -> str:
    return f"{n // 2**20}M" if n >= 2**20 else f"{n // 1024}K" if n >= 1024 else str(n)


def _context_axis(ax, contexts) -> None:
    from matplotlib.ticker import NullLocator

    ax.set_xscale("log", base=2)
    ax.set_xticks(contexts, [_tokens(c) for c in contexts])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("context length (tokens in the cache)")


def plot_decode_cost(result: dict, eager: dict | None = None):
    """Three panels against context: per-token decode latency, cache memory (measured markers,
    arithmetic dashed), and the hybrid's speed-up (measured vs the bytes-read model).

    ``result`` is the dict returned by :func:`nvrepro.hybrid.inference.decode_cost`; ``eager``
    (optional) a second one with eager steps, drawn thin and dotted next to compiled ``result``.
    """
    from matplotlib.ticker import LogLocator, NullFormatter

    fig, (ax_t, ax_m, ax_r) = new_figure(1, 3)
    contexts = result["contexts"]
    compiled = result["config"].get("compiled", False)
    for name, m in result["models"].items():
        kw = dict(label=f"{name} {m['pattern']}", **_DECODE_STYLE.get(name, {}))
        ax_t.plot(contexts, [s * 1e3 for s in m["seconds_per_token"]], **kw)
        ax_m.plot(contexts, [b / 2**20 for b in m["cache_bytes"]], linestyle="none", **kw)
        ax_m.plot(contexts, [b / 2**20 for b in m["predicted_cache_bytes"]], linestyle="--",
                  color=kw["color"], linewidth=1)
        if eager is not None:
            ax_t.plot(eager["contexts"], [s * 1e3 for s in eager["models"][name]["seconds_per_token"]],
                      color=kw["color"], linestyle=":", linewidth=1, marker=kw.get("marker"),
                      markersize=3, label=f"{name}, eager steps")
    ax_t.set(title="decode latency" + (" (solid: compiled steps)" if compiled and eager else ""),
             ylabel="ms per generated token (median)")
    ax_m.set(title="cache memory (markers: allocated;\ndashed: nvrepro.core.lm.info arithmetic)", ylabel="MiB")
    ax_m.set_yscale("log")
    ax_m.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax_m.yaxis.set_major_formatter("{x:g}")
    ax_m.yaxis.set_minor_formatter(NullFormatter())
    ax_r.plot(contexts, result["speedup"], color="C2", marker="^",
              label=f"measured{', compiled steps' if compiled else ''} (tokens/s ratio)")
    if eager is not None:
        ax_r.plot(eager["contexts"], eager["speedup"], color="C2", linestyle=":", linewidth=1,
                  marker="^", markersize=3, label="measured, eager steps")
    ax_r.plot(contexts, result["bytes_read_ratio"], color="C7", linestyle="--",
              label="memory-bound model\n(weights + cache read)")
    ax_r.axhline(1.0, color="black", linewidth=0.8)
    ax_r.set(title="hybrid speed-up over the Transformer", ylabel="x faster")
    # Head room above the curves for the legend (they rise to the right, under it).
    top = max([*result["speedup"], *result["bytes_read_ratio"], *(eager["speedup"] if eager else [])])
    ax_r.set_ylim(top=2.0 * top)
    ax_r.legend(loc="upper left", fontsize="small")
    for ax in (ax_t, ax_m, ax_r):
        _context_axis(ax, contexts)
    handles, labels = ax_t.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), frameon=False)
    cfg = result["config"]
    steps = "compiled" if cfg.get("compiled") else "eager"
    fig.suptitle(f"Toy models decoding through their caches ({cfg['dtype']}, CPU, {cfg['threads']} "
                 f"thread(s), batch {cfg['batch']}, d_model {cfg['model']['d_model']}, {steps} steps)",
                 fontsize=10)
    return fig


def plot_full_scale(table: dict, contexts: list[int], cache_curves: dict[str, list[int]]):
    """Two panels for the real configs (arithmetic, not measurement).

    Left: cache memory (batch 1) against context for each model (``cache_curves[name]`` bytes at
    ``contexts``). Right: predicted decode speed-up of each hybrid over its Transformer against
    batch size at ``table["context"]`` tokens, with the paper's measured speed-up dashed.
    ``table`` is :func:`nvrepro.hybrid.inference.full_scale_table`'s result.
    """
    fig, (ax_c, ax_s) = new_figure(1, 2)
    colors = {}  # one colour per pair: solid for the hybrid, dashed for its Transformer
    for (hybrid, pair), color in zip(table["pairs"].items(), ("C2", "C0", "C4", "C1")):
        colors[hybrid] = colors[pair["transformer"]] = color
    for name, curve in cache_curves.items():
        ax_c.plot(contexts, [b / 2**30 for b in curve], color=colors.get(name, "C7"), label=name,
                  linestyle="--" if name not in table["pairs"] else "-")
    ax_c.axvline(table["context"], color="gray", linewidth=0.8, linestyle=":")
    _context_axis(ax_c, contexts[::2])
    ax_c.set_yscale("log")
    ax_c.yaxis.set_major_formatter("{x:g}")
    ax_c.set(title="cache memory per sequence", ylabel="GiB (BF16 KV, FP32 SSM state)")
    ax_c.legend()
    for hybrid, pair in table["pairs"].items():
        color = colors[hybrid]
        ax_s.plot(pair["batches"], pair["predicted_speedup_by_batch"], color=color, marker="o",
                  label=f"{hybrid} vs {pair['transformer']}")
        for value, style, text in ((pair["paper_speedup"], "--", "paper, measured"),
                                   (pair["cache_ratio"], ":", "cache ratio (large-batch limit)")):
            ax_s.axhline(value, color=color, linestyle=style, linewidth=1)
            ax_s.annotate(f"{text}: {value:.2g}x", (pair["batches"][0], value), textcoords="offset points",
                          xytext=(0, 3), ha="left", color=color, fontsize=8)
    ax_s.set_xscale("log", base=2)
    ax_s.set_xticks(table["pairs"][next(iter(table["pairs"]))]["batches"])
    ax_s.get_xaxis().set_major_formatter("{x:.0f}")
    ax_s.minorticks_off()
    ax_s.set(title=f"predicted decode speed-up, {_tokens(table['context'])} tokens",
             xlabel="batch size (sequences decoded together)", ylabel="x faster (bytes read per token)")
    handles, labels = ax_s.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), frameon=False)
    fig.suptitle("Full-scale configs: arithmetic from nvrepro.core.lm.info (not a measurement)", fontsize=10)
    return fig


# --- notebooks/hybrid/04_fp8_training.ipynb ----------------------------------------------------
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


# --- notebooks/hybrid/02_why_hybrid.ipynb ------------------------------------------------------

_ARM_STYLE = {"transformer": dict(color="C0", marker="o", label="Transformer (attention + FFN)"),
              "mamba2": dict(color="C3", marker="s", label="pure Mamba-2"),
              "hybrid": dict(color="C2", marker="^", label="hybrid (Nemotron-H pattern)")}


def _arm_style(arm: str, params: int | None = None) -> dict:
    style = dict(_ARM_STYLE.get(arm, dict(label=arm)))
    if params is not None:
        style["label"] = f"{style['label']}, {params / 1e3:.0f}K params"
    return style


def plot_recall_grid(result: dict):
    """MQAR per-query accuracy against the number of key-value pairs; a panel per sequence length.

    ``result`` is :func:`nvrepro.hybrid.why_hybrid.mqar_recall`'s. The dotted line is ``1/n``:
    what a model scores that has learned to answer with *some* value seen in the context but
    not which one (no lookup).
    """
    lengths, pairs = result["lengths"], result["pairs"]
    fig, axes = new_figure(1, len(lengths), sharey=True, squeeze=False)
    for ax, length in zip(axes[0], lengths):
        for arm, r in result["arms"].items():
            pts = [(n, a) for n, a in zip(pairs, r["accuracy"][length]) if a is not None]
            ax.plot([n for n, _ in pts], [a for _, a in pts], **_arm_style(arm, r["params"]))
        ns = [n for n, a in zip(pairs, next(iter(result["arms"].values()))["accuracy"][length]) if a is not None]
        ax.plot(ns, [1 / n for n in ns], ls=":", color="0.45", label="1/n: a random value from the context")
        ax.set_xscale("log", base=2)
        ax.set_xticks(pairs, [str(n) for n in pairs])
        ax.minorticks_off()
        ax.set(title=f"sequence length {length}", xlabel="key-value pairs in context", ylim=(-0.02, 1.02))
    axes[0][0].set_ylabel("per-query recall accuracy")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2, frameon=False)
    steps = {r["steps"] for r in result["arms"].values()}
    fig.suptitle(f"Multi-query associative recall, equal-parameter models, {'/'.join(map(str, sorted(steps)))} "
                 f"training steps each, {result['num_test']} held-out examples per cell, seed {result['seed']}",
                 fontsize=10)
    return fig


def plot_lm_curves(result: dict, margin: float | None = None):
    """Validation loss (nats per byte) against training steps, one line per arm.

    ``result`` is :func:`nvrepro.hybrid.why_hybrid.lm_curves`'s; with ``margin``, a band shows
    where the hybrid's final loss must land to be "within ``margin`` of the Transformer".
    """
    fig, ax = new_figure(1, 1)
    fig.set_size_inches(6.5, 4.2)
    for arm, r in result["arms"].items():
        style = _arm_style(arm, r["params"])
        style["label"] += f": final {r['final_val_loss']:.3f}"
        ax.plot(r["step"], r["val_loss"], **style)
    if margin is not None and "transformer" in result["arms"]:
        t = result["arms"]["transformer"]
        ax.axhspan(t["final_val_loss"], (1 + margin) * t["final_val_loss"], color="C0", alpha=0.12,
                   label=f"Transformer final loss + {100 * margin:g}% (the claim's margin)")
    ax.set(xlabel="training step", ylabel="validation loss (nats per byte)",
           title=f"Byte-level LM on the World English Bible, seed {result['seed']}")
    ax.legend(fontsize=8)
    return fig


# --- notebooks/hybrid/05_minipuzzle.ipynb ------------------------------------------------------
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
