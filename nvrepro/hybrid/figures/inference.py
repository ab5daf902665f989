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
