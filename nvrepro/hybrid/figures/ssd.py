"""Plots of ``notebooks/hybrid/01_mamba2_ssd.ipynb``: each draws the plain-data result of that
notebook's experiment module; what a figure claims lives with the experiment, not here."""

from __future__ import annotations

from nvrepro.core.tooling.figures import new_figure


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


def plot_decay_matrix(layout: dict):
    """Two panels from :func:`nvrepro.hybrid.mamba2_ssd.decay_layout`.

    Left: the decay mask ``L`` (log colour scale, blank above the diagonal) with the chunked
    algorithm's blocks outlined (solid: diagonal blocks, computed as small masked attentions;
    dashed: off-diagonal blocks, delivered by the carried state) and the line ``i - j = reach``
    beyond which ``L < threshold``. Right: one token's weight ``L[t, 0]`` against ``t``, with
    the threshold and chunk boundaries.
    """
    import matplotlib.colors as mcolors
    import matplotlib.patches as mpatches
    import numpy as np
    from matplotlib.collections import PatchCollection
    from matplotlib.lines import Line2D

    fig, (ax_l, ax_r) = new_figure(1, 2)
    L = np.asarray(layout["L"], dtype=float)
    length, Q, thr, reach = layout["length"], layout["chunk_size"], layout["threshold"], layout["reach"]
    floor = thr**2  # the colour scale spans two "reaches"
    shown = np.ma.masked_where(np.triu(np.ones_like(L, dtype=bool), 1), np.clip(L, floor, 1.0))
    im = ax_l.imshow(shown, cmap="viridis", norm=mcolors.LogNorm(vmin=floor, vmax=1.0),
                     extent=(-0.5, length - 0.5, length - 0.5, -0.5), interpolation="nearest")
    fig.colorbar(im, ax=ax_l, shrink=0.8, label="L[i, j] (clipped)")
    # One collection per kind: hundreds of blocks at small chunk sizes draw in one call.
    for kind, style in (("off-diagonal", dict(edgecolor="white", lw=0.7, ls="--")),
                        ("diagonal", dict(edgecolor="C3", lw=1.6, ls="-"))):
        rects = [mpatches.Rectangle((b["cols"][0] - 0.5, b["rows"][0] - 0.5), b["cols"][1] - b["cols"][0],
                                    b["rows"][1] - b["rows"][0]) for b in layout["blocks"] if b["kind"] == kind]
        ax_l.add_collection(PatchCollection(rects, facecolor="none", **style))
    if reach < length:
        ax_l.plot([-0.5, length - 0.5 - reach], [reach - 0.5, length - 0.5], color="C1", lw=1.2, ls=":")
    ax_l.grid(False)
    ax_l.set(title="decay mask L", xlabel="j (writes into the state)", ylabel="i (reads the state)")
    handles = [mpatches.Patch(fill=False, edgecolor="C3", label="diagonal block: quadratic"),
               mpatches.Patch(fill=False, edgecolor="0.4", ls="--", label="off-diagonal: carried state")]
    if reach < length:
        handles.append(Line2D([], [], color="C1", ls=":", label=f"i - j = {reach}: L < {thr:g}"))
    ax_l.legend(handles=handles, loc="upper right", fontsize=7, framealpha=0.9)

    t = np.arange(length)
    ax_r.semilogy(t, np.maximum(L[:, 0], 1e-300), color="C0", label="L[t, 0]: token 0's weight at t")
    ax_r.axhline(thr, color="C1", ls=":", label=f"threshold {thr:g}")
    for s in range(Q, length, Q):
        ax_r.axvline(s - 0.5, color="0.8", lw=0.7)
    ax_r.set_ylim(max(floor, float(L[-1, 0]) * 0.5), 1.5)
    ax_r.set(title=f"reach: {reach} tokens = {layout['reach_chunks']} chunk(s)", xlabel="t (tokens after 0)",
             ylabel="weight left")
    ax_r.legend(fontsize=7, loc="lower left")
    fig.suptitle(f"exp(dt*A) = {layout['decay_per_step']:.4f} per step (A = {layout['A']:g}, dt = {layout['dt']:g}), "
                 f"chunk size {Q}", fontsize=10)
    return fig
