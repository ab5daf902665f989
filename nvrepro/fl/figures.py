"""Plots for the DP-FL track, one section per notebook. Each takes the plain-data result of its
experiment module's ``run`` and returns the figure; the notebook saves it with the module's claim.
Error bars are 95% bootstrap intervals of a mean over held-out users."""

from __future__ import annotations

import numpy as np
from matplotlib.patches import Circle, Rectangle
from matplotlib.ticker import NullFormatter

from nvrepro.core.tooling.figures import mean_error_bar, new_figure

_ARM_STYLE = {"fedavg": dict(color="C7", ls="--"), "dp_many": dict(color="C0"), "dp_few": dict(color="C3")}


def _bars(ax, labels, series, colors, ylabel):
    stats = [mean_error_bar(v) for v in series]
    x = np.arange(len(labels))
    ax.bar(x, [s[0] for s in stats], yerr=[[s[1] for s in stats], [s[2] for s in stats]], capsize=3,
           color=colors)
    ax.set_xticks(x, labels, rotation=15, ha="right")
    lo = min(s[0] - s[1] for s in stats)
    hi = max(s[0] + s[2] for s in stats)
    pad = 0.15 * (hi - lo) + 1e-3
    ax.set(ylabel=ylabel, ylim=(lo - pad, hi + pad))
    for xi, s in zip(x, stats):
        ax.annotate(f"{s[0]:.3f}", (xi, s[0] + s[2]), ha="center", va="bottom", fontsize=7)


def _arm_label(arm: dict) -> str:
    eps = "no noise" if arm["epsilon"] is None else f"ε {arm['epsilon']:.2g}"
    return f"m {arm['clients_per_round']}, {eps}, z {arm['noise_multiplier']:.2f}"


# --- 01: DP-FedAvg and clients per round ------------------------------------------------------------

def plot_round_demo(demo: dict):
    """One round in two dimensions: raw updates, the ball of radius C, clipped updates, their mean,
    and the cloud of noisy means (one per noise draw)."""
    fig, ax = new_figure()
    c = demo["clip_norm"]
    ax.add_patch(Circle((0, 0), c, fill=False, ls="--", color="k", lw=0.8))
    ax.scatter(*demo["noisy"].T, s=4, color="C3", alpha=0.25, label=f"noisy means (std z C / m = {demo['noise_std']:.3f})")
    for r, k in zip(demo["raw"], demo["clipped"]):
        ax.annotate("", k, r, arrowprops=dict(arrowstyle="->", color="C7", lw=0.6))
    ax.scatter(*demo["raw"].T, color="C7", s=18, label="client updates")
    ax.scatter(*demo["clipped"].T, color="C0", s=18, label=f"clipped to norm C = {c:g}")
    ax.scatter(*demo["mean"], color="k", marker="*", s=120, label="mean of clipped", zorder=5)
    lim = 1.1 * max(np.abs(demo["raw"]).max(), c)
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xlabel="parameter 1", ylabel="parameter 2",
           title=f"one DP-FedAvg round, m = {len(demo['raw'])}, z = {demo['noise_multiplier']:g}")
    ax.legend(frameon=False, fontsize=7, loc="lower left")
    return fig


def plot_more_clients(result: dict):
    """Held-out loss per round of the three arms (left); client update norms before clipping against
    C, with the largest contribution after it (middle); epsilon over rounds of the two DP arms (right)."""
    from nvrepro.fl.accounting import epsilon

    fig, (ax, ax_norm, ax_eps) = new_figure(1, 3)
    arms = result["arms"]
    for name, arm in arms.items():
        ax.plot(arm["curve_rounds"], arm["curve_loss"], marker="o", label=f"{name}: {_arm_label(arm)}",
                **_ARM_STYLE.get(name, {}))
    ax.set(xlabel="round", ylabel="held-out nats per byte", title="DP-FedAvg on Flower, held-out users")
    ax.legend(frameon=False, fontsize=7)
    names = list(arms)
    x = np.arange(len(names))
    for i, name in enumerate(names):
        q05, q25, q50, q75, q95 = arms[name]["update_norm_quantiles"]
        ax_norm.plot([i, i], [q05, q95], color="C7", lw=1)
        ax_norm.add_patch(Rectangle((i - 0.2, q25), 0.4, q75 - q25, color="C7",
                                                                      alpha=0.4))
        ax_norm.plot([i - 0.2, i + 0.2], [q50, q50], color="k", lw=1.2)
        ax_norm.plot(i, arms[name]["max_norm"], marker="v", color="C3", ms=7)
        ax_norm.annotate(f"{arms[name]['clipped_share']:.0%} clipped", (i, q95), textcoords="offset points",
                         xytext=(0, 4), ha="center", fontsize=7)
    ax_norm.axhline(arms[names[0]]["clip_norm"], color="k", lw=0.8, ls="--", label="clip norm C")
    ax_norm.plot([], [], marker="v", color="C3", ls="", label="largest contribution after clipping")
    ax_norm.set_xticks(x, names)
    ax_norm.set(ylabel="client update norm ||Δ|| before clipping", ylim=(0, None),
                title="update norms (5-25-50-75-95%) and C")
    ax_norm.legend(frameon=False, fontsize=7, loc="lower right")
    for name in ("dp_many", "dp_few"):
        arm = arms[name]
        q = arm["clients_per_round"] / arm["num_users"]
        rounds = np.unique(np.linspace(1, arm["rounds"], 12).astype(int))
        ax_eps.plot(rounds, [epsilon(arm["noise_multiplier"], q, int(r), result["delta"]) for r in rounds],
                    marker="o", label=f"{name}: q {q:.3f}, z {arm['noise_multiplier']:.2f}", **_ARM_STYLE[name])
    ax_eps.set(xlabel="round", ylabel=f"ε (RDP, Poisson, δ {result['delta']:g})", title="privacy spent")
    ax_eps.legend(frameon=False, fontsize=7)
    return fig


# --- 02: public data ---------------------------------------------------------------------------------

def _eps_label(eps) -> str:
    return "∞" if eps is None else f"{eps:g}"


def plot_pretraining(result: dict):
    """Held-out loss after DP-FL against epsilon, from scratch and from the public-pretrained model
    (left); the held-out loss per round at the headline epsilon (right)."""
    from nvrepro.fl.public_experiment import eps_name

    fig, (ax, ax_curve) = new_figure(1, 2)
    eps = result["epsilons"]
    x = np.arange(len(eps))
    for start, color, label in (("scratch", "C7", "DP-FL from scratch"), ("public", "C0", "public pretraining + DP-FL")):
        stats = [mean_error_bar(result["arms"][f"{start}_{eps_name(e)}"]["user_loss"]) for e in eps]
        ax.errorbar(x, [s[0] for s in stats], yerr=[[s[1] for s in stats], [s[2] for s in stats]], capsize=3,
                    marker="o", color=color, label=label)
    ax.axhline(np.mean(result["before_fl"]["public"]), color="C0", lw=0.8, ls=":", label="public pretraining alone")
    ax.set_xticks(x, [_eps_label(e) for e in eps])
    ax.set(xlabel="user-level ε (δ %g)" % result["delta"], ylabel="held-out nats per byte",
           title="public pretraining vs scratch")
    ax.legend(frameon=False, fontsize=7)
    h = eps_name(result["headline"])
    for start, color in (("scratch", "C7"), ("public", "C0")):
        arm = result["arms"][f"{start}_{h}"]
        ax_curve.plot(arm["curve_rounds"], arm["curve_loss"], marker="o", color=color, label=f"{start}, ε {h}")
    ax_curve.set(xlabel="round", ylabel="held-out nats per byte", title=f"learning curves at ε {h}")
    ax_curve.legend(frameon=False, fontsize=7)
    return fig


def plot_tokenizer(result: dict):
    """Held-out loss per byte after DP-FL from scratch at the headline epsilon, per tokenizer."""
    from nvrepro.fl.public_experiment import eps_name

    fig, ax = new_figure()
    toks = result["tokenizers"]
    arms = result["arms"]
    labels = ["bytes", f"public BPE ({toks['public']['vocab_size']})",
              f"private BPE ({toks['private']['vocab_size']}, leaks)"]
    series = [arms[f"scratch_{eps_name(result['headline'])}"]["user_loss"], arms["tok_public_bpe"]["user_loss"],
              arms["tok_private_bpe"]["user_loss"]]
    _bars(ax, labels, series, ["C7", "C0", "C3"], "held-out nats per byte")
    ax.set_title(f"tokenizers at ε {result['headline']:g}, from scratch; private-only tokens: "
                 f"public {toks['public']['private_only_tokens']}, private {toks['private']['private_only_tokens']}",
                 fontsize=8)
    return fig


def plot_distillation(result: dict):
    """Held-out loss of the public models before DP-FL (left) and of the two on-device starts after
    DP-FL at the headline epsilon (right)."""
    from nvrepro.fl.public_experiment import eps_name

    fig, (ax, ax_after) = new_figure(1, 2)
    before = result["before_fl"]
    _bars(ax, ["teacher (larger)", "on-device, pretrained", "on-device, distilled"],
          [before["teacher"], before["public"], before["distilled"]], ["C2", "C0", "C4"], "held-out nats per byte")
    ax.set_title("public models, before DP-FL")
    arms = result["arms"]
    _bars(ax_after, ["pretrained + DP-FL", "distilled + DP-FL"],
          [arms[f"public_{eps_name(result['headline'])}"]["user_loss"], arms["distilled"]["user_loss"]],
          ["C0", "C4"], "held-out nats per byte")
    ax_after.set_title(f"after DP-FL at ε {result['headline']:g}")
    return fig


def plot_matching(result: dict):
    """Held-out loss after public pretraining on each selection, against the public sentences kept
    (left, the share of them close to users' text annotated); after DP-FL (right)."""
    fig, (ax, ax_after) = new_figure(1, 2)
    budgets = result["budgets"]
    for method, color in (("matching", "C3"), ("random", "C7")):
        keys = [f"{method}_{b}" for b in budgets]
        stats = [mean_error_bar(result["before_fl"][k]) for k in keys]
        ax.errorbar(budgets, [s[0] for s in stats], yerr=[[s[1] for s in stats], [s[2] for s in stats]], capsize=3,
                    marker="o", color=color, label=method)
        for b, k, s in zip(budgets, keys, stats):
            ax.annotate(f"{result['selections'][k]['near_share']:.0%}", (b, s[0]), textcoords="offset points",
                        xytext=(4, 4), fontsize=7, color=color)
    ax.set(xscale="log", xlabel="public sentences kept", ylabel="held-out nats per byte",
           title="pretraining on the selection alone")
    ax.set_xticks(budgets, [f"{b:,}" for b in budgets])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.legend(frameon=False, fontsize=7, title="labels: chat-like share", title_fontsize=7)
    low, high = min(budgets), max(budgets)
    names = [f"matching_{low}", f"random_{low}", f"random_{high}"]
    _bars(ax_after, [n.replace("_", " ") for n in names], [result["arms"][n]["user_loss"] for n in names],
          ["C3", "C7", "C7"], "held-out nats per byte")
    ax_after.set_title(f"after DP-FL at ε {result['headline']:g}")
    return fig
