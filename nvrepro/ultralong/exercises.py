"""Checkers for the exercises in ``notebooks/ultralong/01_rope_scaling.ipynb`` (and 02, 03 below).

Each checker runs the real code in :mod:`nvrepro.core.lm.layers.rope_scaling`, says whether the
student's answer holds and why, and returns a :class:`~nvrepro.core.tooling.verdicts.Check`. The
model shape of the questions (head_dim, theta, original context, alpha, beta) is read from the
UltraLong-8B-1M config, so the questions follow the config if it changes.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from nvrepro.core.lm.config import model_config_from_yaml
from nvrepro.core.lm.layers.rope_scaling import rotations, scaled_rope, yarn_ramp
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
    from nvrepro.ultralong.extension import PRETRAIN_YAML, arm_yaml

    if method is None:
        return report(Check(None, "set `method` to 'none', 'linear', 'ntk' or 'yarn'."), verbose)
    if method not in result["methods"]:
        return report(Check(False, f"{method!r} is not one of {list(result['methods'])}."), verbose)
    base = model_config_from_yaml(PRETRAIN_YAML).attention
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


# === notebook 03: ablations =====================================================================

def check_two_step_tokens(ratio: float | None, *, verbose: bool = True) -> Check:
    """Exercise 03(a): tokens trained on by the two-step arm divided by the one-step arm's, from
    ``toy_extend_yarn.yaml`` (half the steps at ``s L / 2``, half at ``s L``, same batch size)."""
    from nvrepro.core.training.yaml_fit import read_cli_yaml
    from nvrepro.ultralong.extension import arm_yaml

    cfg = read_cli_yaml(arm_yaml("yarn"))
    steps, batch = cfg["trainer"]["max_steps"], cfg["data"]["init_args"]["batch_size"]
    n = cfg["data"]["init_args"]["seq_len"]
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
