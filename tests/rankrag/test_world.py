"""RankRAG's synthetic world: deterministic, answers only where they belong, hard negatives that
name the entity, two-hop questions that need both passages, split by person."""

import math
import random

import numpy as np
import pytest

from nvrepro.core.tooling.validation import ConfigError
from nvrepro.rankrag.world import build_world, confusable_negatives, hard_negatives

N_PEOPLE, N_COMPANIES = 60, 12


@pytest.fixture(scope="module")
def world():
    return build_world(num_people=N_PEOPLE, num_companies=N_COMPANIES, two_hop_fraction=0.25,
                       test_fraction=0.2, seed=1)


def all_questions(w):
    return w.questions["train"] + w.questions["test"]


def test_deterministic_for_a_seed_and_different_across_seeds():
    a, b, c = (build_world(num_people=40, num_companies=8, seed=s) for s in (3, 3, 4))
    assert a.passages == b.passages and a.questions == b.questions
    assert [p.text for p in a.passages] != [p.text for p in c.passages]


def test_leaves_the_global_random_states_alone():
    py_state, np_state = random.getstate(), np.random.get_state()[1].copy()
    build_world(num_people=20, num_companies=5, seed=7)
    assert random.getstate() == py_state and (np.random.get_state()[1] == np_state).all()


def test_sizes_and_short_passages(world):
    # three passages per person (birth, work, hobby) and one per company
    assert len(world.passages) == 3 * N_PEOPLE + N_COMPANIES
    assert [p.pid for p in world.passages] == list(range(len(world.passages)))
    assert len(all_questions(world)) == 5 * N_PEOPLE + round(0.25 * N_PEOPLE)
    assert sum(q.hops == 2 for q in all_questions(world)) == round(0.25 * N_PEOPLE)
    assert max(len(p.text.split()) for p in world.passages) < 30
    assert {p.facet for p in world.passages} == {"birth", "work", "hobby", "company"}


def test_names_are_confusable_but_full_names_distinct(world):
    names = [p.name for p in world.people]
    assert len(set(names)) == N_PEOPLE
    pool = math.ceil(math.sqrt(2 * N_PEOPLE))
    assert len({p.first for p in world.people}) <= pool and len({p.last for p in world.people}) <= pool
    shares = [sum(o.first == p.first or o.last == p.last for o in world.people) > 1 for p in world.people]
    assert np.mean(shares) > 0.9


def test_every_person_passage_names_the_person(world):
    for person in world.people:
        pids = world.entity_passages(person.name)
        assert len(pids) == 3
        assert all(person.name in world.passages[i].text for i in pids)


def test_answers_are_in_a_gold_passage_and_in_no_hard_negative(world):
    for q in all_questions(world):
        answer = q.answers[0]
        assert any(answer in world.passages[g].text for g in q.gold), q
        for pid in hard_negatives(world, q):
            assert world.passages[pid].entity == q.entity and q.entity in world.passages[pid].text
            assert answer.lower() not in world.passages[pid].text.lower()
        if q.hops == 1:  # the person's two other facet passages, both free of the answer
            others = set(world.entity_passages(q.entity)) - set(q.gold)
            assert sorted(hard_negatives(world, q)) == sorted(others) and len(others) == 2


def test_answers_never_inside_any_question(world):
    texts = [q.text.lower() for q in all_questions(world)]
    for q in all_questions(world):
        assert all(a.lower() not in t for a in q.answers for t in texts), q


def test_two_hop_questions_need_both_passages(world):
    two_hop = [q for q in all_questions(world) if q.hops == 2]
    assert two_hop
    for q in two_hop:
        person = world.person(q.entity)
        company = next(c for c in world.companies if c.name == person.employer)
        work, hq = (world.passages[g] for g in q.gold)
        assert q.answers == (company.city,)
        assert company.name in work.text and person.name in work.text and company.city not in work.text
        assert company.city in hq.text and person.name not in hq.text
        assert company.name not in q.text


def test_split_is_by_person_and_the_corpus_holds_everyone(world):
    train = {q.entity for q in world.questions["train"]}
    test = {q.entity for q in world.questions["test"]}
    assert not train & test and len(test) == round(0.2 * N_PEOPLE)
    assert train | test == {p.name for p in world.people}
    corpus_entities = {p.entity for p in world.passages}
    assert test <= corpus_entities and train <= corpus_entities


def test_confusable_negatives_are_namesakes_on_the_same_facet(world):
    rng = np.random.default_rng(0)
    for q in world.questions["train"][:40]:
        person = world.person(q.entity)
        facet = world.passages[q.gold[0]].facet
        picks = confusable_negatives(world, q, rng, 3)
        assert len(picks) == len(set(picks)) <= 3
        for pid in picks:
            other = world.person(world.passages[pid].entity)
            assert other.name != person.name and (other.first == person.first or other.last == person.last)
            assert world.passages[pid].facet == facet
    q = world.questions["train"][0]
    assert (confusable_negatives(world, q, np.random.default_rng(5), 2)
            == confusable_negatives(world, q, np.random.default_rng(5), 2))


@pytest.mark.parametrize("kwargs, field", [
    ({"num_people": 0}, "num_people"), ({"num_companies": -1}, "num_companies"),
    ({"two_hop_fraction": 1.5}, "two_hop_fraction"), ({"test_fraction": 1.0}, "test_fraction")])
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        build_world(**kwargs)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_worlds_keep_answers_out_of_questions_and_hard_negatives(seed):
    w = build_world(seed=seed)
    assert len(w.passages) == 3 * 300 + 40
    for q in all_questions(w):
        assert q.answers[0].lower() not in q.text.lower()
        assert any(q.answers[0] in w.passages[g].text for g in q.gold)
        assert all(q.answers[0].lower() not in w.passages[i].text.lower() for i in hard_negatives(w, q))
