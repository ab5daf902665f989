"""Questions: options shuffled so no letter stands for one answer, the right letter names the truth, the
rule-written response is well-formed for the rewards; the ontology's shape and the per-category table."""

import random
from collections import Counter

import pytest

from nvrepro.cosmos.ontology import (EmbodiedTag, PhysicalTag, accuracy_by_category, embodied_tags,
                                     physical_tags)
from nvrepro.cosmos.rewards import format_reward, parse_answer
from nvrepro.cosmos.tasks import TASKS, multiple_choice, sample, task

TRUTH_TO_OPTION = {"forward": "forward", "reversed": "reversed", "plausible": "yes", "implausible": "no"}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_answer_letter_names_the_truth_and_letters_are_balanced(name):
    letters = Counter()
    for seed in range(200):
        clip, q = sample(name, random.Random(seed))
        shown = dict(zip("ABCD", q.options))
        if name == "spatial_puzzle":
            assert clip.truth[0] == shown[q.answer]  # image 1's place in the frame
        else:
            assert shown[q.answer] == TRUTH_TO_OPTION[clip.truth]
        assert q.prompt.endswith("\n".join(f"{k}. {v}" for k, v in shown.items()))
        assert format_reward(q.response) == 1.0 and parse_answer(q.response) == q.answer
        letters[q.answer] += 1
    n = TASKS[name].n_options
    assert set(letters) == set("ABCD"[:n])
    assert all(abs(c / 200 - 1 / n) < 0.12 for c in letters.values()), letters
    assert TASKS[name].chance == 1 / n


def test_reasoning_cites_what_decides_the_answer():
    for seed in range(20):
        clip, q = sample("arrow_of_time", random.Random(seed))
        assert ("image 3 = image 4" in q.reasoning) == (clip.truth == "forward")
        clip, q = sample("object_permanence", random.Random(seed))
        assert ("never" in q.reasoning) == (clip.facts["violation"] == "vanishes")


def test_bad_task_and_options_are_refused():
    with pytest.raises(ValueError, match="task"):
        task("gravity")
    with pytest.raises(ValueError, match="right"):
        multiple_choice("t", "q?", ["a", "b"], "c", "r", random.Random(0))
    with pytest.raises(ValueError, match="options"):
        multiple_choice("t", "q?", ["a"], "a", "r", random.Random(0))


def test_ontologies_have_the_papers_shape():
    assert len(physical_tags()) == 16  # 4 space + 5 time + 7 fundamental physics subcategories
    assert len(embodied_tags()) == 20  # 4 capabilities x 5 agents
    with pytest.raises(ValueError, match="subcategory"):
        PhysicalTag("space", "order")
    with pytest.raises(ValueError, match="agent"):
        EmbodiedTag("predict action effects", "drones")
    assert {t.tag for t in TASKS.values()} <= set(physical_tags())


def test_accuracy_by_category_by_hand():
    order, perm = PhysicalTag("time", "order"), PhysicalTag("fundamental physics", "object permanence")
    rows = accuracy_by_category([order, order, order, perm], [True, False, True, False])
    by = {(r["category"], r["subcategory"]): r for r in rows}
    assert by[("time", "order")]["accuracy"] == 2 / 3 and by[("time", "order")]["items"] == 3
    assert by[("time", "all")]["accuracy"] == 2 / 3
    assert by[("fundamental physics", "object permanence")]["accuracy"] == 0.0
    assert by[("space", "all")] == {"category": "space", "subcategory": "all", "items": 0, "accuracy": None}
    assert len(rows) == 16 + 3
    # shares (per-item scores averaged over seeds) are averaged, not rounded to right/wrong
    halves = accuracy_by_category([order, order], [0.5, 0.5])
    assert next(r for r in halves if r["subcategory"] == "order")["accuracy"] == 0.5
    with pytest.raises(ValueError, match="tags"):
        accuracy_by_category([order], [True, False])
