"""Plots of ``notebooks/hybrid/03_inference_cost.ipynb``: each draws the plain-data result of that
notebook's experiment module; what a figure claims lives with the experiment, not here."""

from __future__ import annotations

from nvrepro.core.tooling.figures import new_figure


_DECODE_STYLE = {"hybrid": dict(color="C2", marker="^"), "transformer": dict(color="C3", marker="o")}


def _tokens(n: int) -> str:
    return f"{n // 2**20}M" if n >= 2**20 else f"{n // 1024}K" if n >= 1024 else str(n)


def _context_axis(ax, contexts) -> None:
    from matplotlib.ticker import NullLocator

    ax.set_xscale("log", base=2)
    ax.set_xticks(contexts, [_tokens(c) for c in contexts])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("context length (tokens in the cache)")


def _batch_axis(ax, batches) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xticks(batches, [str(b) for b in batches])
    ax.minorticks_off()
    ax.set_xlabel("batch size (sequences decoded together)")


def _log_mib_axis(ax) -> None:
    from matplotlib.ticker import LogLocator, NullFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter("{x:g}")
    ax.yaxis.set_minor_formatter(NullFormatter())


def plot_decode_cost(result: dict, eager: dict | None = None):
    """Panels against context (batch 1): per-token decode latency, cache memory (measured
    markers, arithmetic dashed), and the hybrid's speed-up (measured vs the bytes-read model,
    the shortest context's excess over it marked as overhead). With ``result["batch_sweep"]``
    a second row against batch size at that sweep's context: generated tokens/s, cache memory,
    and the throughput speed-up (measured vs the bytes-read model).

    ``result`` is the dict returned by :func:`nvrepro.hybrid.inference.run` (or
    :func:`~nvrepro.hybrid.inference.decode_cost`); ``eager`` (optional) a second
    ``decode_cost`` result with eager steps, drawn thin and dotted next to compiled ``result``.
    """
    sweep = result.get("batch_sweep")
    fig, axes = new_figure(2 if sweep else 1, 3)
    ax_t, ax_m, ax_r = axes[0] if sweep else axes
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
    _log_mib_axis(ax_m)
    ax_r.plot(contexts, result["speedup"], color="C2", marker="^",
              label=f"measured{', compiled steps' if compiled else ''} (tokens/s ratio)")
    if eager is not None:
        ax_r.plot(eager["contexts"], eager["speedup"], color="C2", linestyle=":", linewidth=1,
                  marker="^", markersize=3, label="measured, eager steps")
    ax_r.plot(contexts, result["bytes_read_ratio"], color="C7", linestyle="--",
              label="memory-bound model\n(weights + cache read)")
    # At the shortest context the caches are small and the bytes-read model predicts ~1x: the
    # gap to the measured ratio there is per-step overhead, not cache traffic.
    x0, measured0, predicted0 = contexts[0], result["speedup"][0], result["bytes_read_ratio"][0]
    ax_r.vlines(x0, min(measured0, predicted0), max(measured0, predicted0), color="C1", linewidth=3, alpha=0.6,
                label=f"at {_tokens(x0)}: overhead, not cache\n"
                      f"({measured0:.2f}x measured, {predicted0:.2f}x predicted)")
    ax_r.axhline(1.0, color="black", linewidth=0.8)
    ax_r.set(title="hybrid speed-up over the Transformer", ylabel="x faster")
    # Head room above the curves for the legend (they rise to the right, under it).
    top = max([*result["speedup"], *result["bytes_read_ratio"], *(eager["speedup"] if eager else [])])
    ax_r.set_ylim(top=2.2 * top)
    ax_r.legend(loc="upper left", fontsize="small")
    for ax in (ax_t, ax_m, ax_r):
        _context_axis(ax, contexts)
    handles, labels = ax_t.get_legend_handles_labels()
    if sweep:
        _plot_batch_row(axes[1], sweep)
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), frameon=False)
    cfg = result["config"]
    steps = "compiled" if cfg.get("compiled") else "eager"
    title = (f"Toy models decoding through their caches ({cfg['dtype']}, CPU, {cfg['threads']} "
             f"thread(s), d_model {cfg['model']['d_model']}); top: batch {cfg['batch']}, {steps} steps")
    if sweep:
        title += f"; bottom: {_tokens(sweep['context'])} tokens of context, eager steps"
    fig.suptitle(title, fontsize=10)
    return fig


def _plot_batch_row(row, sweep: dict) -> None:
    """The batch sweep of :func:`nvrepro.hybrid.inference.batch_sweep` on three axes: generated
    tokens/s, cache memory of the whole batch, throughput speed-up (measured vs bytes-read model)."""
    ax_k, ax_c, ax_s = row
    batches = sweep["batches"]
    for name, m in sweep["models"].items():
        kw = _DECODE_STYLE.get(name, {})
        ax_k.plot(batches, m["tokens_per_second"], **kw)
        ax_c.plot(batches, [b / 2**20 for b in m["cache_bytes"]], linestyle="none", **kw)
        ax_c.plot(batches, [b / 2**20 for b in m["predicted_cache_bytes"]], linestyle="--", color=kw.get("color"),
                  linewidth=1)
    ax_k.set_yscale("log", base=2)
    ax_k.yaxis.set_major_formatter("{x:.0f}")
    ax_k.set(title=f"decode throughput at {_tokens(sweep['context'])} tokens", ylabel="generated tokens/s")
    ax_c.set(title="cache memory of the whole batch", ylabel="MiB")
    _log_mib_axis(ax_c)
    ax_s.plot(batches, sweep["speedup"], color="C2", marker="^", label="measured, eager steps (tokens/s ratio)")
    ax_s.plot(batches, sweep["bytes_read_ratio"], color="C7", linestyle="--",
              label="memory-bound model\n(weights once + every cache)")
    ax_s.axhline(1.0, color="black", linewidth=0.8)
    ax_s.set(title="hybrid throughput speed-up", ylabel="x more tokens/s")
    ax_s.set_ylim(bottom=0, top=1.6 * max([*sweep["speedup"], *sweep["bytes_read_ratio"]]))
    ax_s.legend(loc="upper left", fontsize="small")
    for ax in row:
        _batch_axis(ax, batches)


def plot_full_scale(table: dict, contexts: list[int], cache_curves: dict[str, list[int]]):
    """Three panels for the real configs (arithmetic, not measurement).

    Left: cache memory (batch 1) against context for each model (``cache_curves[name]`` bytes at
    ``contexts``; hybrids solid, Transformers dashed). Middle: predicted decode speed-up of each
    pair against batch size at ``table["context"]`` tokens. Right: each pair's bracket, from the
    batch-1 prediction to the cache ratio (the large-batch limit), with the paper's measured
    speed-up marked (hollow: a pair the claim does not judge). ``table`` is
    :func:`nvrepro.hybrid.inference.full_scale_table`'s result.
    """
    fig, (ax_c, ax_s, ax_b) = new_figure(1, 3)
    pairs = table["pairs"]
    hybrids = {p["hybrid"] for p in pairs.values()}
    for i, (name, curve) in enumerate(cache_curves.items()):
        ax_c.plot(contexts, [b / 2**30 for b in curve], color=f"C{i}", label=name,
                  linestyle="-" if name in hybrids else "--")
    ax_c.axvline(table["context"], color="gray", linewidth=0.8, linestyle=":")
    _context_axis(ax_c, contexts[::2])
    ax_c.set_yscale("log")
    ax_c.yaxis.set_major_formatter("{x:g}")
    ax_c.set(title="cache memory per sequence", ylabel="GiB (BF16 KV, FP32 SSM state)")
    ax_c.legend(fontsize="small")
    colors = {key: f"C{i}" for i, key in enumerate(pairs)}
    for key, pair in pairs.items():
        ax_s.plot(pair["batches"], pair["predicted_speedup_by_batch"], color=colors[key], marker="o", markersize=3,
                  label=key)
    first = next(iter(pairs.values()))
    _batch_axis(ax_s, first["batches"])
    ax_s.set_yscale("log", base=2)
    ax_s.yaxis.set_major_formatter("{x:g}")
    ax_s.set(title=f"predicted decode speed-up, {_tokens(table['context'])} tokens",
             ylabel="x faster (bytes read per token)")
    ax_s.legend(fontsize="x-small", loc="lower right")
    for y, (key, pair) in enumerate(pairs.items()):
        low = pair["predicted_speedup_by_batch"][list(pair["batches"]).index(1)]
        ax_b.plot([low, pair["cache_ratio"]], [y, y], color=colors[key], linewidth=6, alpha=0.4,
                  solid_capstyle="butt")
        judged = pair.get("judged", True)
        ax_b.plot(pair["paper_speedup"], y, marker="D", markersize=8, color=colors[key],
                  markerfacecolor=colors[key] if judged else "white")
        ax_b.annotate(f"paper {pair['paper_speedup']:g}x" + ("" if judged else " (not judged)"),
                      (pair["paper_speedup"], y), textcoords="offset points", xytext=(0, -14), ha="center",
                      fontsize=7, color=colors[key])
    ax_b.set_yticks(range(len(pairs)), [k.replace(" vs ", "\nvs ") for k in pairs], fontsize=7)
    ax_b.set_ylim(len(pairs) - 0.4, -0.6)  # top to bottom, room under the last row's label
    ax_b.set_xscale("log", base=2)
    ax_b.xaxis.set_major_formatter("{x:g}")
    ax_b.set(title="bracket: batch-1 prediction .. cache ratio\n(diamond: the paper's measured speed-up)",
             xlabel="x faster")
    fig.suptitle("Full-scale configs: arithmetic from nvrepro.core.lm.info (not a measurement)", fontsize=10)
    return fig


def plot_cache_explorer(curves: dict):
    """The explorer's drawing of :func:`nvrepro.hybrid.inference.explorer_curves`: cache memory
    of both models against context, the predicted speed-up against context (both at the chosen
    batch) and against batch (at the chosen context); the chosen point marked on each."""
    fig, (ax_c, ax_x, ax_b) = new_figure(1, 3)
    by_c, by_b = curves["by_context"], curves["by_batch"]
    context, batch = curves["context"], curves["batch"]
    point = curves["point"]
    for role, color in (("hybrid", "C2"), ("baseline", "C3")):
        ax_c.plot(by_c["contexts"], [b / 2**30 for b in by_c[role]], color=color, label=curves[role])
    ax_c.plot([context, context], [point["hybrid_cache_bytes"] / 2**30, point["transformer_cache_bytes"] / 2**30],
              linestyle="none", marker="o", color="black")
    ax_c.set_yscale("log")
    ax_c.yaxis.set_major_formatter("{x:g}")
    ax_c.set(title=f"cache memory, batch {batch}", ylabel="GiB (BF16 KV, FP32 SSM state)")
    ax_c.legend(fontsize="small")
    ax_x.plot(by_c["contexts"], by_c["speedup"], color="C2")
    ax_x.plot(context, point["predicted_speedup"], marker="o", color="black")
    ax_x.set(title=f"predicted speed-up, batch {batch}", ylabel="x faster (bytes read per token)")
    for ax in (ax_c, ax_x):
        _context_axis(ax, by_c["contexts"][::2])
        ax.axvline(context, color="gray", linewidth=0.8, linestyle=":")
    ax_b.plot(by_b["batches"], by_b["speedup"], color="C2", marker="o", markersize=3, label="bytes-read model")
    ax_b.plot(batch, point["predicted_speedup"], marker="o", color="black")
    ax_b.axhline(curves["cache_ratio"], color="C2", linestyle=":", linewidth=1,
                 label=f"cache ratio (large-batch limit) {curves['cache_ratio']:.2g}x")
    ax_b.axhline(curves["paper_speedup"], color="C1", linestyle="--", linewidth=1,
                 label=f"paper, measured at {_tokens(curves['paper_context'])}: {curves['paper_speedup']:g}x")
    _batch_axis(ax_b, by_b["batches"])
    ax_b.set(title=f"predicted speed-up at {_tokens(context)} tokens", ylabel="x faster")
    ax_b.set_ylim(bottom=0)
    ax_b.legend(fontsize="small")
    fig.suptitle(f"{curves['pair']}: memory-bound arithmetic (not a measurement)", fontsize=10)
    return fig
