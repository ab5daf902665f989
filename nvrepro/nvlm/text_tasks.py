"""A text-only instruction set: what the LLM can do before it learns to see, and what multimodal SFT
may make it forget (NVLM 1.0, Sec. 4.3 and Table 7: with a text-only SFT blend mixed into multimodal
SFT, NVLM-D keeps, and even improves, its LLM's text scores).

Four small skills with exact answers, each an instruction and its completion:

* ``add``: ``"add 23 41"`` [``"64"``];
* ``reverse``: ``"reverse kdq"`` [``"qdk"``];
* ``sort``: ``"sort 5 1 3"`` [``"1 3 5"``];
* ``next``: ``"after m"`` [``"n"``] (the next letter of the alphabet; ``z`` has none and is not asked).

Drawn from ``random.Random(seed)``; the same seed gives the same instructions.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

TEXT_TASKS = ("add", "reverse", "sort", "next")


@dataclass(frozen=True)
class Instruction:
    """One text-only example: ``kind`` (one of :data:`TEXT_TASKS`), ``text`` and ``answer``."""

    kind: str
    text: str
    answer: str


def instruction(rng: random.Random, kind: str | None = None) -> Instruction:
    """A random instruction of ``kind`` (``None``: any, with equal chance) with its exact answer."""
    if kind is None:
        kind = rng.choice(TEXT_TASKS)
    if kind == "add":
        a, b = rng.randrange(10, 50), rng.randrange(10, 50)
        return Instruction(kind, f"add {a} {b}", str(a + b))
    if kind == "reverse":
        word = "".join(rng.choice(string.ascii_lowercase) for _ in range(3))
        return Instruction(kind, f"reverse {word}", word[::-1])
    if kind == "sort":
        digits = rng.sample(range(10), 3)
        return Instruction(kind, "sort " + " ".join(map(str, digits)), " ".join(map(str, sorted(digits))))
    if kind == "next":
        letter = rng.choice(string.ascii_lowercase[:-1])
        return Instruction(kind, f"after {letter}", chr(ord(letter) + 1))
    raise ValueError(f"kind: must be one of {TEXT_TASKS}, got {kind!r}")
