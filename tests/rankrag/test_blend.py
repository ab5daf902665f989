"""RankRAG's blends: deterministic, the task mix asked for, ranking labels true exactly for gold
passages, built from the asked split only, and stage I instructions answered correctly."""

import re
import time
from collections import Counter

import pytest

from nvrepro.core.tooling.validation import ConfigError
from nvrepro.rankrag.blend import blend_summary, build_blend, build_instructions
from nvrepro.rankrag.prompts import listwise_ranking_question, ranking_question
from nvrepro.rankrag.world import build_world

CONTEXT_SIZE = 4


@pytest.fixture(scope="module")
def world():
    return build_world(num_people=60, num_companies=12, two_hop_fraction=0.3, seed=2)


@pytest.fixture(scope="module")
def blend(world):
    return build_blend(world, ranking_share=0.5, size=800, context_size=CONTEXT_SIZE, seed=0)


def by_text(world, split="train"):
    """Each question of ``split`` under its plain, pointwise and listwise texts."""
    out = {}
    for q in world.questions[split]:
        out[q.text] = out[ranking_question(q.text)] = out[listwise_ranking_question(q.text)] = q
    return out


def rows(ds, task):
    return [r for r in ds if r["task"] == task]


def gold_texts(world, q):
    return {world.passages[g].text for g in q.gold}


def test_columns_and_determinism(world, blend):
    assert blend.column_names == ["question", "context", "answer", "task"]
    again = build_blend(world, ranking_share=0.5, size=800, context_size=CONTEXT_SIZE, seed=0)
    other = build_blend(world, ranking_share=0.5, size=800, context_size=CONTEXT_SIZE, seed=1)
    assert again.to_dict() == blend.to_dict()
    assert other.to_dict() != blend.to_dict()
    assert build_instructions(50, seed=3).to_dict() == build_instructions(50, seed=3).to_dict()
    assert build_instructions(50, seed=3).to_dict() != build_instructions(50, seed=4).to_dict()


@pytest.mark.parametrize("share, expected", [
    (0.0, {"context_qa": 50, "rag_qa": 50}),
    (1.0, {"ranking": 50, "listwise_ranking": 50}),
    (0.3, {"context_qa": 35, "rag_qa": 35, "ranking": 15, "listwise_ranking": 15})])
def test_ranking_share_sets_the_task_mix(world, share, expected):
    assert blend_summary(build_blend(world, ranking_share=share, size=100)) == expected


def test_pointwise_ranking_is_true_exactly_for_gold_passages_and_balanced(world, blend):
    questions = by_text(world)
    ranking = rows(blend, "ranking")
    for r in ranking:
        q = questions[r["question"]]
        assert len(r["context"]) == 1
        assert (r["answer"] == "True") == (r["context"][0] in gold_texts(world, q))
        assert r["answer"] in ("True", "False")
    assert abs(sum(r["answer"] == "True" for r in ranking) / len(ranking) - 0.5) < 0.05


def test_pointwise_negatives_are_hard_or_confusable(world, blend):
    questions = by_text(world)
    for r in rows(blend, "ranking"):
        if r["answer"] == "False":
            q = questions[r["question"]]
            first, last = q.entity.split()
            assert first in r["context"][0] or last in r["context"][0]


def test_pointwise_negatives_mix_same_person_and_namesakes(world, blend):
    """A retriever's top-n holds both kinds; a ranker trained on one kind only cannot tell the other."""
    questions = by_text(world)
    kinds = Counter()
    for r in rows(blend, "ranking"):
        if r["answer"] == "False":
            kinds["same person" if questions[r["question"]].entity in r["context"][0] else "namesake"] += 1
    total = sum(kinds.values())
    assert total > 20 and 0.3 < kinds["namesake"] / total < 0.6, kinds


def test_listwise_answers_name_exactly_the_gold_passages(world, blend):
    questions = by_text(world)
    listwise = rows(blend, "listwise_ranking")
    answers = set()
    for r in listwise:
        q = questions[r["question"]]
        assert len(r["context"]) == CONTEXT_SIZE == len(set(r["context"]))
        numbers = [str(i) for i, text in enumerate(r["context"], start=1) if text in gold_texts(world, q)]
        assert r["answer"] == (" ".join(numbers) if numbers else "none")
        answers.add(len(numbers))
    assert answers == {0, 1, 2}  # some rows hold no gold, some one, some (two-hop) both


def test_qa_rows_hold_the_gold_passages_and_the_answer(world, blend):
    questions = by_text(world)
    for r in rows(blend, "context_qa"):
        q = questions[r["question"]]
        assert set(r["context"]) == gold_texts(world, q) and len(r["context"]) == len(q.gold)
        assert r["answer"] == q.answers[0]
    hard = 0
    for r in rows(blend, "rag_qa"):
        q = questions[r["question"]]
        assert len(r["context"]) == CONTEXT_SIZE == len(set(r["context"]))
        assert gold_texts(world, q) <= set(r["context"]) and r["answer"] == q.answers[0]
        # a hard negative: names the entity, is not gold
        hard += any(q.entity in t and t not in gold_texts(world, q) for t in r["context"])
    assert hard == len(rows(blend, "rag_qa"))


def test_blends_use_only_their_split(world, blend):
    test_people = {q.entity for q in world.questions["test"]}
    assert all(r["question"] in by_text(world, "train") for r in blend)
    assert not any(name in r["question"] for r in blend for name in test_people)
    held_out = build_blend(world, ranking_share=0.5, size=100, split="test")
    assert all(r["question"] in by_text(world, "test") for r in held_out)


def test_twenty_thousand_rows_build_in_seconds():
    w = build_world()
    start = time.perf_counter()
    ds = build_blend(w, ranking_share=0.3, size=20_000)
    assert len(ds) == 20_000 and time.perf_counter() - start < 15


def check_instruction(question, answer):
    """The right answer of a stage I instruction, worked out from its text alone."""
    numbers = {"two": 2, "three": 3, "four": 4, "seven": 7, "twelve": 12}
    if m := re.fullmatch(r"Repeat the word (\w+) (\w+) times\.", question):
        return answer == " ".join([m[1]] * numbers[m[2]])
    if m := re.fullmatch(r"Reverse the order of: (.+)", question):
        return answer.split() == m[1].split()[::-1]
    if m := re.fullmatch(r"Which number is larger: (\d+) or (\d+)\?", question):
        return int(answer) == max(int(m[1]), int(m[2])) and m[1] != m[2]
    if m := re.fullmatch(r"What comes after (\w+)\?", question):
        follows = {"Monday": "Tuesday", "Sunday": "Monday", "June": "July", "December": "January"}
        return follows.get(m[1], answer) == answer and answer != m[1]
    if m := re.fullmatch(r"Spell out the number (\d+)\.", question):
        return {v: k for k, v in numbers.items()}.get(int(m[1]), answer) == answer and answer.isalpha()
    if m := re.fullmatch(r"Sort alphabetically: (.+)", question):
        return answer.split() == sorted(m[1].split())
    raise AssertionError(f"unknown instruction {question!r}")


def test_instructions_are_answered_correctly_without_context(world):
    ds = build_instructions(600, seed=0, world=world)
    assert blend_summary(ds) == {"instruction": 600}
    kinds = set()
    for r in ds:
        assert r["context"] == [] and check_instruction(r["question"], r["answer"]), r
        kinds.add(r["question"].split()[0])
    assert kinds == {"Repeat", "Reverse", "Which", "What", "Spell", "Sort"}


@pytest.mark.parametrize("kwargs, field", [
    ({"ranking_share": -0.1}, "ranking_share"), ({"ranking_share": 1.5}, "ranking_share"),
    ({"size": 0}, "size"), ({"context_size": 1}, "context_size"), ({"split": "dev"}, "split")])
def test_bad_arguments_name_the_field(world, kwargs, field):
    args = {"ranking_share": 0.5, "size": 10, **kwargs}
    with pytest.raises(ConfigError, match=field):
        build_blend(world, **args)
    with pytest.raises(ConfigError, match="size"):
        build_instructions(0)
