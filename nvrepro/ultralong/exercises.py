"""Checkers for the exercises in ``notebooks/ultralong/01_rope_scaling.ipynb`` (and 02, 03 below).

Each checker runs the real code in :mod:`nvrepro.core.lm.layers.rope_scaling`, says whether the
student's answer holds and why, and returns a :class:`~nvrepro.core.tooling.verdicts.Check`. The
model shape of the questions (head_dim, theta, original context, alpha, beta) is read from the
configs (UltraLong-8B-1M for notebook 01, the toy YaRN arm for 02 and 03), so the questions follow
the configs if they change. No exercise asks for a tracked file to be edited: a setting to try is
an argument (:func:`extension_arm` trains one arm with it, from the cached base).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from nvrepro.core.lm.config import model_config_from_yaml
from nvrepro.core.lm.layers.rope_scaling import YARN_DEFAULT_BETA, rotations, scaled_rope, yarn_ramp
from nvrepro.core.tooling.claims import at_least, better
from nvrepro.core.tooling.intervals import paired_gain
from nvrepro.core.tooling.validation import ConfigError
from nvrepro.core.tooling.verdicts import Check, as_number, call_student, check_number, report
from nvrepro.ultralong.rope_scaling import ultralong_attention


# --- (a) what position interpolation does to the fastest pair -------------------------------

def check_pi_wavelength(answer: float | None, *, verbose: bool = True) -> Check:
    """Exercise (a): the wavelength (tokens) of pair 0 after PI with UltraLong-1M's ``s``."""
    a = ultralong_attention()
    inv, _ = scaled_rope(a.head_dim, a.rope_theta, "linear", a.rope_factor)
    actual = 2 * math.pi / inv[0].item()
    why = (f"pair 0 has w_0 = theta^0 = 1 rad/token, a wavelength of 2*pi = {2 * math.pi:.2f} tokens; "
           f"PI divides every frequency by s = {a.rope_factor:g}, so its wavelength becomes "
           f"2*pi*s = {actual:.1f} tokens. Neighbouring tokens now differ by 1/s of the angle "
           "the model learned to read: PI blurs local order, the reason NTK and YaRN spare the fast pairs.")
    slips = ((2 * math.pi, "that is the wavelength before scaling"),
             (a.rope_factor, "you found the factor; the wavelength is 2*pi/w, not 1/w"))
    return check_number(answer, actual, what="the wavelength in tokens", rel_tol=0.01, unit="tokens", why=why,
                        slips=slips, verbose=verbose)


# --- (b) implement NTK-aware scaling ---------------------------------------------------------

def check_ntk_inv_freq(student_fn: Callable[[int, float, float], torch.Tensor], *,
                       verbose: bool = True) -> Check:
    """Exercise (b): ``student_fn(head_dim, theta, s)`` must return the NTK-aware ``(head_dim/2,)``
    inverse frequencies; compared with ``scaled_rope(..., "ntk", s)`` on two shapes."""
    cases = [(64, 10000.0, 8.0), (128, 500000.0, 128.0)]
    for hd, theta, s in cases:
        out, verdict = call_student(student_fn, hd, theta, s, name="ntk_inv_freq")
        if verdict is not None:
            return report(verdict, verbose)
        ref, _ = scaled_rope(hd, theta, "ntk", s)
        if not isinstance(out, torch.Tensor) or out.shape != ref.shape:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            return report(Check(False, f"for head_dim={hd} expected shape {tuple(ref.shape)}, got {got}."), verbose)
        out = out.double()
        if torch.allclose(out, ref, rtol=1e-6):
            continue
        base, _ = scaled_rope(hd, theta)
        msg = f"head_dim={hd}, theta={theta:g}, s={s:g}: your frequencies differ from NTK-aware scaling"
        if torch.allclose(out, base / s, rtol=1e-6):
            msg += ("; you divided every frequency by s -- that is PI. NTK-aware changes the base "
                    "instead, so fast pairs barely move and only the slowest is divided by s")
        elif torch.allclose(out, scaled_rope(hd, theta * s)[0], rtol=1e-6):
            msg += ("; you used theta*s. Then the slowest pair is divided by s^((D-2)/D) only; "
                    "the exponent D/(D-2) makes it exactly s")
        return report(Check(False, msg + "."), verbose)
    return report(Check(True, "matches: theta' = theta * s^(D/(D-2)) keeps pair 0 (w = 1) and divides "
                        "the slowest pair's frequency by exactly s; everything between is "
                        "interpolated by a factor growing smoothly with i."), verbose)


# --- (c) which pairs does YaRN leave alone? --------------------------------------------------

def check_yarn_untouched(count: int | None, *, verbose: bool = True) -> Check:
    """Exercise (c): how many of the ``head_dim/2`` pairs does YaRN leave exactly unchanged in
    UltraLong-8B-1M's setting (s, original context, alpha, beta from the config)?"""
    a = ultralong_attention()
    keep = yarn_ramp(a.head_dim, a.rope_theta, a.rope_original_max_len, a.rope_alpha, a.rope_beta)
    kept = int((keep == 1).sum())
    squeezed = int((keep == 0).sum())
    base, _ = scaled_rope(a.head_dim, a.rope_theta)
    r = rotations(base, a.rope_original_max_len)
    above_beta = int((r > a.rope_beta).sum())
    why = (f"{kept} of {a.head_dim // 2} pairs keep their frequency: those turning more than "
           f"beta = {a.rope_beta:g} times within the original {a.rope_original_max_len:,} tokens "
           f"({above_beta} pairs; the ramp's edge is rounded down to a whole pair index). "
           f"{squeezed} pairs turning fewer than alpha = {a.rope_alpha:g} times are divided by "
           f"s = {a.rope_factor:g}, and the {a.head_dim // 2 - kept - squeezed} in between are blended.")
    if count is None:
        return report(Check(None, "set `count` to a whole number of pairs."), verbose)
    if not isinstance(count, int) or isinstance(count, bool):
        return report(Check(False, f"expected a whole number, got {count!r}."), verbose)
    if count == kept:
        return report(Check(True, why), verbose)
    hint = ""
    if count == squeezed:
        hint = " (That is how many are fully interpolated, the slow end.)"
    elif count == a.head_dim // 2 - kept - squeezed:
        hint = " (That is the blended middle.)"
    return report(Check(False, f"you said {count}: {why}{hint}"), verbose)


# === notebook 02: the extension experiment =====================================================

def check_unchanged_short_loss(method: str | None, result: dict, *, verbose: bool = True) -> Check:
    """Exercise 02(a): which method leaves the short-context loss *exactly* at the base model's
    before any continued pretraining? Checked against the measured ``result`` of
    :func:`nvrepro.ultralong.context_extension.run` and the frequencies themselves."""
    from nvrepro.ultralong.base import BASE_YAML
    from nvrepro.ultralong.extension import arm_yaml

    if method is None:
        return report(Check(None, "set `method` to 'none', 'linear', 'ntk' or 'yarn'."), verbose)
    if method not in result["methods"]:
        return report(Check(False, f"{method!r} is not one of {list(result['methods'])}."), verbose)
    base = model_config_from_yaml(BASE_YAML).attention
    same = []
    for m in result["methods"]:
        a = model_config_from_yaml(arm_yaml(m)).attention
        inv, attn = scaled_rope(a.head_dim, a.rope_theta, a.rope_scaling,
                                a.rope_factor if a.rope_scaling != "none" else 1.0, a.rope_original_max_len,
                                alpha=a.rope_alpha, beta=a.rope_beta)
        ref, _ = scaled_rope(base.head_dim, base.rope_theta)
        if torch.allclose(inv, ref) and attn == 1.0:
            same.append(m)
    gap = {m: r["short_loss_scaled"] - result["base"]["short_loss"] for m, r in result["methods"].items()}
    why = (f"only {same} keep every frequency and an attention factor of 1, so on positions below L "
           f"the model computes exactly what it was trained to (measured loss change: "
           + ", ".join(f"{m} {g:+.4f}" for m, g in gap.items())
           + "). PI squeezes every pair (neighbours look 8x closer), NTK moves all but the fastest pair, "
             "YaRN keeps the fast pairs but adds its attention temperature.")
    return report(Check(method in same, why if method in same else f"you said {method!r}: {why}"), verbose)


def check_mean_at_length(student_fn: Callable[[dict, int], float], result: dict, *, verbose: bool = True) -> Check:
    """Exercise 02(b): ``student_fn(grid, length)`` returns the mean passkey accuracy over depths at
    one context length of a needle grid (``grid["accuracy"]`` is depths x lengths)."""
    for method, r in result["methods"].items():
        grid = r["niah"] if "niah" in r else r["eval"]["niah"]
        for j, length in enumerate(grid["lengths"]):
            out, verdict = call_student(student_fn, grid, length, name="mean_at_length")
            if verdict is not None:
                return report(verdict, verbose)
            ref = sum(row[j] for row in grid["accuracy"]) / len(grid["accuracy"])
            value, verdict = as_number(out, "a float")
            if verdict is not None:
                return report(verdict, verbose)
            if not math.isclose(value, ref, abs_tol=1e-9):
                hint = " (Rows are depths, columns lengths: average down a column.)"
                return report(Check(False, f"{method} at {length}: got {value:.4f}, expected {ref:.4f}.{hint}"), verbose)
    return report(Check(True, "matches: each column of the heatmap averaged over needle depths -- "
                        "the 'accuracy at length' that long-context papers quote."), verbose)


def yarn_kept_pairs(beta: float, method_yaml=None) -> dict:
    """YaRN's ramp for the toy YaRN arm's shape at ``beta`` (head_dim, theta, original context
    ``L``, ``alpha`` and ``s`` from ``toy_extend_yarn.yaml``, or ``method_yaml``): ``{"kept": pairs
    with ramp 1 (frequency unchanged), "squeezed": ramp 0 (divided by s), "blended": the rest,
    "squeeze": sum over pairs of ln(w_i / w'_i) (total interpolation, nats), "attention": the
    config's AttentionConfig}``. Raises :class:`ConfigError` naming ``beta`` unless
    ``alpha < beta``."""
    from nvrepro.ultralong.extension import arm_yaml

    a = model_config_from_yaml(method_yaml or arm_yaml("yarn")).attention
    if not (isinstance(beta, (int, float)) and not isinstance(beta, bool) and math.isfinite(beta)
            and beta > a.rope_alpha):
        raise ConfigError(f"beta: must be a number above the config's alpha = {a.rope_alpha:g}, got {beta!r}")
    keep = yarn_ramp(a.head_dim, a.rope_theta, a.rope_original_max_len, a.rope_alpha, float(beta))
    base, _ = scaled_rope(a.head_dim, a.rope_theta)
    inv, _ = scaled_rope(a.head_dim, a.rope_theta, "yarn", a.rope_factor, a.rope_original_max_len,
                         alpha=a.rope_alpha, beta=float(beta))
    kept, squeezed = int((keep == 1).sum()), int((keep == 0).sum())
    return {"kept": kept, "squeezed": squeezed, "blended": a.head_dim // 2 - kept - squeezed,
            "squeeze": float((base / inv).log().sum()), "attention": a}


def check_yarn_beta(kept: int | None, interpolates: str | None, beta: float = YARN_DEFAULT_BETA, *,
                    verbose: bool = True) -> Check:
    """Exercise 02(c): with YaRN's ``beta`` set to ``beta`` (default: YaRN's own 32) instead of the
    toy arm's config value, how many of the ``head_dim/2`` pairs does YaRN keep unchanged
    (``kept``), and does it interpolate ``"more"`` or ``"less"`` (``interpolates``; ``"same"``
    when ``beta`` is the config's) in total than at the config's beta? Truth from
    :func:`~nvrepro.core.lm.layers.rope_scaling.yarn_ramp` / ``scaled_rope`` at the arm's shape."""
    try:
        new = yarn_kept_pairs(beta)
    except ConfigError as exc:
        return report(Check(False, str(exc)), verbose)
    a = new["attention"]
    old = yarn_kept_pairs(a.rope_beta)
    base, _ = scaled_rope(a.head_dim, a.rope_theta)
    r = rotations(base, a.rope_original_max_len)
    if math.isclose(new["squeeze"], old["squeeze"], rel_tol=1e-12, abs_tol=1e-12):
        direction = "same"
    else:
        direction = "more" if new["squeeze"] > old["squeeze"] else "less"
    why = (f"with L = {a.rope_original_max_len:,} and head_dim {a.head_dim}, pair i turns r_i = L w_i / 2pi "
           f"times within L (pair 0: {r[0].item():.1f}); YaRN keeps the pairs up to the floor of the index "
           f"where r_i = beta. At beta = {beta:g} that is {new['kept']} of {a.head_dim // 2} pairs "
           f"({int((r > beta).sum())} turn more than beta times), {new['blended']} blended, {new['squeezed']} "
           f"divided by s = {a.rope_factor:g}; at the config's beta = {a.rope_beta:g}: {old['kept']} kept, "
           f"{old['blended']} blended, {old['squeezed']} divided. The total squeeze sum_i ln(w_i / w'_i) goes "
           f"from {old['squeeze']:.3f} to {new['squeeze']:.3f} nats ({direction}). A larger beta keeps fewer fast "
           "pairs, so YaRN moves toward PI (every pair squeezed: neighbouring tokens blur); a smaller one keeps "
           "more, toward no scaling below L.")
    if kept is None or interpolates is None:
        return report(Check(None, "set `kept` to a whole number of pairs and `interpolates` to 'more', 'less' "
                                  "or 'same'."), verbose)
    if not isinstance(kept, int) or isinstance(kept, bool):
        return report(Check(False, f"kept: expected a whole number of pairs, got {kept!r}."), verbose)
    if interpolates not in ("more", "less", "same"):
        return report(Check(False, f"interpolates: expected 'more', 'less' or 'same', got {interpolates!r}."),
                      verbose)
    wrong = []
    if kept != new["kept"]:
        hint = ""
        if kept == old["kept"]:
            hint = " (that is the count at the config's beta)"
        elif kept == new["squeezed"]:
            hint = " (that is how many are divided by s, the slow end)"
        wrong.append(f"you said {kept} pairs kept{hint}")
    if interpolates != direction:
        wrong.append(f"you said it interpolates {interpolates!r}")
    return report(Check(not wrong, why if not wrong else "; ".join(wrong) + f": {why}"), verbose)


# === notebook 03: ablations =====================================================================

def check_two_step_tokens(ratio: float | None, *, verbose: bool = True) -> Check:
    """Exercise 03(a): tokens trained on by the two-step arm divided by the one-step arm's, from
    ``toy_extend_yarn.yaml`` (half the steps at ``s L / 2``, half at ``s L``, same batch size)."""
    from nvrepro.core.training.yaml_fit import read_cli_yaml
    from nvrepro.ultralong.extension import arm_yaml

    cfg = read_cli_yaml(arm_yaml("yarn"))
    (stage,) = cfg["data"]["init_args"]["curriculum"]
    steps, batch, n = stage["steps"], stage["batch_size"], stage["seq_len"]
    one = steps * batch * n
    two = (steps // 2) * batch * (n // 2) + (steps - steps // 2) * batch * n
    actual = two / one
    why = (f"one-step: {steps} steps x {batch} x {n:,} = {one:,} tokens; two-step: {steps // 2} steps at "
           f"{n // 2:,} + {steps - steps // 2} at {n:,} = {two:,} tokens, a ratio of {actual:.3f}. The two-step arm "
           "trains on fewer long-range tokens for the same number of updates: the paper's argument for one step.")
    return check_number(ratio, actual, what="the ratio two-step / one-step tokens", rel_tol=0.01, why=why,
                        verbose=verbose, variable="ratio")


def check_sft_keeps_long(prediction: bool | None, result: dict, tolerance: float | None = None, *,
                         verbose: bool = True) -> Check:
    """Exercise 03(b): predict whether short-only instruction tuning keeps the passkey accuracy at
    ``s L`` within ``tolerance`` (default: the claim's,
    :data:`nvrepro.ultralong.ablations.SFT_NEEDLE_TOLERANCE`) of the model before tuning; checked
    against the measured ``result`` (on the point estimates: the question is about this run's numbers)."""
    if tolerance is None:
        from nvrepro.ultralong.ablations import SFT_NEEDLE_TOLERANCE as tolerance
    if prediction is None:
        return report(Check(None, "set `prediction` to True or False."), verbose)
    before = result["arms"]["separator"]["niah"]["per_length"][-1]
    after = result["arms"]["instruct"]["niah"]["per_length"][-1]
    kept = after >= before - tolerance
    why = (f"passkey accuracy at the extended length went from {before:.2f} to {after:.2f} after tuning on "
           f"short data only ({'kept' if kept else 'lost'} within {tolerance:.2f}). Short SFT updates the "
           "weights, not the RoPE frequencies; whether the long-range skill survives depends on how far "
           "the few SFT steps move the retrieval heads (UltraLong Sec. 4 reports it survives).")
    return report(Check(bool(prediction) == kept, why if bool(prediction) == kept else f"you predicted {prediction}: {why}"),
                  verbose)


def check_upsampling(prediction: bool | None, result: dict, *, verbose: bool = True) -> Check:
    """Exercise 03(c): predict whether training the YaRN arm *without* length upsampling lowers its
    passkey accuracy at ``s L`` (``True``) or not (``False``), against the recipe (notebook 03's
    separator arm and its ``no_upsampling`` arm in ``result``).

    Decided on the intervals of notebook 03's claim (every depth's probes at ``s L`` pooled, Wilson)
    but without its non-inferiority margin, since the question is whether accuracy drops at all:
    lowers when the recipe's interval lies wholly above the other arm's (``better``), does not when
    the other arm's interval lies at or above the recipe's estimate (``at_least``), undecided otherwise and
    when neither arm answers any probe at ``s L`` (``0 >= 0`` tests nothing). The late-position
    loss (paired bootstrap over the same long blocks) is reported beside it."""
    from nvrepro.ultralong.extension import at_extended_length
    from nvrepro.ultralong.judging import probes_at_sL

    if prediction is None:
        return report(Check(None, "set `prediction` to True (no upsampling lowers passkey accuracy at sL) or False."),
                      verbose)
    if not isinstance(prediction, bool):
        return report(Check(False, f"prediction: expected True or False, got {prediction!r}."), verbose)
    recipe = at_extended_length(result["arms"]["separator"])
    other = at_extended_length(result["arms"]["no_upsampling"])
    r_est, o_est = probes_at_sL(recipe, "niah"), probes_at_sL(other, "niah")
    loss = paired_gain(recipe["late_loss_per_block"], other["late_loss_per_block"])
    loss_text = ("late-position loss, not upsampled minus upsampled (paired over blocks): "
                 + ("n/a (fewer than 2 blocks)" if loss is None else f"{loss.value:+.3f} [{loss.low:+.3f}, {loss.high:+.3f}]"))
    numbers = (f"passkey at sL: upsampled {recipe['niah_correct_at_sL']}/{recipe['niah_probes_at_sL']} "
               f"[{r_est.low:.2f}, {r_est.high:.2f}], not upsampled {other['niah_correct_at_sL']}/"
               f"{other['niah_probes_at_sL']} [{o_est.low:.2f}, {o_est.high:.2f}] (Wilson); {loss_text}.")
    mechanism = ("Upsampling changes only the plain-text rows: more of them come from long chapters, whose "
                 "text has more long-range structure, while the passkey skill is taught by the retrieval "
                 "documents, which both arms share. UltraLong upsamples long documents for the long-range "
                 "dependencies of real text.")
    if recipe["niah_correct_at_sL"] + other["niah_correct_at_sL"] == 0:
        return report(Check(None, f"this run cannot decide it: neither arm retrieves any passkey at sL. {numbers} "
                                  f"{mechanism}"), verbose)
    if better(r_est, o_est):
        lowers = True
    elif at_least(o_est, r_est):
        lowers = False
    else:
        return report(Check(None, f"this run cannot decide it (the intervals overlap without the other arm "
                                  f"reaching the recipe's estimate). {numbers} {mechanism}"), verbose)
    said = "" if prediction == lowers else f"you predicted {prediction}; "
    verdict = "lowers" if lowers else "does not lower"
    return report(Check(prediction == lowers, f"{said}leaving out upsampling {verdict} passkey accuracy at sL "
                                              f"here. {numbers} {mechanism}"), verbose)


# === a setting to try, passed as an argument (no tracked file edited) ==========================

def extension_arm(profile: str = "smoke", seed: int = 0, *, method: str = "yarn", rope_beta: float | None = None,
                  cache: bool | None = None, progress: bool = False) -> dict:
    """One extension arm of notebook 02, trained like ``run``'s arm of ``method`` (same base, seed,
    steps and data) but with ``rope_beta`` (YaRN's ``beta``) overridden instead of the value in
    ``toy_extend_<method>.yaml``; returns its :func:`~nvrepro.ultralong.extension.evaluate` dict
    (needle grid, RULER-style scores, losses).

    The base comes from the weight cache in the paper profile (:func:`~nvrepro.ultralong.extension.pretrain_base`),
    and the arm is cached under its own key (the override is part of it). Minutes in the paper
    profile, seconds in smoke."""
    from nvrepro.core.tooling.weight_cache import use_cache
    from nvrepro.ultralong.extension import arm_yaml, data_overrides, evaluate, plan, pretrain_base, short_docs, train

    p = plan(profile)
    cache = use_cache(profile, cache)
    yaml = arm_yaml(method)
    model_overrides = None
    if rope_beta is not None:
        if model_config_from_yaml(yaml).attention.rope_scaling != "yarn":
            raise ConfigError(f"rope_beta: only the yarn arm has a beta, not method {method!r}")
        yarn_kept_pairs(rope_beta, yaml)  # validates beta against the arm's alpha
        model_overrides = {"attention": {"rope_beta": float(rope_beta)}}
    base_key, base = pretrain_base(profile, seed, cache, progress)
    _, model = train(yaml, seed=seed, steps=p["extend_steps"], init=(base_key, base.state_dict()),
                     model_overrides=model_overrides, data_overrides=data_overrides(p), cache=cache, progress=progress)
    return evaluate(model, profile, seed, short_docs(seed, p["max_documents"]))
