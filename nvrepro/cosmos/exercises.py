"""Checkers for the exercises of the Cosmos notebooks. Each prints whether the answer holds and why and
returns a :class:`~nvrepro.core.tooling.verdicts.Check` (``ok`` ``None`` when not attempted). The truths
come from the code (:mod:`nvrepro.cosmos.rewards`, :mod:`nvrepro.cosmos.grpo`) and from the notebook's
own run."""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import torch

from nvrepro.core.tooling.verdicts import Check, as_number, call_student, report

# --- notebook 01 ---------------------------------------------------------------------------------

FORMAT_CASES = (
    "<think>it slows down</think><answer>A</answer>",
    "<think>steps 6,4,2 shrink</think>\n<answer>B</answer>",
    "<think>x</think><answer> C </answer>",
    "<answer>A</answer>",
    "<think></think><answer>A</answer>",
    "<think>slows</think><answer>AB</answer>",
    "<think>slows</think><answer>a</answer>",
    "<think>slows</think><answer>A</answer> because",
    "<answer>A</answer><think>slows</think>",
    "<think>slows<answer>A</answer>",
    "<think>slows</think><answer>A</answer><answer>B</answer>",
    "the answer is A",
)


def check_format_reward(fn: Callable[[str], float], *, verbose: bool = True) -> Check:
    """Exercise 01(a): ``fn(text) -> 1.0 or 0.0``, compared with
    :func:`~nvrepro.cosmos.rewards.format_reward` on well- and ill-formed responses."""
    from nvrepro.cosmos.rewards import format_reward

    for text in FORMAT_CASES:
        got, failed = call_student(fn, text, name="format_ok")
        if failed is not None:
            return report(failed, verbose)
        want = format_reward(text)
        if float(got) != want:
            why = "well-formed" if want else "ill-formed"
            return report(Check(False, f"{text!r} is {why} (reward {want:g}), you gave {float(got):g}."), verbose)
    return report(Check(True, f"agrees with the rule on {len(FORMAT_CASES)} responses: exactly one non-empty "
                              "<think> block, then one <answer> holding a single capital letter, nothing else."), verbose)


def check_advantages(fn: Callable, *, verbose: bool = True) -> Check:
    """Exercise 01(b): ``fn(rewards (P*G,), group_size) -> advantages (P*G,)``, compared with
    :func:`~nvrepro.cosmos.grpo.group_advantages` on random rewards."""
    from nvrepro.cosmos.grpo import group_advantages

    gen = torch.Generator().manual_seed(0)
    for group_size in (2, 4, 8):
        rewards = torch.randint(0, 3, (5 * group_size,), generator=gen).float()
        got, failed = call_student(fn, rewards.clone(), group_size, name="advantages")
        if failed is not None:
            return report(failed, verbose)
        want = group_advantages(rewards, group_size)
        got = torch.as_tensor(got, dtype=torch.float32).reshape(-1)
        if got.shape != want.shape or not torch.allclose(got, want, atol=1e-3):
            groups = rewards.view(-1, group_size)
            hint = ("normalise within each prompt's group: subtract the group's mean and divide by its std (+ eps)"
                    if not torch.allclose(got.view(-1, group_size).mean(1), torch.zeros(len(groups)), atol=1e-3)
                    else "the mean is right; divide by the group's (unbiased) standard deviation plus 1e-4")
            return report(Check(False, f"group size {group_size}: rewards {rewards.tolist()[:group_size]}... gave "
                                       f"{got.tolist()[:group_size]}..., expected {want.tolist()[:group_size]}...; "
                                       f"{hint}."), verbose)
    return report(Check(True, "matches group_advantages: each response is scored against the other responses to "
                              "the same prompt, so no value network (critic) is needed."), verbose)


def check_equal_rewards_advantage(answer, *, verbose: bool = True) -> Check:
    """Exercise 01(c): the advantage of every response in a group whose rewards are all equal."""
    value, failed = as_number(answer, "the advantage (a number)")
    if failed is not None:
        return report(failed, verbose)
    if math.isclose(value, 0.0, abs_tol=1e-9):
        return report(Check(True, "0: reward minus the group mean is 0 (the eps keeps 0 / 0 away), so a group that "
                                  "is all right or all wrong teaches nothing; GRPO learns only from groups that "
                                  "disagree."), verbose)
    return report(Check(False, f"{value:g}: every reward equals the group mean, so r - mean = 0 before any "
                               "scaling."), verbose)


# --- notebook 02 ---------------------------------------------------------------------------------


def check_hardest_task(prediction, metrics: Mapping[str, Any], *, verbose: bool = True) -> Check:
    """Exercise 02(a): which task has the lowest accuracy after SFT in this run, relative to its chance level
    (accuracy minus chance)?"""
    from nvrepro.cosmos.pipeline_experiment import accuracy
    from nvrepro.cosmos.tasks import TASKS

    if prediction is None:
        return report(Check(None, f"set `prediction` to one of {sorted(TASKS)}."), verbose)
    if prediction not in TASKS:
        return report(Check(False, f"{prediction!r} is not a task; pick one of {sorted(TASKS)}."), verbose)
    margins = {name: accuracy(metrics, "sft", name).value - t.chance for name, t in TASKS.items()}
    hardest = min(margins, key=margins.get)
    table = ", ".join(f"{k} {v:+.3f}" for k, v in margins.items())
    if prediction == hardest:
        return report(Check(True, f"{hardest}: accuracy minus chance {table}."), verbose)
    return report(Check(False, f"in this run the hardest is {hardest} (accuracy minus chance: {table})."), verbose)


def check_silent_groups(answer, *, p: float = 0.7, group_size: int = 4, verbose: bool = True) -> Check:
    """Exercise 02(c): the share of GRPO groups with no learning signal (all responses right or all wrong)
    when each of ``group_size`` independent responses is right with probability ``p``."""
    from nvrepro.core.tooling.verdicts import check_number

    expected = p ** group_size + (1 - p) ** group_size
    return check_number(answer, expected, what="the share of silent groups", abs_tol=5e-3,
                        why=f"p^G + (1 - p)^G = {p}^{group_size} + {1 - p:.1f}^{group_size} = {expected:.4f}: every response right, "
                            "or every one wrong; then every advantage is 0",
                        slips=((p ** group_size, "that counts only the all-right groups; add the all-wrong ones"),
                               (1 - p ** group_size, "that is the share of groups with at least one wrong answer")),
                        verbose=verbose)


def check_kl(fn: Callable, *, verbose: bool = True) -> Check:
    """Exercise 02(b): ``fn(log_probs, ref_log_probs) -> per-token KL estimate``, compared with
    :func:`~nvrepro.cosmos.grpo.kl_k3` (the unbiased, always non-negative k3 estimator)."""
    from nvrepro.cosmos.grpo import kl_k3

    gen = torch.Generator().manual_seed(1)
    log_probs = -torch.rand(4, 6, generator=gen) * 3
    ref = -torch.rand(4, 6, generator=gen) * 3
    got, failed = call_student(fn, log_probs, ref, name="kl")
    if failed is not None:
        return report(failed, verbose)
    want = kl_k3(log_probs, ref)
    got = torch.as_tensor(got, dtype=torch.float32)
    if got.shape != want.shape or not torch.allclose(got, want, atol=1e-4):
        hint = ("some values are negative: log p - log p_ref is unbiased but not non-negative; use "
                "r - log r - 1 with r = p_ref / p" if bool((got < 0).any()) else
                "use r - log r - 1 with r = exp(ref_log_probs - log_probs)")
        return report(Check(False, f"differs from k3 (max gap {float((got - want).abs().max()):.3g}); {hint}."),
                      verbose)
    return report(Check(True, "matches k3 = r - log r - 1, r = p_ref / p: unbiased for KL(p || p_ref) under samples "
                              "from p and never negative, so every token's penalty pulls towards the reference."),
                  verbose)
