"""The synthetic fact world: deterministic, answers only in their passage, split by entity, and
retrievable by question text from a database of its passages."""

import numpy as np
import pytest

from nvrepro.core.tooling.validation import ConfigError
from nvrepro.retro.facts import ATTRIBUTES, entities, fact_corpus, qa_examples


def test_deterministic_for_a_seed():
    assert fact_corpus(30, seed=3) == fact_corpus(30, seed=3)
    assert qa_examples(30, seed=3) == qa_examples(30, seed=3)
    assert fact_corpus(30, seed=3) != fact_corpus(30, seed=4)
    assert len(set(fact_corpus(30, seed=3))) == 30


def test_answers_are_in_their_passage_only_and_never_in_a_question():
    passages = fact_corpus(60, seed=1)
    qa = qa_examples(60, seed=1)
    examples = qa["train"] + qa["test"]
    assert len(examples) == 60 * len(ATTRIBUTES)
    questions = [e.question for e in examples]
    for e in examples:
        assert e.answer in passages[e.passage] and e.entity in passages[e.passage] and e.entity in e.question
        assert not any(e.answer.lower() in q.lower() for q in questions)
    # distractors: each city, occupation and hobby answer belongs to other people as well, and most
    # people share their given name or surname with someone else
    people = entities(60, seed=1)
    for attribute in ("city", "occupation", "hobby"):
        values = [p.answer(attribute) for p in people]
        assert np.mean([values.count(v) > 1 for v in values]) > 0.9
    parts = [p.name.split() for p in people]
    shared = [sum(q[0] == g or q[1] == s for q in parts) > 1 for g, s in parts]
    assert np.mean(shared) > 0.9


def test_train_and_test_people_are_disjoint():
    qa = qa_examples(50, seed=2, test_fraction=0.2)
    train, test = ({e.entity for e in qa[s]} for s in ("train", "test"))
    assert not train & test and len(train | test) == 50 and len(test) == 10
    assert {e.passage for e in qa["test"]} == {i for i, p in enumerate(entities(50, seed=2)) if p.name in test}
    with pytest.raises(ConfigError, match="test_fraction"):
        qa_examples(10, test_fraction=1.0)
    with pytest.raises(ConfigError, match="num_entities"):
        fact_corpus(0)


def test_questions_retrieve_their_passage(tmp_path):
    pytest.importorskip("faiss")
    pytest.importorskip("sentence_transformers")
    from nvrepro.core.retrieval.database import build_database, open_database
    from nvrepro.retro.facts import fact_database_config, retrieval_accuracy

    cfg = fact_database_config(tmp_path, 20, seed=0, chunk_len=64, recall_queries=8, recall_k=3)
    build_database(cfg, progress=False)
    db = open_database(cfg.out_dir)
    qa = qa_examples(20, seed=0)
    examples = qa["train"] + qa["test"]
    got = retrieval_accuracy(db, examples, k=2)
    # the reference: exhaustive cosine search over the decoded chunks, written out with numpy
    emb = db.embedder()
    keys = emb.embed([bytes(c[c < 256].tolist()).decode() for c in db.chunks.tokens])
    top = np.argmax(emb.embed([e.question for e in examples]) @ keys.T, axis=1)
    assert (got["rows"][:, 0] == top).all()
    right = db.chunks.doc_ids[top] == np.array([e.passage for e in examples])
    assert got["top1"] == right.mean() >= 0.8 and got["topk"] >= got["top1"]
