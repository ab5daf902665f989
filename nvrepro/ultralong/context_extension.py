"""Notebook 02 (``notebooks/ultralong/02_context_extension.ipynb``): extend the toy model's context
8x with each RoPE scaling and compare (UltraLong Sec. 3-4 at toy scale).

The experiment's shape: its profiles (:data:`PROFILES`, shared with notebook 03 in
:mod:`nvrepro.ultralong.extension`, which also holds the training and evaluation machinery),
:func:`run` (plain data), :func:`summary` / :func:`summary_text` (what the notebook prints), the
four claims its figures test (:data:`NEEDLE`, :data:`RULER`, :data:`LATE_LOSS`, :data:`SHORT_LOSS`,
each judged from the metrics dict its figure saves, by the rules of :mod:`nvrepro.ultralong.judging`)
and its plots (:mod:`nvrepro.ultralong.figures`, notebook 02's section).

Metrics the claims read: ``{"summary": summary(result), "headline": result["headline"],
"base_short_loss_per_block": ...}``; per method the summary row carries the first seed's probe
counts at ``s L`` and per-block losses (see :func:`summary`); ``headline`` the probe counts of
YaRN, NTK-aware and no scaling at ``s L`` on every seed, which :data:`NEEDLE` and :data:`RULER`
pool. The base itself is judged by :data:`nvrepro.ultralong.base.BASE` on ``result["base_run"]``.
"""

from __future__ import annotations

from typing import Any, Mapping

from nvrepro.core.tooling.claims import Claim, Judgement, at_least, better
from nvrepro.core.tooling.timing import num_threads
from nvrepro.core.tooling.weight_cache import use_cache
from nvrepro.ultralong.evaluate import greedy_predictor, loss_by_position, niah_grid, ruler_scores, short_context_loss
from nvrepro.ultralong.base import base_report, train_base
from nvrepro.core.training.yaml_fit import read_cli_yaml
from nvrepro.ultralong.extension import (PROFILES, arm_yaml, at_extended_length, data_overrides, evaluate, plan,
                                         rescale, short_docs, short_len, stretched, tokenizer, train)
from nvrepro.core.tooling.claims import all_parts
from nvrepro.core.tooling.intervals import paired_gain
from nvrepro.ultralong.judging import lower, not_worse, part, pooled_at_sL, probes_at_sL
from nvrepro.core.tooling.report import table_text
from nvrepro.ultralong.rope_scaling import METHOD_LABELS, METHODS

__all__ = ["FURTHER", "HEADLINE", "LATE_LOSS", "NEEDLE", "NEEDLE_MARGIN", "PROFILES", "RULER", "SHORT_LOSS",
           "SHORT_LOSS_TOLERANCE", "headline_text", "pooled_at_sL", "run", "summary", "summary_text"]

# "Much better than no scaling" at retrieving the passkey: by at least this much accuracy.
NEEDLE_MARGIN = 0.25
# "Within 5%": YaRN's short-context loss may exceed no scaling's by at most this fraction.
SHORT_LOSS_TOLERANCE = 0.05


# The methods of the headline comparison at s L, repeated on every seed of the profile.
HEADLINE = ("yarn", "ntk", "none")


def _train_arm(method: str, p: dict, seed: int, base_key: str, base, cache: bool, progress: bool):
    return train(arm_yaml(method), seed=seed, steps=p["extend_steps"], init=(base_key, base.state_dict()),
                 data_overrides=data_overrides(p), cache=cache, progress=progress)[1]


def _further_arm(method: str, p: dict, seed: int, base_key: str, base, cache: bool, progress: bool):
    yaml = arm_yaml(method)
    steps = p["extend_steps"] or int(read_cli_yaml(yaml)["trainer"]["max_steps"])
    model_overrides, data = stretched(yaml, p["further_factor"], steps)
    return train(yaml, seed=seed, steps=p["extend_steps"], init=(base_key, base.state_dict()),
                 model_overrides=model_overrides, data_overrides=data_overrides(p) | data, cache=cache,
                 progress=progress)[1]


def _counts_at_sL(evaluation: dict, seed: int) -> dict:
    row = at_extended_length(evaluation)
    return {"seed": seed} | {k: row[k] for k in ("niah_correct_at_sL", "niah_probes_at_sL", "ruler_correct_at_sL",
                                                 "ruler_probes_at_sL")}


def run(profile: str = "smoke", seed: int = 0, methods=METHODS, cache: bool | None = None,
        progress: bool = True) -> dict:
    """For each seed ``seed, seed + 1, ...`` (the profile's ``num_seeds``): train the base of that
    seed (:func:`~nvrepro.ultralong.base.train_base`; cached in the paper profile) and measure it
    (:func:`~nvrepro.ultralong.base.base_report`); extend it with each :data:`HEADLINE` method and
    count the probes answered at ``s L``. On the first seed, every method of ``methods`` also gets the
    full evaluation (:func:`~nvrepro.ultralong.extension.evaluate`: grids over lengths, losses).
    Every arm of a seed starts from that seed's base and uses that seed for its data order and probes.

    Returns ``{"short_len", "factor", "lengths", "seeds", "base": the first seed's base: its short-context
    loss (mean and per block), needle grid and RULER-style scores at ``L`` only, "methods": {method:
    {"eval", "short_loss_scaled", "loss_by_position_scaled": scaling alone}} (first seed), "headline":
    {method: [per seed: probes answered and asked at s L]}, "further": {"factor", "length", "headline": the
    same counts for the headline methods extended to the profile's ``further_factor`` instead of ``s``
    (first seed)}, "base_run": {"profile", "seeds", "reports",
    "curves"} (as :func:`nvrepro.ultralong.base.run`, for :data:`~nvrepro.ultralong.base.BASE`), "profile",
    "seed"}``.
    """
    p = plan(profile)
    cache = use_cache(profile, cache)
    seeds = [seed + i for i in range(p["num_seeds"])]
    L0 = short_len()
    out = {"short_len": L0, "factor": p["lengths_factor"][-1], "lengths": [k * L0 for k in p["lengths_factor"]],
           "seeds": seeds, "methods": {}, "headline": {m: [] for m in HEADLINE},
           "base_run": {"profile": profile, "seeds": seeds, "reports": [], "curves": []},
           "profile": profile, "seed": seed}
    for s in seeds:
        base_key, base, curve = train_base(profile, seed=s, cache=cache, progress=progress)
        out["base_run"]["reports"].append(base_report(base, profile, seed=s))
        out["base_run"]["curves"].append(curve)
        tok = tokenizer(s, p["max_documents"])
        docs = short_docs(s, p["max_documents"])
        if s == seed:
            with num_threads(1):
                short = short_context_loss(base, docs[0], L0, docs[1], max_blocks=p["short_blocks"])
                predict = greedy_predictor(base)  # retrieval at the trained length L, before any extension
                base_niah = niah_grid(predict, [L0], p["depths"], p["samples"], seed=1000 + s, tokenizer=tok,
                                      progress=False)
                base_ruler = ruler_scores(predict, [L0], p["ruler_tasks"], p["samples"] * len(p["depths"]),
                                          seed=1000 + s, tokenizer=tok, progress=False)
            out["base"] = {"short_loss": short["loss"], "short_loss_per_block": short["per_block"],
                           "niah_at_L": base_niah, "ruler_at_L": base_ruler}
            out["further"] = {"factor": p["further_factor"], "length": int(p["further_factor"] * L0),
                              "headline": {}}
            for method in HEADLINE:  # one step beyond s: the same recipe at a larger scale and length
                model = _further_arm(method, p, s, base_key, base, cache, progress)
                evaluation = evaluate(model, profile, s, docs, tok, factors=[p["further_factor"]])
                out["further"]["headline"][method] = [_counts_at_sL(evaluation, s)]
            for method in methods:
                with num_threads(1):
                    scaled = rescale(base, method)
                    scaled_loss = short_context_loss(scaled, docs[0], L0, docs[1], max_blocks=p["short_blocks"])
                    scaled_by_pos = loss_by_position(scaled, docs[0], out["lengths"][-1], docs[1],
                                                     max_blocks=p["long_blocks"])
                model = _train_arm(method, p, s, base_key, base, cache, progress)
                out["methods"][method] = {"eval": evaluate(model, profile, s, docs, tok),
                                          "short_loss_scaled": scaled_loss["loss"],
                                          "loss_by_position_scaled": scaled_by_pos}
        for method in HEADLINE:
            if s == seed and method in out["methods"]:
                evaluation = out["methods"][method]["eval"]
            else:
                model = _train_arm(method, p, s, base_key, base, cache, progress)
                evaluation = evaluate(model, profile, s, docs, tok, factors=p["lengths_factor"][-1:])
            out["headline"][method].append(_counts_at_sL(evaluation, s))
    return out


def summary(result: dict) -> dict:
    """Per method: mean needle accuracy at ``L`` and at ``s L``, RULER average at ``s L``, the loss
    in the first and last position bins of ``s L`` blocks, the short-context loss after scaling
    alone and after continued pretraining and its relative change from the base; and what the
    claims are judged on: the probe counts at ``s L`` and the per-block losses
    (:func:`~nvrepro.ultralong.extension.at_extended_length`, ``short_loss_per_block``)."""
    base = result["base"]["short_loss"]
    out = {}
    for m, r in result["methods"].items():
        e = r["eval"]
        out[m] = {"niah_at_L": e["niah"]["per_length"][0], "niah_at_sL": e["niah"]["per_length"][-1],
                  "niah_mean": e["niah"]["mean"], "ruler_at_sL": e["ruler"]["average"][-1],
                  "short_loss": e["short_loss"], "short_loss_scaled": r["short_loss_scaled"],
                  "late_loss": e["loss_by_position"]["loss"][-1], "early_loss": e["loss_by_position"]["loss"][0],
                  "short_loss_change": e["short_loss"] / base - 1,
                  **at_extended_length(e), "short_loss_per_block": e["short_loss_per_block"]}
    return out


def summary_text(result: dict) -> str:
    """The base model's line and one line per method of :func:`summary` (what the notebook prints)."""
    base = result["base"]
    per_depth = [round(a[0], 2) for a in base["niah_at_L"]["accuracy"]]
    head = (f"base model at L = {result['short_len']}: short-context loss {base['short_loss']:.3f}; passkey accuracy "
            f"{base['niah_at_L']['mean']:.2f} (per depth {per_depth}); "
            + ", ".join(f"{t} {v[0]:.2f}" for t, v in base["ruler_at_L"]["tasks"].items()))
    return head + "\n" + table_text(
        summary(result), [("needle@L", "niah_at_L", ".2f"), ("needle@sL", "niah_at_sL", ".2f"),
                          ("RULER@sL", "ruler_at_sL", ".2f"), ("late loss", "late_loss", ".3f"),
                          ("loss scaled", "short_loss_scaled", ".3f"), ("loss after", "short_loss", ".3f"),
                          ("change", "short_loss_change", "+.1%")],
        first="method", labels=METHOD_LABELS, first_width=20) + "\n" + headline_text(result)


def headline_text(result: dict) -> str:
    """Probes answered at ``s L`` per headline method and seed, and pooled over the seeds."""
    lines = [f"at s L = {result['lengths'][-1]:,} tokens, seeds {result['seeds']} (answered / asked):"]
    for m, rows in result["headline"].items():
        pooled = pooled_at_sL(result["headline"], m)
        cells = [f"{kind} " + ", ".join(f"{r[f'{key}_correct_at_sL']}/{r[f'{key}_probes_at_sL']}" for r in rows)
                 + f" (pooled {pooled[f'{key}_correct_at_sL'] / pooled[f'{key}_probes_at_sL']:.2f})"
                 for kind, key in (("passkey", "niah"), ("RULER-style", "ruler"))]
        lines.append(f"  {METHOD_LABELS.get(m, m):<20} " + "; ".join(cells))
    return "\n".join(lines)


# --- claims ----------------------------------------------------------------------------------------

def _per_seed(headline: Mapping[str, Any], kind: str) -> dict:
    return {m: [f"{r[f'{kind}_correct_at_sL']}/{r[f'{kind}_probes_at_sL']}" for r in rows]
            for m, rows in headline.items()}


def judge_needle(metrics: Mapping[str, Any]) -> Judgement:
    """Passkey accuracy at ``s L`` per method, every depth's probes and every seed's pooled
    (``metrics["headline"]``, Wilson): "YaRN at least as well as NTK-aware" is
    :func:`~nvrepro.core.tooling.claims.at_least` (YaRN's whole interval at or above NTK's estimate);
    "much better than no scaling" needs YaRN's interval to sit at least :data:`NEEDLE_MARGIN` above the
    whole interval of no scaling (``better`` with a margin: a superiority claim, so both intervals
    count). The per-seed counts are in the evidence: the seed-to-seed spread beside the pooled share."""
    h = metrics["headline"]
    yarn, ntk, none = (probes_at_sL(pooled_at_sL(h, m), "niah") for m in ("yarn", "ntk", "none"))
    return all_parts({
        "needle at sL: YaRN >= NTK": part(at_least(yarn, ntk), "at_least (Wilson, seeds pooled)", yarn=yarn, ntk=ntk),
        f"needle at sL: YaRN >= none + {NEEDLE_MARGIN}": part(
            yarn.low >= none.high + NEEDLE_MARGIN, f"YaRN low >= none high + {NEEDLE_MARGIN} (Wilson, seeds pooled)",
            yarn=yarn, none=none),
    }, evidence=dict(margin=NEEDLE_MARGIN, per_seed=_per_seed(h, "niah"), seeds=[r["seed"] for r in h["yarn"]]))


def judge_ruler(metrics: Mapping[str, Any]) -> Judgement:
    """RULER-style accuracy at ``s L`` per method, every task's and every seed's probes pooled
    (``metrics["headline"]``, Wilson; equal samples per task, so the pooled share is the task
    average): "at least NTK-aware's" is :func:`~nvrepro.core.tooling.claims.at_least`, "above no
    scaling's" is :func:`~nvrepro.core.tooling.claims.better` (the intervals do not overlap)."""
    h = metrics["headline"]
    yarn, ntk, none = (probes_at_sL(pooled_at_sL(h, m), "ruler") for m in ("yarn", "ntk", "none"))
    return all_parts({
        "RULER-style at sL: YaRN >= NTK": part(at_least(yarn, ntk), "at_least (Wilson, seeds pooled)", yarn=yarn,
                                               ntk=ntk),
        "RULER-style at sL: YaRN > none": part(better(yarn, none), "better (Wilson, seeds pooled)", yarn=yarn,
                                               none=none),
    }, evidence=dict(per_seed=_per_seed(h, "ruler"), seeds=[r["seed"] for r in h["yarn"]]))


def judge_late_loss(metrics: Mapping[str, Any]) -> Judgement:
    """The loss in the last position bin of the ``s L`` blocks, paired by block (every method reads
    the same blocks): YaRN "at most NTK-aware's" when the bootstrap interval of NTK's minus YaRN's
    loss lies at or above 0, "below no scaling's" when none's minus YaRN's lies above 0
    (:mod:`nvrepro.ultralong.judging`)."""
    s = metrics["summary"]
    yarn = s["yarn"]["late_loss_per_block"]
    vs_ntk = paired_gain(yarn, s["ntk"]["late_loss_per_block"])
    vs_none = paired_gain(yarn, s["none"]["late_loss_per_block"])
    return all_parts({
        "late-position loss at sL: YaRN <= NTK": part(not_worse(vs_ntk), "NTK - YaRN, paired bootstrap, low >= 0",
                                                      ntk_minus_yarn=vs_ntk),
        "late-position loss at sL: YaRN < none": part(lower(vs_none), "none - YaRN, paired bootstrap, low > 0",
                                                      none_minus_yarn=vs_none),
    }, evidence=dict(blocks=len(yarn)))


def judge_short_loss(metrics: Mapping[str, Any]) -> Judgement:
    """YaRN's short-context loss after the continued pretraining against ``(1 + tolerance)`` times
    the base model's, as the paper compares its extended model with Llama-3.1 itself, paired by block
    (both read the same short blocks at ``L``; blocks are equally long, so the mean of per-block losses
    is the loss): held when the bootstrap interval of ``(1 + tolerance) * base - YaRN`` lies at or
    above 0 (:func:`~nvrepro.ultralong.judging.not_worse`)."""
    s = metrics["summary"]
    base = metrics["base_short_loss_per_block"]
    gain = paired_gain(s["yarn"]["short_loss_per_block"], base, factor=1 + SHORT_LOSS_TOLERANCE)
    name = f"short loss: YaRN within {SHORT_LOSS_TOLERANCE:.0%} of the base"
    rule = f"{1 + SHORT_LOSS_TOLERANCE:g} x base - YaRN, paired bootstrap, low >= 0"
    return all_parts({name: part(not_worse(gain), rule, headroom=gain, yarn=s["yarn"]["short_loss"],
                                 base=sum(base) / len(base))},
                     evidence=dict(tolerance=SHORT_LOSS_TOLERANCE, blocks=len(base)))


def judge_further(metrics: Mapping[str, Any]) -> Judgement:
    """Passkey accuracy of the headline methods extended beyond ``s`` (``metrics["further"]``, the
    first seed's probes at the larger length, every depth pooled, Wilson): "YaRN at least as well as
    NTK-aware" is :func:`~nvrepro.core.tooling.claims.at_least`, "better than no scaling" is
    :func:`~nvrepro.core.tooling.claims.better` (the intervals do not overlap)."""
    f = metrics["further"]
    yarn, ntk, none = (probes_at_sL(pooled_at_sL(f["headline"], m), "niah") for m in ("yarn", "ntk", "none"))
    where = f"needle at {f['factor']:g}L"
    return all_parts({
        f"{where}: YaRN >= NTK": part(at_least(yarn, ntk), "at_least (Wilson)", yarn=yarn, ntk=ntk),
        f"{where}: YaRN > none": part(better(yarn, none), "better (Wilson)", yarn=yarn, none=none),
    }, evidence=dict(factor=f["factor"], length=f["length"]))


NEEDLE = Claim(
    "niah_heatmaps",
    "After 8x extension and continued pretraining, YaRN retrieves the passkey at the extended length at least "
    f"as well as NTK-aware and much better than no scaling (by at least {NEEDLE_MARGIN:g} in accuracy); probes "
    "pooled over training seeds.",
    judge_needle)
RULER = Claim(
    "ruler_vs_length",
    "At the extended length YaRN's RULER-style accuracy is at least NTK-aware's and above no scaling's (probes "
    "pooled over training seeds).",
    judge_ruler)
LATE_LOSS = Claim(
    "loss_by_position",
    "After continued pretraining, YaRN's loss late in the extended block is at most NTK-aware's and below "
    "no scaling's.",
    judge_late_loss)
SHORT_LOSS = Claim(
    "short_context_loss",
    f"YaRN's short-context loss at L after extension and continued pretraining stays within "
    f"{SHORT_LOSS_TOLERANCE:.0%} of the base model's.",
    judge_short_loss)
FURTHER = Claim(
    "beyond_8x",
    f"Extended {PROFILES['paper']['further_factor']}x instead of 8x with the same recipe, YaRN still retrieves the "
    "passkey at the longer length at least as well as NTK-aware and better than no scaling (first seed).",
    judge_further)
