"""Checkers for the exercises of the DP-FL notebooks. Each prints whether the answer holds and why and
returns a :class:`~nvrepro.core.tooling.verdicts.Check` (``ok`` ``None`` when nothing was answered
yet). The truths come from the code: :func:`nvrepro.fl.clipping.clip_update`, the
``dp_accounting`` accountant, :func:`nvrepro.fl.public.select_public`, and the run's own results."""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from nvrepro.core.tooling.verdicts import Check, call_student, check_number, report


# --- notebook 01 ---------------------------------------------------------------------------------

def check_clip(clip: Callable, *, trials: int = 100, seed: int = 0, verbose: bool = True) -> Check:
    """Exercise 01(a): ``clip(update, C) -> clipped`` for an update given as a list of numpy arrays
    (one per parameter tensor), compared with :func:`nvrepro.fl.clipping.clip_update` on random
    updates, some inside the ball and some far outside."""
    from nvrepro.fl.clipping import clip_update, update_norm

    rng = np.random.default_rng(seed)
    for _ in range(trials):
        update = [rng.normal(0, rng.choice([0.01, 1.0]), size=tuple(rng.integers(1, 5, size=rng.integers(1, 3))))
                  for _ in range(int(rng.integers(1, 4)))]
        c = float(rng.choice([0.5, 1.0, 3.0]))
        got, failed = call_student(clip, [u.copy() for u in update], c, name="clip")
        if failed is not None:
            return report(failed, verbose)
        want, norm = clip_update(update, c)
        try:
            ok = len(got) == len(want) and all(np.allclose(np.asarray(g), w, atol=1e-9) for g, w in zip(got, want))
        except TypeError:
            ok = False
        if not ok:
            hint = ("the norm is over ALL tensors together (one flat vector), not per tensor"
                    if len(update) > 1 and norm > c else
                    "an update already inside the ball must come back unchanged" if norm <= c else
                    "scale by min(1, C / ||update||)")
            return report(Check(False, f"an update of norm {norm:.3f} with C = {c:g}: your result has norm "
                                       f"{_norm(got):.3f}, the reference {update_norm(want):.3f}; {hint}."), verbose)
    return report(Check(True, f"matches clip_update on {trials} random updates: one flat L2 norm over all "
                              "tensors, scaled by min(1, C / norm), so no user moves the sum by more than C."),
                  verbose)


def _norm(update) -> float:
    try:
        return float(np.sqrt(sum(np.sum(np.square(np.asarray(x, dtype=float))) for x in update)))
    except (TypeError, ValueError):
        return float("nan")


def check_double_clients(answer, *, noise_multiplier: float, clients_per_round: int, population: int,
                         rounds: int, delta: float, verbose: bool = True) -> Check:
    """Exercise 01(b): the epsilon after ``rounds`` rounds when twice as many clients train per round
    at the same noise multiplier (Poisson, RDP)."""
    from nvrepro.fl.accounting import epsilon

    q = clients_per_round / population
    before = epsilon(noise_multiplier, q, rounds, delta)
    want = epsilon(noise_multiplier, min(1.0, 2 * q), rounds, delta)
    return check_number(answer, want, what=f"the epsilon with {2 * clients_per_round} clients a round", rel_tol=0.05,
                        why=f"epsilon goes from {before:.2f} to {want:.2f}: doubling q roughly doubles what each "
                            "round costs (privacy amplification by sampling weakens), while the noise on the "
                            "mean, z C / m, halves. Same privacy with more clients needs a larger z, not a "
                            "smaller one; the utility gain comes from dividing by m.",
                        slips=((before, "that is the epsilon before doubling: sampling more clients is not free"),),
                        verbose=verbose)


# --- notebook 02 ---------------------------------------------------------------------------------

def check_select(select: Callable, *, trials: int = 50, seed: int = 0, verbose: bool = True) -> Check:
    """Exercise 02(a): ``select(scores, budget) -> indices`` of the ``budget`` lowest scores
    (ascending index order), compared with :func:`nvrepro.fl.public.select_public`."""
    from nvrepro.fl.public import select_public

    rng = np.random.default_rng(seed)
    for _ in range(trials):
        n = int(rng.integers(5, 40))
        scores = np.round(rng.normal(3.0, 0.5, n), 1)  # rounded: ties happen
        budget = int(rng.integers(1, n + 1))
        got, failed = call_student(select, scores.copy(), budget, name="select")
        if failed is not None:
            return report(failed, verbose)
        want = select_public([""] * n, budget, "matching", scores)
        try:
            got_list = sorted(int(i) for i in got)
        except (TypeError, ValueError):
            return report(Check(False, f"expected a list of indices, got {got!r}."), verbose)
        if got_list != want:
            hint = ("keep the LOWEST scores: a low loss under the DP model means close to users' text"
                    if float(np.mean(scores[got_list])) > float(np.mean(scores[want])) + 1e-9 else
                    f"return exactly {budget} indices" if len(got_list) != budget else
                    "break ties by the lower index (a stable sort)")
            return report(Check(False, f"for {n} scores and budget {budget} you kept {got_list[:8]}..., the sampler "
                                       f"keeps {want[:8]}...; {hint}."), verbose)
    return report(Check(True, f"matches select_public on {trials} random score lists, ties included."), verbose)


def check_private_tokens_prediction(prediction: bool | None, result: Mapping[str, Any], *,
                                    verbose: bool = True) -> Check:
    """Exercise 02(b): predicted whether the BPE trained on the users' text holds tokens that appear
    nowhere in public text (a leak a public tokenizer cannot have)."""
    if prediction is None:
        return report(Check(None, "set `prediction` to True or False."), verbose)
    toks = result["tokenizers"]
    truth = toks["private"]["private_only_tokens"] > 0
    why = (f"the private BPE holds {toks['private']['private_only_tokens']} tokens found nowhere in the public "
           f"pool (the public BPE: {toks['public']['private_only_tokens']}); "
           f"{toks['private']['leaked_words']} of the training users' {toks['private_words']} private words are "
           "single tokens. A tokenizer trained on private text is itself a release of that text, outside the "
           "DP guarantee; the public one is safe by construction.")
    return report(Check(bool(prediction) == truth, why), verbose)
