"""Checkers for the exercises of the FOCUS notebooks (03, 04). Each prints whether the answer holds and
why and returns a :class:`~nvrepro.core.tooling.verdicts.Check` (``ok`` ``None`` when not attempted).
The truths come from the code (:mod:`nvrepro.fl.focus.faa`, :mod:`nvrepro.fl.focus.em`) and from the
notebook's own run."""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from nvrepro.core.tooling.verdicts import Check, call_student, report


def _as_array(x, shape=None):
    try:
        a = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        return None
    return a if shape is None or a.shape == shape else None


# --- notebook 03 ---------------------------------------------------------------------------------

def check_faa(fn: Callable, *, trials: int = 100, seed: int = 0, verbose: bool = True) -> Check:
    """Exercise 03(a): ``fn(losses, optimal_losses) -> FAA`` (both ``(N,)`` numpy arrays), compared with
    :func:`nvrepro.fl.focus.faa.faa_of` on random agents."""
    from nvrepro.fl.focus.faa import faa_of

    rng = np.random.default_rng(seed)
    for _ in range(trials):
        n = int(rng.integers(2, 12))
        optimal = rng.random(n) * rng.choice([0.1, 3.0])
        losses = optimal + rng.random(n)
        got, failed = call_student(fn, losses.copy(), optimal.copy(), name="faa")
        if failed is not None:
            return report(failed, verbose)
        want = faa_of(losses, optimal)
        try:
            ok = abs(float(got) - want) <= 1e-9 * max(1.0, abs(want))
        except (TypeError, ValueError):
            return report(Check(False, f"expected a number, got {got!r}."), verbose)
        if not ok:
            raw = float(losses.max() - losses.min())
            hint = ("that is the spread of the losses themselves (accuracy parity): subtract each agent's own "
                    "optimal loss first" if abs(float(got) - raw) < 1e-9 else
                    "FAA is the LARGEST gap between two agents' excess losses: max - min")
            return report(Check(False, f"for {n} agents you got {float(got):.4f}, FAA is {want:.4f}; {hint}."), verbose)
    return report(Check(True, f"matches faa_of on {trials} random sets of agents: the spread of excess losses, "
                              "so an agent with a high loss floor (noisy data) counts only by its distance from "
                              "its own optimum."), verbose)


def check_e_step(fn: Callable, *, trials: int = 60, seed: int = 0, verbose: bool = True) -> Check:
    """Exercise 03(b): ``fn(summed_losses (N, K), prior (K,)) -> responsibilities (N, K)``, compared with
    :func:`nvrepro.fl.focus.em.e_step` (temperature 1), losses large enough to overflow a naive exp."""
    from nvrepro.fl.focus.em import e_step

    rng = np.random.default_rng(seed)
    for t in range(trials):
        n, k = int(rng.integers(1, 6)), int(rng.integers(1, 5))
        scale = 1.0 if t < trials // 2 else 1000.0
        losses = rng.random((n, k)) * 5 * scale + (800 if scale > 1 else 0)
        prior = rng.dirichlet(np.ones(k))
        got, failed = call_student(fn, losses.copy(), prior.copy(), name="responsibilities")
        if failed is not None:
            return report(failed, verbose)
        want = e_step(losses, np.log(prior))
        g = _as_array(got, want.shape)
        if g is None:
            return report(Check(False, f"expected an array of shape {want.shape}, got {np.shape(got)}."), verbose)
        if not np.allclose(g, want, atol=1e-8):
            hint = ("NaN: exp of a large negative number underflows to 0/0; subtract each row's max logit "
                    "first (log-sum-exp)" if not np.all(np.isfinite(g)) else
                    "rows must sum to 1 over clusters" if not np.allclose(g.sum(1), 1) else
                    "a LOWER loss means a HIGHER responsibility: exp(-loss), times the prior")
            return report(Check(False, f"losses of shape {losses.shape}: yours differ from the E-step; {hint}."),
                          verbose)
    return report(Check(True, f"matches e_step on {trials} cases, huge summed losses included: "
                              "r_ik = pi_k exp(-L_ik) / sum_k' pi_k' exp(-L_ik')."), verbose)


def check_noisy_prediction(prediction: bool | None, result: Mapping[str, Any], *, verbose: bool = True) -> Check:
    """Exercise 03(c): predicted whether FedAvg's FAA grows from the fewest to the most noisy agents."""
    if prediction is None:
        return report(Check(None, "set `prediction` to True or False."), verbose)
    sweep = {int(n): v for n, v in result["sweep_noisy"].items()}
    lo, hi = min(sweep), max(sweep)
    fed = {n: float(np.mean(sweep[n]["fedavg"]["faa"])) for n in (lo, hi)}
    foc = {n: float(np.mean(sweep[n]["focus"]["faa"])) for n in (lo, hi)}
    truth = fed[hi] > fed[lo]
    why = (f"FedAvg's mean FAA goes from {fed[lo]:.3g} ({lo} noisy agents) to {fed[hi]:.3g} ({hi}); FOCUS's from "
           f"{foc[lo]:.3g} to {foc[hi]:.3g}. FedAvg serves one model, the average over all agents: every noisy "
           "agent pulls it toward its own optimum (w = 0 here) and away from the benign clusters', whose excess "
           "losses grow while the noisy agents' shrink.")
    return report(Check(bool(prediction) == truth, why), verbose)


# --- notebook 04 ---------------------------------------------------------------------------------

def check_hard_assign(fn: Callable, *, trials: int = 60, seed: int = 0, verbose: bool = True) -> Check:
    """Exercise 04(a): IFCA's assignment ``fn(summed_losses (N, K)) -> one-hot (N, K)`` at each agent's
    lowest loss (first on ties), compared with :func:`nvrepro.fl.focus.em.hard_assign`."""
    from nvrepro.fl.focus.em import hard_assign

    rng = np.random.default_rng(seed)
    for _ in range(trials):
        n, k = int(rng.integers(1, 6)), int(rng.integers(1, 5))
        losses = np.round(rng.random((n, k)) * 3, 1)  # rounded: ties happen
        got, failed = call_student(fn, losses.copy(), name="assign")
        if failed is not None:
            return report(failed, verbose)
        want = hard_assign(losses)
        g = _as_array(got, want.shape)
        if g is None:
            return report(Check(False, f"expected an array of shape {want.shape}, got {np.shape(got)}."), verbose)
        if not np.array_equal(g, want):
            hint = ("pick the LOWEST loss" if np.array_equal(g, hard_assign(-losses)) else
                    "exactly one 1 per row, at the lowest loss; on a tie, the first such cluster")
            return report(Check(False, f"for losses {losses.tolist()} you assigned {g.tolist()}; {hint}."), verbose)
    return report(Check(True, f"matches hard_assign on {trials} cases with ties: each agent joins, trains and is "
                              "served only its best cluster, which is IFCA; FOCUS's soft E-step lets an agent "
                              "weigh in on several clusters while the assignment is still uncertain."), verbose)


def check_best_text_method(prediction: str | None, result: Mapping[str, Any], *, verbose: bool = True) -> Check:
    """Exercise 04(b): predicted which method gives the benign text agents the highest mean accuracy."""
    from nvrepro.fl.focus.runner import METHOD_LABELS

    if prediction is None:
        return report(Check(None, f"set `prediction` to one of {list(METHOD_LABELS)}."), verbose)
    methods = result["text"]["methods"]
    if prediction not in methods:
        return report(Check(False, f"`prediction` must be one of {list(methods)}, got {prediction!r}."), verbose)
    acc = {m: float(np.mean(d["benign_accuracy"])) for m, d in methods.items()}
    best = max(acc, key=acc.get)
    why = ", ".join(f"{METHOD_LABELS[m]} {a:.3f}" for m, a in acc.items())
    return report(Check(prediction == best, f"benign agents' mean next-byte accuracy: {why}. The two styles want "
                                            "different bigram tables; one shared table serves both worse."), verbose)
