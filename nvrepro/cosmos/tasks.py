"""The three intuitive-physics tasks as multiple-choice questions, with reasoning traces written by rule.

A :class:`Question` is what the model reads (the clip's frames, then ``prompt``: the question and its
lettered options, shuffled per sample as in the paper's RL stage, so a letter never stands for the same
answer) and what SFT teaches it to write: ``response`` =
``<think>`` a one-line reasoning from the generator's ground truth ``</think><answer>`` the letter
``</answer>``. Each task knows its ontology tag and its chance level (one over its options).
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from typing import Callable

from nvrepro.cosmos.clips import CORNERS, Clip, arrow_of_time, object_permanence, spatial_puzzle
from nvrepro.cosmos.ontology import PhysicalTag


@dataclass
class Question:
    """One multiple-choice item: ``prompt`` (question + lettered options), ``options`` in shown order,
    ``answer`` (the right letter), ``reasoning`` (the rule-written thought) and the full ``response``."""

    task: str
    prompt: str
    options: tuple[str, ...]
    answer: str
    reasoning: str

    @property
    def response(self) -> str:
        return format_response(self.reasoning, self.answer)


def format_response(reasoning: str, letter: str) -> str:
    """The response format the rewards check: ``<think>reasoning</think><answer>letter</answer>``."""
    return f"<think>{reasoning}</think><answer>{letter}</answer>"


def multiple_choice(task: str, text: str, options: list[str], right: str, reasoning: str,
                    rng: random.Random) -> Question:
    """The :class:`Question` ``text`` with ``options`` in an order drawn from ``rng``, lettered A, B, ...;
    ``right`` is the correct option's text."""
    if right not in options:
        raise ValueError(f"right: {right!r} is not one of the options {options}")
    if not 2 <= len(options) <= 26:
        raise ValueError(f"options: need 2 to 26 options, got {len(options)}")
    shown = list(options)
    rng.shuffle(shown)
    letters = string.ascii_uppercase[:len(shown)]
    prompt = text + "\n" + "\n".join(f"{letter}. {option}" for letter, option in zip(letters, shown))
    return Question(task, prompt, tuple(shown), letters[shown.index(right)], reasoning)


def _arrow_question(clip: Clip, rng: random.Random) -> Question:
    last = len(clip.frames)
    # Friction brings the object to rest, so two frames match: the last two played forward, the first two
    # played backwards (where it seems to start moving by itself).
    reasoning = (f"image {last - 1} = image {last}: it comes to rest, friction" if clip.truth == "forward"
                 else "image 1 = image 2: it starts from rest, nothing pushes it")
    return multiple_choice("arrow_of_time", "Is the video played forward or reversed?", ["forward", "reversed"],
                           str(clip.truth), reasoning, rng)


def _puzzle_question(clip: Clip, rng: random.Random) -> Question:
    # The piece asked about is image 1; the other quarters are the rest of the puzzle.
    corner = clip.truth[0]
    reasoning = f"image 1: {clip.captions[0]}, so {corner}"
    return multiple_choice("spatial_puzzle", "The images are a frame's shuffled quarters. Where does image 1 go?",
                           list(CORNERS), corner, reasoning, rng)


def _permanence_question(clip: Clip, rng: random.Random) -> Question:
    thing = f"{clip.facts['colour']} {clip.facts['shape']}"
    reasoning = {None: f"the {thing} comes out", "vanishes": f"the {thing} never comes out",
                 "changes": f"a {clip.facts['emerged']} comes out, not the {thing}"}[clip.facts["violation"]]
    return multiple_choice("object_permanence", "Something passes behind the wall. Is the video physically plausible?",
                ["yes", "no"], "yes" if clip.truth == "plausible" else "no", reasoning, rng)


@dataclass(frozen=True)
class Task:
    """A task: its clip generator, its question writer, its ontology tag and number of options."""

    name: str
    make_clip: Callable[..., Clip]
    make_question: Callable[[Clip, random.Random], Question]
    tag: PhysicalTag
    n_options: int

    @property
    def chance(self) -> float:
        """Accuracy of a uniform guess among the options."""
        return 1.0 / self.n_options


TASKS: dict[str, Task] = {
    "arrow_of_time": Task("arrow_of_time", arrow_of_time, _arrow_question, PhysicalTag("time", "order"), 2),
    "spatial_puzzle": Task("spatial_puzzle", spatial_puzzle, _puzzle_question,
                           PhysicalTag("space", "relationship"), 4),
    "object_permanence": Task("object_permanence", object_permanence, _permanence_question,
                              PhysicalTag("fundamental physics", "object permanence"), 2),
}


def task(name: str) -> Task:
    """The task called ``name`` (a clear error for another name)."""
    if name not in TASKS:
        raise ValueError(f"task: must be one of {sorted(TASKS)}, got {name!r}")
    return TASKS[name]


def sample(name: str, rng: random.Random, size: int = 32) -> tuple[Clip, Question]:
    """A clip of task ``name`` and its question, both drawn from ``rng``."""
    t = task(name)
    clip = t.make_clip(rng, size=size)
    return clip, t.make_question(clip, rng)
