"""One text format for every RankRAG task: (question, context, answer) (arXiv 2407.02485 Sec. 4).

RankRAG casts general instructions, context-rich QA, retrieval-augmented QA, context ranking and
retrieval-augmented ranking to the same shape, so one model learns them all with one loss (on
the answer tokens only). Here a prompt is the context passages, numbered, then the question::

    Passage 1: <text>
    Passage 2: <text>
    Question: <question>
    Answer:

and the target is ``" " + answer`` followed by ``<eos>`` (:func:`target_text`). Without context
(stage I instructions) the prompt is just the last two lines.

Ranking questions (:func:`ranking_question`) wrap the user's question and ask for
:data:`RELEVANT` / :data:`IRRELEVANT`; at inference the relevance of a passage is the model's
probability of :data:`RELEVANT` against :data:`IRRELEVANT` at the first answer position (the
pipeline's ``relevance_scores``). Retrieval-augmented ranking (:func:`listwise_ranking_question`)
gives several passages and asks which are relevant; the answer lists their numbers
(:func:`listwise_answer`), or :data:`NONE_RELEVANT`.
"""

from __future__ import annotations

from typing import Sequence

RELEVANT, IRRELEVANT = "True", "False"
NONE_RELEVANT = "none"


def render_prompt(question: str, context: Sequence[str] = ()) -> str:
    """The prompt text of ``question`` after the numbered ``context`` passages (may be empty)."""
    if isinstance(context, str):
        raise TypeError("context: pass a sequence of passages, not one string")
    lines = [f"Passage {i}: {p.strip()}" for i, p in enumerate(context, start=1)]
    return "\n".join([*lines, f"Question: {question.strip()}", "Answer:"])


def target_text(answer: str) -> str:
    """What the model writes after the prompt (before ``<eos>``): the answer after one space."""
    return " " + answer.strip()


def ranking_question(question: str) -> str:
    """The context-ranking question for one passage: answered :data:`RELEVANT` or :data:`IRRELEVANT`."""
    return f"Is the passage relevant to: {question.strip()}"


def listwise_ranking_question(question: str) -> str:
    """The retrieval-augmented ranking question for several numbered passages."""
    return f"Which passages are relevant to: {question.strip()}"


def listwise_answer(relevant: Sequence[int]) -> str:
    """The answer naming the relevant passages by their 1-based numbers, ascending, or :data:`NONE_RELEVANT`."""
    numbers = sorted(int(i) for i in relevant)
    if any(i < 1 for i in numbers):
        raise ValueError(f"relevant: passage numbers start at 1, got {numbers}")
    return " ".join(str(i) for i in numbers) if numbers else NONE_RELEVANT
