"""Plots for the UltraLong track, one section per notebook (01 RoPE scaling, 02 context extension,
03 ablations). Each takes the plain-data result of its experiment module's ``run``
(:mod:`~nvrepro.ultralong.rope_scaling`, :mod:`~nvrepro.ultralong.context_extension`,
:mod:`~nvrepro.ultralong.ablations`) and returns the figure; the notebook saves it with the
module's claim."""

from __future__ import annotations


from nvrepro.core.tooling.figures import bars_with_intervals, interval_lengths, new_figure
from nvrepro.ultralong.rope_scaling import METHOD_LABELS, rope_scaling_table

_STYLE = {"none": dict(color="C7", ls="--"), "linear": dict(color="C0"), "ntk": dict(color="C1"),
          "yarn": dict(color="C3", lw=2.4), "llama3": dict(color="C2", ls=":")}


def plot_rope_scaling(table: dict):
    """Three panels against the channel-pair index ``i``: wavelength (tokens), interpolation
    ratio ``w'_i / w_i``, and the unseen-angle fraction at the extended length.

    ``table`` is the dict returned by :func:`nvrepro.ultralong.rope_scaling.rope_scaling_table`.
    """
    cfg = table["config"]
    s, L = cfg["factor"], cfg["original_max_len"]
    fig, (ax_w, ax_r, ax_u) = new_figure(1, 3)
    pairs = list(range(len(table["rotations"])))
    for method, m in table["methods"].items():
        kw = dict(label=METHOD_LABELS.get(method, method), **_STYLE.get(method, {}))
        ax_w.plot(pairs, m["wavelength"], **kw)
        ax_r.plot(pairs, m["ratio"], **kw)
        ax_u.plot(pairs, m["unseen"], **kw)
    ax_w.axhline(L, color="k", lw=0.8, ls=":")
    ax_w.axhline(s * L, color="k", lw=0.8, ls="-.")
    ax_w.text(0, L * 1.3, f"original context L = {L:,}", fontsize=8)
    ax_w.text(0, s * L * 1.3, f"extended context sL = {int(s * L):,}", fontsize=8)
    ax_w.set(yscale="log", title="wavelength per channel pair", ylabel="wavelength 2π/w (tokens)")
    ax_r.set(yscale="log", title="interpolation w'/w (1 = kept, 1/s = squeezed)", ylabel="w' / w")
    ax_r.axhline(1 / s, color="k", lw=0.8, ls=":")
    ax_u.set(title=f"unseen angles at sL = {int(s * L):,}", ylabel="fraction of the circle never seen")
    ax_u.set_ylim(-0.03, 1.03)
    for ax in (ax_w, ax_r, ax_u):
        ax.set_xlabel("channel pair i (fast -> slow)")
    handles, labels = ax_w.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), frameon=False)
    yarn = table["methods"].get("yarn")
    temp = f", YaRN attention factor {yarn['attention_factor']:.3f}" if yarn else ""
    fig.suptitle(f"RoPE scaling: head_dim {cfg['head_dim']}, theta {cfg['theta']:g}, s = {s:g}, "
                 f"alpha = {cfg['alpha']:g}, beta = {cfg['beta']:g}{temp}", fontsize=10)
    return fig


def rope_explorer(*, head_dim: int, theta: float, original_max_len: int, s: float = 8.0,
                  alpha: float = 1.0, beta: float = 32.0):
    """The ipywidgets callback of notebook 01: the three-panel figure for one (s, alpha, beta)
    on a fixed model shape (``head_dim``, ``theta``, ``original_max_len``, from its config).

    A plain function (returns the figure) so it runs, and is tested, without a widget front end.
    """
    beta = max(beta, alpha + 1e-3)  # the sliders can cross; YaRN needs alpha < beta
    return plot_rope_scaling(rope_scaling_table(head_dim, theta, s, original_max_len, alpha, beta))


# --- notebook 02: the extension experiment -----------------------------------------------------

def plot_niah_heatmaps(result: dict):
    """One needle-in-a-haystack heatmap per method: passkey accuracy, needle depth (rows) x
    context length (columns), from :func:`nvrepro.ultralong.context_extension.run` (the first seed);
    and, with ``result["headline"]``, a last panel of the headline methods' passkey accuracy at
    ``s L`` on every seed (:func:`_headline_panel`)."""
    methods = list(result["methods"])
    headline = bool(result.get("headline"))
    fig, axes = new_figure(1, len(methods) + headline)
    axes = list(getattr(axes, "flat", [axes]))
    im = None
    for k, (ax, m) in enumerate(zip(axes, methods)):
        g = result["methods"][m]["eval"]["niah"]
        im = ax.imshow(g["accuracy"], vmin=0, vmax=1, cmap="RdYlGn", aspect="auto", origin="upper")
        ax.set_xticks(range(len(g["lengths"])), [f"{n:,}" for n in g["lengths"]], rotation=45)
        ax.set_yticks(range(len(g["depths"])), [f"{d:.0%}" if k == 0 else "" for d in g["depths"]])
        ax.grid(False)
        ax.axvline(0.5, color="k", lw=1, ls=":")  # right of it: longer than the pretraining context
        ax.set(title=f"{METHOD_LABELS.get(m, m)}: mean {g['mean']:.2f}", xlabel="context length (tokens)")
    axes[0].set_ylabel("needle depth")
    fig.colorbar(im, ax=axes[:len(methods)], label="passkey accuracy", shrink=0.8)
    if headline:
        _headline_panel(axes[-1], result)
    fig.suptitle(f"Needle in a haystack after {result['factor']}x extension + continued pretraining "
                 f"(pretrained at {result['short_len']:,} tokens; heatmaps: seed {result['seed']})", fontsize=10)
    return fig


def _headline_panel(ax, result: dict) -> None:
    """Passkey accuracy at ``s L`` per headline method: a bar at the share pooled over the seeds
    with its 95% Wilson interval, a dot per seed."""
    from nvrepro.ultralong.judging import pooled_at_sL, probes_at_sL

    rows_by_method = result["headline"]
    for i, (m, rows) in enumerate(rows_by_method.items()):
        est = probes_at_sL(pooled_at_sL(rows_by_method, m), "niah")
        bars_with_intervals(ax, [i], [est], 0.6, color=_STYLE.get(m, {}).get("color", "C0"), alpha=0.6)
        ax.scatter([i] * len(rows), [r["niah_correct_at_sL"] / r["niah_probes_at_sL"] for r in rows],
                   color="k", s=12, zorder=3)
    ax.set_xticks(range(len(rows_by_method)), [METHOD_LABELS.get(m, m) for m in rows_by_method], rotation=30)
    seeds = len(next(iter(rows_by_method.values())))
    ax.set(ylim=(0, 1.05), ylabel="passkey accuracy at sL",
           title=f"at {result['lengths'][-1]:,}: {seeds} seed(s) pooled\n(95% Wilson; dots: seeds)")


def plot_beyond(result: dict):
    """The headline methods on the first seed at ``s L`` and extended further (``result["further"]``):
    passkey (left) and RULER-style (right) accuracy per method at both lengths, with 95% Wilson
    intervals."""
    from nvrepro.ultralong.judging import probes_at_sL

    further = result["further"]
    fig, axes = new_figure(1, 2)
    settings = [(f"{result['factor']:g}x, {result['lengths'][-1]:,} tokens",
                 {m: rows[0] for m, rows in result["headline"].items()}),
                (f"{further['factor']:g}x, {further['length']:,} tokens",
                 {m: rows[0] for m, rows in further["headline"].items()})]
    for ax, (kind, title) in zip(axes, (("niah", "passkey"), ("ruler", "RULER-style"))):
        for j, (label, rows) in enumerate(settings):
            for i, (m, row) in enumerate(rows.items()):
                est = probes_at_sL(row, kind)
                x = i + (j - 0.5) * 0.38
                bars_with_intervals(ax, [x], [est], 0.36, color=_STYLE.get(m, {}).get("color", "C0"),
                                    alpha=0.45 + 0.45 * j, hatch="" if j else "//", label=label if i == 0 else None)
        names = list(settings[0][1])
        ax.set_xticks(range(len(names)), [METHOD_LABELS.get(m, m) for m in names])
        ax.set(ylim=(0, 1.05), ylabel="exact-match accuracy", title=f"{title} at the extended length")
    axes[0].legend(fontsize=8, title="extended", title_fontsize=8)
    fig.suptitle(f"One step further: the same recipe at {further['factor']:g}x (seed {result['seed']}; "
                 "95% Wilson intervals)", fontsize=10)
    return fig


def _accuracy_vs_length_axes(result: dict, axes_titles) -> None:
    """Log-length x axis at the evaluated lengths, accuracy y axis, dotted line at the pretraining length."""
    for a, t in axes_titles:
        a.axvline(result["short_len"], color="k", lw=0.8, ls=":")
        a.set(xscale="log", xlabel="context length (tokens)", ylabel="exact-match accuracy", title=t,
              ylim=(-0.05, 1.05))
        a.set_xticks(result["lengths"], [f"{n:,}" for n in result["lengths"]])
        a.minorticks_off()


def plot_ruler_vs_length(result: dict):
    """RULER-style average accuracy vs context length per method (left) and per task for YaRN-like
    panels (right: every task of every method, thin lines)."""
    fig, (ax, ax_t) = new_figure(1, 2)
    for m, r in result["methods"].items():
        ru = r["eval"]["ruler"]
        kw = dict(label=METHOD_LABELS.get(m, m), marker="o", **_STYLE.get(m, {}))
        ax.plot(ru["lengths"], ru["average"], **kw)
        for k, (task, acc) in enumerate(ru["tasks"].items()):
            ax_t.plot(ru["lengths"], acc, marker="os^"[k % 3], color=_STYLE.get(m, {}).get("color"), lw=1,
                      alpha=0.8, label=f"{METHOD_LABELS.get(m, m)}: {task}")
    _accuracy_vs_length_axes(result, ((ax, "RULER-style average"), (ax_t, "per task")))
    ax.legend()
    ax_t.legend(fontsize=6, ncols=2)
    fig.suptitle("RULER-style tasks vs length (dotted: pretraining context)", fontsize=10)
    return fig


def plot_short_loss(result: dict):
    """Short-context loss at the pretraining length: base, after scaling alone, after continued
    pretraining, per method."""
    fig, ax = new_figure()
    methods = list(result["methods"])
    x = range(len(methods))
    scaled = [result["methods"][m]["short_loss_scaled"] for m in methods]
    after = [result["methods"][m]["eval"]["short_loss"] for m in methods]
    ax.bar([i - 0.2 for i in x], scaled, 0.4, label="scaled, before continued pretraining", color="C7")
    ax.bar([i + 0.2 for i in x], after, 0.4, label="after continued pretraining", color="C0")
    ax.axhline(result["base"]["short_loss"], color="C3", ls="--", label="base model (no scaling)")
    ax.set_xticks(list(x), [METHOD_LABELS.get(m, m).split(" ")[0] for m in methods])
    values = scaled + after + [result["base"]["short_loss"]]
    ax.set_ylim(0.97 * min(values), 1.02 * max(values))  # the differences, not the bars' height
    ax.set(ylabel="loss on short documents (nats/token)",
           title=f"Short-context loss at {result['short_len']:,} tokens")
    ax.legend(fontsize=7)
    return fig


# --- notebook 03: ablations ------------------------------------------------------------------

ABLATION_LABELS = {"separator": "separator (recipe)", "no_separator": "no separator",
                   "no_upsampling": "no length upsampling", "two_step": "two-step extension",
                   "instruct": "+ short-only SFT"}


def plot_ablations(result: dict):
    """Per ablation arm: passkey accuracy vs length, RULER-style average vs length, and the loss
    per position bin of the longest blocks."""
    fig, (ax, ax_r, ax_p) = new_figure(1, 3)
    for k, (arm, r) in enumerate(result["arms"].items()):
        kw = dict(label=ABLATION_LABELS.get(arm, arm), marker="os^Dv"[k % 5], color=f"C{k}")
        ax.plot(r["niah"]["lengths"], r["niah"]["per_length"], **kw)
        ax_r.plot(r["ruler"]["lengths"], r["ruler"]["average"], **kw)
        lp = r["loss_by_position"]
        ax_p.plot([(a + b) / 2 for a, b in zip(lp["edges"], lp["edges"][1:])], lp["loss"], ms=3, **kw)
    ax_p.axvline(result["short_len"], color="k", lw=0.8, ls=":")
    ax_p.set(xlabel="position in the block (tokens)", ylabel="next-token loss (nats/token)",
             title="loss vs position (held-out chapters)")
    _accuracy_vs_length_axes(result, ((ax, "passkey (mean over depths)"), (ax_r, "RULER-style average")))
    ax.legend()
    fig.suptitle(f"UltraLong ablations on the YaRN arm (s = {result['factor']:g}; dotted: pretraining context)",
                 fontsize=10)
    return fig


def plot_loss_by_position(result: dict):
    """Loss on long packed documents per position bin, per method: dashed right after scaling
    (no training), solid after the continued pretraining."""
    fig, ax = new_figure()
    for m, r in result["methods"].items():
        style = _STYLE.get(m, {})
        for key, ls, tag in (("loss_by_position_scaled", "--", "scaled only"), (None, "-", "after CPT")):
            lp = r[key] if key else r["eval"]["loss_by_position"]
            mids = [(a + b) / 2 for a, b in zip(lp["edges"], lp["edges"][1:])]
            ax.plot(mids, lp["loss"], marker="o", ms=3, ls=ls, color=style.get("color"),
                    lw=style.get("lw", 1.5), label=f"{METHOD_LABELS.get(m, m)}, {tag}")
    ax.axvline(result["short_len"], color="k", lw=0.8, ls=":", label="pretraining context")
    ax.set(xlabel="position in the block (tokens)", ylabel="next-token loss (nats/token)",
           title=f"Loss vs position, {result['lengths'][-1]:,}-token blocks")
    ax.legend(fontsize=6, ncols=2, loc="upper center", bbox_to_anchor=(0.5, -0.2))  # below: lines cross
    return fig


def plot_niah_cell(view: dict):
    """One column of a needle heatmap with its intervals (:func:`nvrepro.ultralong.explorer.cell_view`):
    passkey accuracy per needle depth with Wilson intervals and the pooled accuracy as a band (left),
    and the RULER-style accuracy per task at the same length with Wilson intervals (right)."""
    fig, (ax, ax_r) = new_figure(1, 2)
    color = _STYLE.get(view["method"], {}).get("color", "C0")
    depths = view["depths"]
    acc = [e.value for e in view["passkey"]]
    ax.errorbar(depths, acc, yerr=interval_lengths(view["passkey"]), marker="o", ls="none", capsize=4, color=color, label="per depth")
    pooled = view["passkey_pooled"]
    ax.axhspan(pooled.low, pooled.high, color=color, alpha=0.15, label="all depths pooled")
    ax.axhline(pooled.value, color=color, lw=1, ls="--")
    ax.set_xticks(depths, [f"{d:.0%}" for d in depths])
    n = view["passkey"][0].n if view["passkey"] else 0
    ax.set(xlabel="needle depth", ylabel="passkey accuracy", ylim=(-0.05, 1.05),
           title=f"passkey, {n} probes per depth")
    ax.legend(fontsize=7)
    tasks = list(view["ruler"])
    est = [view["ruler"][t] for t in tasks]
    x = list(range(len(tasks)))
    bars_with_intervals(ax_r, x, est, 0.6, capsize=4, color=color, alpha=0.6)
    ax_r.set_xticks(x, [t.replace("_", " ") for t in tasks])
    r = view["ruler_pooled"]
    ax_r.set(ylabel="exact-match accuracy", ylim=(-0.05, 1.05),
             title=f"RULER-style, pooled {r.value:.2f} [{r.low:.2f}, {r.high:.2f}]")
    fig.suptitle(f"{view['label']} at {view['length']:,} tokens ({view['factor']:g} x the pretraining "
                 "context), Wilson 95% intervals", fontsize=10)
    return fig


# --- notebook 02: the toy base -------------------------------------------------------------------

def plot_base(result: dict):
    """The toy base of :mod:`nvrepro.ultralong.base` (``result`` from its ``run``), three panels:
    training losses per source vs step (one line per seed), held-out text loss in nats per byte
    beside the unigram and uniform baselines, and retrieval accuracy at ``L`` per task (probes
    pooled over seeds, Wilson intervals) against the claim's bars."""
    from nvrepro.ultralong.base import PASSKEY_BAR, RULER_BAR, pooled_probes

    fig, (ax_c, ax_t, ax_r) = new_figure(1, 3)
    for k, curve in enumerate(result["curves"]):
        steps = [row["step"] for row in curve]
        for key, color, label in (("text_loss", "C0", "plain text"), ("retrieval_loss", "C3", "retrieval answers")):
            ax_c.plot(steps, [row[key] for row in curve], color=color, lw=1.2, alpha=0.85,
                      label=label if k == 0 else None)
    ax_c.set(xlabel="optimizer step", ylabel="train loss (nats/token)", yscale="log",
             title=f"training, {len(result['curves'])} seed(s)")
    ax_c.legend(fontsize=7)

    reports = result["reports"]
    names = ["model", "unigram", "uniform"]
    bpt = [r["bytes_per_token"] for r in reports]
    values = [[r["text"]["nats_per_byte"] for r in reports], [r["unigram"]["nats_per_byte"] for r in reports],
              [r["unigram"]["uniform_nats_per_token"] / b for r, b in zip(reports, bpt)]]
    for i, vals in enumerate(values):
        ax_t.bar(i, sum(vals) / len(vals), 0.6, color=("C0", "C7", "0.8")[i])
        ax_t.scatter([i] * len(vals), vals, color="k", s=10, zorder=3)
    ax_t.set_xticks(range(3), names)
    ax_t.set(ylabel="held-out loss (nats/byte)", title=f"text at L = {reports[0]['L']} tokens (dots: seeds)")

    tasks = list(reports[0]["retrieval"])
    for i, task in enumerate(tasks):
        est = pooled_probes(result, task)
        if est is None:
            ax_r.text(i, 0.05, "does not fit", rotation=90, ha="center", fontsize=7)
            continue
        bars_with_intervals(ax_r, [i], [est], 0.6, color="C2" if task == "passkey" else "C1")
    ax_r.axhline(PASSKEY_BAR, color="C2", ls=":", lw=1, label=f"passkey bar {PASSKEY_BAR:g}")
    ax_r.axhline(RULER_BAR, color="C1", ls=":", lw=1, label=f"RULER-style bar {RULER_BAR:g}")
    ax_r.set_xticks(range(len(tasks)), [t.replace("_", "\n") for t in tasks], fontsize=7)
    ax_r.set(ylim=(0, 1.05), ylabel="exact-match accuracy", title="retrieval at L (95% Wilson)")
    ax_r.legend(fontsize=7)
    fig.suptitle("The toy base: a language model and a retriever", fontsize=10)
    return fig
