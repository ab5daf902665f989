"""Exercises of notebooks/hybrid/05_minipuzzle.ipynb."""

from __future__ import annotations

import math
from typing import Callable

import torch

from nvrepro.core.tooling.verdicts import Check
from nvrepro.core.tooling.verdicts import report as _report


# === notebooks/hybrid/05_minipuzzle.ipynb ==================================================
# Imports stay inside the checkers (as above).

ADDITIVITY_ANSWERS = ("less", "about equal", "greater")


def check_importance_additivity(answer: str | None, model, batches, *, verbose: bool = True) -> Check:
    """Exercise (a): removing the two least important layers *together* changes the final hidden
    state by ``"less"`` than, ``"about equal"`` to (within 20%), or ``"greater"`` than the sum of
    their single-layer importances? Measured on ``model`` (the notebook's parent) and ``batches``."""
    import copy

    from torch import nn

    from nvrepro.hybrid.minipuzzle import layer_importance

    if answer is None:
        return _report(Check(None, f"set `answer` to one of {ADDITIVITY_ANSWERS}."), verbose)
    if answer not in ADDITIVITY_ANSWERS:
        return _report(Check(False, f"expected one of {ADDITIVITY_ANSWERS}, got {answer!r}."), verbose)
    scores = layer_importance(model, batches, progress=False)
    i, j = sorted(torch.argsort(scores)[:2].tolist())
    pair = copy.deepcopy(model).eval()
    del pair.layers[j], pair.layers[i]
    pair.lm_head = full = nn.Identity()
    ref = copy.deepcopy(model).eval()
    ref.lm_head = full
    with torch.no_grad():
        joint = sum(((pair(b["input_ids"]) - ref(b["input_ids"])) ** 2).mean().item() for b in batches) / len(batches)
    total = scores[i].item() + scores[j].item()
    ratio = joint / total
    actual = "about equal" if 0.8 <= ratio <= 1.2 else ("less" if ratio < 1 else "greater")
    why = (f"layers {i} and {j} score {scores[i]:.2e} and {scores[j]:.2e} alone (sum {total:.2e}); removed "
           f"together the MSE is {joint:.2e}, {ratio:.2f}x the sum. ")
    if actual == "about equal":
        why += ("Each score is the squared size of a small perturbation of the same output; two small, "
                "unrelated perturbations add up (their cross term averages out), which is what lets "
                "MiniPuzzle rank layers one at a time.")
    else:
        why += ("The two perturbations interact (their cross term does not average out), so single-layer "
                "scores are only a ranking, not a cost model.")
    why += (" Dropping many layers at once is never just the sum of their scores, which is why candidates "
            "are evaluated as whole models and then distilled.")
    return _report(Check(answer == actual, f"it is '{actual}': {why}"), verbose)


def check_kd_loss_fn(student_fn: Callable, *, verbose: bool = True) -> Check:
    """Exercise (b): ``student_fn(student_logits, teacher_logits)`` with logits ``(b, l, V)`` must
    return the mean over positions of KL(teacher || student) at temperature 1 (a scalar)."""
    from nvrepro.hybrid.distill import kd_loss

    gen = torch.Generator().manual_seed(0)
    s, t = (torch.randn(2, 5, 11, generator=gen, dtype=torch.float64) * 2 for _ in range(2))
    try:
        out = student_fn(s, t)
    except NotImplementedError:
        return _report(Check(None, "implement `kd` and run the cell again."), verbose)
    except Exception as exc:  # noqa: BLE001 - report the student's error, do not crash
        return _report(Check(False, f"kd(s, t) raised {type(exc).__name__}: {exc}"), verbose)
    if not isinstance(out, torch.Tensor) or out.numel() != 1:
        return _report(Check(False, f"expected a scalar tensor, got {out!r:.80}."), verbose)
    want = kd_loss(s, t).item()
    value = out.item()
    if math.isclose(value, want, rel_tol=1e-6, abs_tol=1e-9):
        same = student_fn(t, t.clone()).item()
        return _report(Check(abs(same) < 1e-9, f"forward KL = {want:.5f} on the test logits and {same:.1e} "
                             "when the student equals the teacher: sum_v p_t (log p_t - log p_s), averaged over "
                             "positions."), verbose)
    slips = {kd_loss(t, s).item(): "that is the *reverse* KL(student || teacher), which is mode-seeking; "
                                    "the paper distils with the forward KL(teacher || student)",
             want * s.shape[0] * s.shape[1]: "you summed over positions; take the mean",
             want * s.shape[-1]: "you divided by the vocabulary size somewhere (mean over V instead of sum)"}
    hint = next((msg for v, msg in slips.items() if math.isclose(value, v, rel_tol=1e-6)), "")
    return _report(Check(False, f"got {value:.5f}, expected {want:.5f}" + (f": {hint}." if hint else
                         ". Use log_softmax on both logits, then sum p_t * (log p_t - log p_s) over the "
                         "vocabulary and average over positions.")), verbose)


def check_ffn_prune_fn(student_fn: Callable, *, verbose: bool = True) -> Check:
    """Exercise (c): ``student_fn(up, down, scores, k)`` with ``up (hidden, d)``, ``down (d, hidden)``,
    ``scores (hidden,)`` must return ``(up', down')`` keeping the ``k`` highest-scoring neurons, so
    that ``down' relu(up' x)^2`` is exactly the sum of those neurons' contributions."""
    from nvrepro.hybrid.minipuzzle import top_neurons

    gen = torch.Generator().manual_seed(1)
    d, hidden, k = 6, 10, 4
    up = torch.randn(hidden, d, generator=gen, dtype=torch.float64)
    down = torch.randn(d, hidden, generator=gen, dtype=torch.float64)
    scores = torch.rand(hidden, generator=gen, dtype=torch.float64)
    x = torch.randn(7, d, generator=gen, dtype=torch.float64)
    try:
        out = student_fn(up.clone(), down.clone(), scores.clone(), k)
    except NotImplementedError:
        return _report(Check(None, "implement `prune` and run the cell again."), verbose)
    except Exception as exc:  # noqa: BLE001
        return _report(Check(False, f"prune(...) raised {type(exc).__name__}: {exc}"), verbose)
    try:
        up2, down2 = out
        shapes = (tuple(up2.shape), tuple(down2.shape))
    except (TypeError, ValueError, AttributeError):
        return _report(Check(False, f"expected a pair of tensors (up', down'), got {type(out).__name__}."), verbose)
    if shapes != ((k, d), (d, k)):
        return _report(Check(False, f"expected shapes ({k}, {d}) and ({d}, {k}), got {shapes[0]} and "
                             f"{shapes[1]}: keep *rows* of up_proj and *columns* of down_proj."), verbose)
    keep = top_neurons(scores, k)
    want = (torch.relu(x @ up[keep].T) ** 2) @ down[:, keep].T
    got = (torch.relu(x @ up2.T) ** 2) @ down2.T
    if torch.allclose(got, want, rtol=1e-12, atol=1e-12):
        return _report(Check(True, f"exactly the sum over the {k} kept neurons: neuron j is row j of up and "
                             "column j of down, so both must be indexed with the same kept indices."), verbose)
    low = torch.sort(torch.argsort(scores)[:k]).values
    if torch.allclose(got, (torch.relu(x @ up[low].T) ** 2) @ down[:, low].T, rtol=1e-12, atol=1e-12):
        return _report(Check(False, "you kept the k *lowest* scores: keep the most important neurons."), verbose)
    return _report(Check(False, "the pruned FFN does not compute the sum over the top-k neurons: index rows "
                         "of up and columns of down with the same indices (those of the k largest scores)."),
                   verbose)
