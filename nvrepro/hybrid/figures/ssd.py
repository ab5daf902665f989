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
