"""Rule-based rewards of Cosmos-Reason1's RL stage (arXiv 2503.15558).

Cosmos-Reason1 post-trains with GRPO (Shao et al. 2024, DeepSeekMath, arXiv 2402.03300, Sec. 4.1) on
multiple-choice questions, so the rewards need no learned reward model. Two rule-based rewards are summed:

* a **format reward** that asks for the reasoning inside ``<think>...</think>`` followed by the answer inside
  ``<answer>...</answer>``;
* an **accuracy reward** that compares the option letter inside ``<answer>...</answer>`` with the correct one.

The accepted form, exactly::

    <think>REASONING</think> <answer> X </answer>

where REASONING holds at least one non-whitespace character and none of the four tags, X is one uppercase
letter (the option, ``A``..``D`` in the paper's benchmarks; any of ``A``..``Z`` is accepted), whitespace
(newlines included) is optional between the two blocks and around the letter, and nothing (not even
whitespace) comes before ``<think>`` or after ``</answer>``.

The two rewards are scored independently, as in the paper: :func:`parse_answer` reads the answer block on its
own, so a correct letter earns the accuracy reward even when the reasoning block is missing; only
:func:`format_reward` checks the whole layout.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import torch

__all__ = ["format_reward", "parse_answer", "accuracy_reward", "total_reward", "rewards"]

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"

# The reasoning may be anything but one of the four tags: a nested or repeated tag would make the
# split between reasoning and answer ambiguous. The tempered dot (?:(?!tag).) enforces that.
_NO_TAG = r"(?:(?!</?think>|</?answer>).)"
_WELL_FORMED = re.compile(
    rf"<think>(?P<think>{_NO_TAG}*)</think>\s*<answer>\s*(?P<letter>[A-Z])\s*</answer>",
    re.DOTALL,
)
_LETTER = re.compile(r"\s*([A-Z])\s*")


def _check_text(text: object, name: str = "text") -> str:
    if not isinstance(text, str):
        raise ValueError(f"{name} must be a str, got {type(text).__name__}")
    return text


def _check_correct(correct: object) -> str:
    if not (isinstance(correct, str) and len(correct) == 1 and "A" <= correct <= "Z"):
        raise ValueError(f"correct must be a single uppercase option letter 'A'..'Z', got {correct!r}")
    return correct


def _check_weight(value: float, name: str) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def format_reward(text: str) -> float:
    """1.0 if ``text`` is exactly ``<think>REASONING</think><answer>X</answer>`` (see the module docstring:
    non-empty reasoning without tags, one uppercase letter X, optional whitespace between the blocks and
    around X, nothing before or after), else 0.0."""
    match = _WELL_FORMED.fullmatch(_check_text(text))
    return 1.0 if match is not None and match.group("think").strip() else 0.0


def parse_answer(text: str) -> str | None:
    """The option letter inside the response's single ``<answer>...</answer>`` block, or None.

    None when there is no answer block, more than one ``<answer>`` or ``</answer>`` tag, the closing tag
    comes first, or the block holds anything but one uppercase letter with optional surrounding whitespace
    (``"a"``, ``"AB"``, ``"A)"``, empty). The rest of the response is not looked at (that is the format
    reward's job)."""
    text = _check_text(text)
    if text.count(ANSWER_OPEN) != 1 or text.count(ANSWER_CLOSE) != 1:
        return None
    start = text.index(ANSWER_OPEN) + len(ANSWER_OPEN)
    end = text.index(ANSWER_CLOSE)
    if end < start:
        return None
    match = _LETTER.fullmatch(text[start:end])
    return match.group(1) if match else None


def accuracy_reward(text: str, correct: str) -> float:
    """1.0 if the letter :func:`parse_answer` reads from ``text`` equals ``correct`` (one uppercase
    letter), else 0.0 (a response without a readable answer scores 0.0)."""
    correct = _check_correct(correct)
    return 1.0 if parse_answer(text) == correct else 0.0


def total_reward(text: str, correct: str, *, accuracy_weight: float = 1.0,
                 format_weight: float = 1.0) -> float:
    """The scalar reward GRPO sees: ``accuracy_weight * accuracy_reward + format_weight * format_reward``
    (the paper weighs both by 1, so a well-formed, correct response scores 2.0)."""
    accuracy_weight = _check_weight(accuracy_weight, "accuracy_weight")
    format_weight = _check_weight(format_weight, "format_weight")
    return accuracy_weight * accuracy_reward(text, correct) + format_weight * format_reward(text)


def rewards(texts: Sequence[str], corrects: Sequence[str], *, accuracy_weight: float = 1.0,
            format_weight: float = 1.0) -> torch.Tensor:
    """:func:`total_reward` of each ``(texts[i], corrects[i])`` pair, as a float32 tensor of shape ``(n,)``.

    For GRPO, lay the responses out prompt-major (the G responses of prompt 0, then prompt 1, ...) and repeat
    each prompt's correct letter G times, so the result feeds :func:`nvrepro.cosmos.grpo.group_advantages`.
    """
    if isinstance(texts, str) or isinstance(corrects, str):
        raise ValueError("texts and corrects must be sequences of strings, not a single str")
    if len(texts) != len(corrects):
        raise ValueError(f"texts and corrects must have the same length, got {len(texts)} and {len(corrects)}")
    values = [total_reward(text, correct, accuracy_weight=accuracy_weight, format_weight=format_weight)
              for text, correct in zip(texts, corrects)]
    return torch.tensor(values, dtype=torch.float32)
