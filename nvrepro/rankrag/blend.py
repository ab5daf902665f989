"""RankRAG's two instruction-tuning blends over the synthetic world, as ``datasets.Dataset`` rows.

RankRAG (arXiv 2407.02485, Sec. 4) tunes one model in two stages, every task in the one
(question, context, answer) format of :mod:`nvrepro.rankrag.prompts`:

* Stage I (Sec. 4.1, :func:`build_instructions`): general instruction following, no context
  (``task="instruction"``). Here six rule-made kinds (repeat, reverse, larger number, next day or
  month, spell a number, sort words) with short answers, over a fixed word list or the world's
  own vocabulary.
* Stage II (Sec. 4.2, :func:`build_blend`), from the questions of one split of the world
  (training uses ``"train"``: test people are never seen):

  - ``"context_qa"``: the gold passage(s) alone (shuffled, for two-hop) -> answer;
  - ``"rag_qa"``: gold passage(s) among hard and confusable negatives
    (:func:`~nvrepro.rankrag.world.hard_negatives`,
    :func:`~nvrepro.rankrag.world.confusable_negatives`), ``context_size`` passages, shuffled;
  - ``"ranking"``: one passage, :func:`~nvrepro.rankrag.prompts.ranking_question` -> ``"True"``
    for a gold passage, ``"False"`` for a negative (alternating, so exactly balanced). The
    negatives alternate in turn between a hard negative (the same person, another facet) and a
    confusable one (a namesake, the same facet), as a retriever's top-n mixes both: with hard
    negatives alone a model fits "the passage is about the asked facet" and rates every namesake
    relevant (the first paper-profile run of notebook 02 did exactly that);
  - ``"listwise_ranking"``: ``context_size`` shuffled passages holding none, some or all of the
    gold ones -> the numbers of the gold ones (:func:`~nvrepro.rankrag.prompts.listwise_answer`).

  ``ranking_share`` is the fraction of ranking rows (pointwise and listwise, half each); the rest
  is half context-rich QA, half retrieval-augmented QA. ``ranking_share=0`` is a ChatQA-like
  generator's data, ``1`` a dedicated re-ranker's, in between RankRAG's blend.

Columns: ``question`` (the full question text, ranking wrappers included), ``context`` (list of
passage texts), ``answer`` and ``task``; the prompt is ``render_prompt(question, context)`` and the
target ``target_text(answer)``. Rows are shuffled; everything is deterministic for a seed.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable

import numpy as np
from datasets import Dataset, Features, Sequence, Value

from nvrepro.core.tooling.validation import require, require_positive_int
from nvrepro.rankrag.prompts import (
    IRRELEVANT,
    RELEVANT,
    listwise_answer,
    listwise_ranking_question,
    ranking_question,
)
from nvrepro.rankrag.world import Question, World, confusable_negatives, hard_negatives

TASKS = ("instruction", "context_qa", "rag_qa", "ranking", "listwise_ranking")
RANKING_TASKS = ("ranking", "listwise_ranking")
FEATURES = Features({"question": Value("string"), "context": Sequence(Value("string")),
                     "answer": Value("string"), "task": Value("string")})
NO_GOLD_PROBABILITY = 0.2  # listwise rows whose context holds no gold passage ("none")

WORDS = ("apple", "river", "stone", "cloud", "tiger", "lamp", "garden", "silver", "bread", "window",
         "forest", "candle", "rocket", "pepper", "violin", "harbor", "meadow", "puzzle", "copper", "island")
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
                "nineteen", "twenty")
CYCLES = (("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
          ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"))

Row = tuple[str, list[str], str]  # (question, context, answer)


def _pick(rng: np.random.Generator, items, k: int) -> list:
    return [items[i] for i in rng.choice(len(items), size=k, replace=False).tolist()]


def _repeat(rng: np.random.Generator, words: list[str]) -> tuple[str, str]:
    word, times = _pick(rng, words, 1)[0], int(rng.integers(2, 5))
    return f"Repeat the word {word} {NUMBER_WORDS[times]} times.", " ".join([word] * times)


def _reverse(rng: np.random.Generator, words: list[str]) -> tuple[str, str]:
    chosen = _pick(rng, words, int(rng.integers(3, 6)))
    return f"Reverse the order of: {' '.join(chosen)}", " ".join(reversed(chosen))


def _larger(rng: np.random.Generator, words: list[str]) -> tuple[str, str]:
    a, b = (int(x) + 1 for x in rng.choice(99, size=2, replace=False))
    return f"Which number is larger: {a} or {b}?", str(max(a, b))


def _after(rng: np.random.Generator, words: list[str]) -> tuple[str, str]:
    cycle = CYCLES[int(rng.integers(len(CYCLES)))]
    i = int(rng.integers(len(cycle)))
    return f"What comes after {cycle[i]}?", cycle[(i + 1) % len(cycle)]


def _spell(rng: np.random.Generator, words: list[str]) -> tuple[str, str]:
    n = int(rng.integers(len(NUMBER_WORDS)))
    return f"Spell out the number {n}.", NUMBER_WORDS[n]


def _sort(rng: np.random.Generator, words: list[str]) -> tuple[str, str]:
    chosen = _pick(rng, words, int(rng.integers(3, 6)))
    return f"Sort alphabetically: {' '.join(chosen)}", " ".join(sorted(chosen))


INSTRUCTION_KINDS: tuple[Callable[[np.random.Generator, list[str]], tuple[str, str]], ...] = (
    _repeat, _reverse, _larger, _after, _spell, _sort)


def world_vocabulary(world: World) -> list[str]:
    """Lower-case single words of the world (first names, occupations, hobbies), sorted."""
    words = {p.first.lower() for p in world.people}
    words |= {w for p in world.people for w in (p.occupation, p.hobby) if " " not in w}
    return sorted(words)


def _to_dataset(rows: list[tuple[str, list[str], str, str]]) -> Dataset:
    columns = {"question": [], "context": [], "answer": [], "task": []}
    for question, context, answer, task in rows:
        columns["question"].append(question)
        columns["context"].append(list(context))
        columns["answer"].append(answer)
        columns["task"].append(task)
    return Dataset.from_dict(columns, features=FEATURES)


def build_instructions(size: int, seed: int = 0, world: World | None = None) -> Dataset:
    """Stage I: ``size`` context-free instructions of :data:`INSTRUCTION_KINDS`, drawn by the seed,
    over :data:`WORDS` or, given a ``world``, its vocabulary (:func:`world_vocabulary`)."""
    require_positive_int(size, "size")
    rng = np.random.default_rng(seed)
    words = world_vocabulary(world) if world is not None else list(WORDS)
    rows = []
    for _ in range(size):
        question, answer = INSTRUCTION_KINDS[int(rng.integers(len(INSTRUCTION_KINDS)))](rng, words)
        rows.append((question, [], answer, "instruction"))
    return _to_dataset(rows)


def _negatives(world: World, q: Question, rng: np.random.Generator, n: int) -> list[int]:
    """``n`` negative pids for ``q``: one of its hard negatives (when it has one), the rest drawn from
    its other hard and confusable negatives, then, if those run out, random passages about other
    entities."""
    hard = hard_negatives(world, q)
    chosen = _pick(rng, hard, min(1, len(hard), n))
    candidates = [pid for pid in dict.fromkeys(hard + confusable_negatives(world, q, rng, n)) if pid not in chosen]
    chosen += _pick(rng, candidates, min(n - len(chosen), len(candidates)))
    taken = set(chosen) | set(world.entity_passages(q.entity)) | set(q.gold)
    while len(chosen) < n:
        pid = int(rng.integers(len(world.passages)))
        if pid not in taken:
            chosen.append(pid)
            taken.add(pid)
    return chosen


def _shuffled(rng: np.random.Generator, pids: list[int]) -> list[int]:
    return [pids[i] for i in rng.permutation(len(pids)).tolist()]


def _context_qa(world: World, q: Question, rng: np.random.Generator, context_size: int, i: int) -> Row:
    return q.text, world.texts(_shuffled(rng, list(q.gold))), q.answer


def _rag_qa(world: World, q: Question, rng: np.random.Generator, context_size: int, i: int) -> Row:
    pids = list(q.gold) + _negatives(world, q, rng, context_size - len(q.gold))
    return q.text, world.texts(_shuffled(rng, pids)), q.answer


def _ranking(world: World, q: Question, rng: np.random.Generator, context_size: int, i: int) -> Row:
    if i % 2 == 0:
        return ranking_question(q.text), world.texts(_pick(rng, q.gold, 1)), RELEVANT
    confusable = confusable_negatives(world, q, rng, 1) if i % 4 == 3 else []
    negative = confusable or _negatives(world, q, rng, 1)  # a hard negative, or a namesake's passage
    return ranking_question(q.text), world.texts(negative), IRRELEVANT


def _listwise(world: World, q: Question, rng: np.random.Generator, context_size: int, i: int) -> Row:
    n_gold = 0 if rng.random() < NO_GOLD_PROBABILITY else int(rng.integers(1, len(q.gold) + 1))
    gold = _pick(rng, q.gold, n_gold)
    pids = _shuffled(rng, gold + _negatives(world, q, rng, context_size - n_gold))
    numbers = [k for k, pid in enumerate(pids, start=1) if pid in gold]
    return listwise_ranking_question(q.text), world.texts(pids), listwise_answer(numbers)


ROW_BUILDERS = {"context_qa": _context_qa, "rag_qa": _rag_qa, "ranking": _ranking, "listwise_ranking": _listwise}


def task_counts(ranking_share: float, size: int) -> dict[str, int]:
    """Rows per Stage II task: ``round(ranking_share * size)`` ranking rows, half pointwise (the odd
    one too) and half listwise; the rest half context-rich QA (the odd one too), half RAG QA."""
    n_rank = int(round(ranking_share * size))
    n_qa = size - n_rank
    return {"context_qa": n_qa - n_qa // 2, "rag_qa": n_qa // 2,
            "ranking": n_rank - n_rank // 2, "listwise_ranking": n_rank // 2}


def _validate(world: World, ranking_share, size, context_size, split) -> list[Question]:
    require(isinstance(ranking_share, (int, float)) and not isinstance(ranking_share, bool)
            and 0.0 <= ranking_share <= 1.0, "ranking_share", f"must be in [0, 1], got {ranking_share!r}")
    require_positive_int(size, "size")
    require(split in world.questions, "split", f"unknown split {split!r}; allowed: {sorted(world.questions)}")
    questions = world.questions[split]
    require(len(questions) > 0, "split", f"the world has no {split!r} questions")
    most_gold = max(len(q.gold) for q in questions)
    require(isinstance(context_size, int) and not isinstance(context_size, bool)
            and max(2, most_gold) <= context_size <= len(world.passages) // 2, "context_size",
            f"must be an integer from {max(2, most_gold)} (room for every gold passage) to "
            f"{len(world.passages) // 2}, got {context_size!r}")
    return questions


def _question_order(rng: np.random.Generator, n_questions: int, count: int) -> list[int]:
    """``count`` question indices: whole seeded permutations, one after another (even coverage)."""
    rounds = -(-count // n_questions)
    return [int(i) for _ in range(rounds) for i in rng.permutation(n_questions)][:count]


def build_blend(world: World, *, ranking_share: float, size: int, context_size: int = 4, seed: int = 0,
                split: str = "train") -> Dataset:
    """Stage II: ``size`` rows over ``world``'s ``split`` questions, :func:`task_counts` rows per
    task, shuffled (see the module docstring)."""
    questions = _validate(world, ranking_share, size, context_size, split)
    rng = np.random.default_rng(seed)
    rows = []
    for task, count in task_counts(ranking_share, size).items():
        build = ROW_BUILDERS[task]
        for i, qi in enumerate(_question_order(rng, len(questions), count)):
            rows.append((*build(world, questions[qi], rng, context_size, i), task))
    return _to_dataset([rows[i] for i in rng.permutation(len(rows)).tolist()])


def blend_summary(ds: Dataset) -> dict[str, int]:
    """Rows per task of a blend (tasks absent from it are left out)."""
    counts = Counter(ds["task"])
    return {task: counts[task] for task in (*TASKS, *sorted(set(counts) - set(TASKS))) if counts[task]}
