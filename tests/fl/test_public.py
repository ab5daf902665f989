"""Public data: the pool and tokenizers hold nothing private, distillation's loss against torch's KL,
the samplers, pretraining."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nvrepro.core.tooling.validation import ConfigError
from nvrepro.fl.public import (distillation_loss, is_template, matching_scores, pretrain, public_pool,
                               select_public, train_tokenizer)
from nvrepro.fl.public_experiment import leaked_words, private_only_tokens
from nvrepro.fl.task import DEFAULT_MODEL_CONFIG, build_lm, nats_per_byte
from nvrepro.fl.users import user_profile, user_texts, words_of

TINY = dict(DEFAULT_MODEL_CONFIG, d_model=16, attention={"n_heads": 2, "n_kv_heads": 2, "head_dim": 8},
            ffn={"hidden": 32})


@pytest.fixture(scope="module")
def pool():
    return public_pool(200, seed=0, max_bible_sentences=2000)


def test_pool_is_bible_sentences_then_templates_and_holds_no_private_word(pool):
    near = is_template(pool, 200)
    assert len(pool) == 2200 and near.sum() == 200 and near[-200:].all()
    assert all(len(s) < 2000 for s in pool)  # split into sentences, not chapters
    private = {w.lower() for u in range(300) for w in user_profile(u).vocabulary}
    assert not private & {w.lower() for w in words_of(pool)}


def test_a_public_tokenizer_holds_nothing_private_and_a_private_one_does(pool):
    users = range(40)
    public_tok = train_tokenizer(pool, 400)
    private_tok = train_tokenizer([t for u in users for t in user_texts(u, 64)], 400)
    blob = "\n".join(pool)
    assert private_only_tokens(public_tok, blob) == 0 and leaked_words(public_tok, users, 0) == 0
    assert private_only_tokens(private_tok, blob) > 0  # merges only users' text could teach


def test_distillation_loss_is_torch_kl_times_t_squared():
    torch.manual_seed(0)
    s, t = torch.randn(2, 5, 11), torch.randn(2, 5, 11)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    for temp in (1.0, 2.0):
        per_pos = F.kl_div(F.log_softmax(s / temp, -1), F.log_softmax(t / temp, -1), log_target=True,
                           reduction="none").sum(-1)
        want = temp ** 2 * per_pos[mask].mean()
        assert distillation_loss(s, t, mask, temp) == pytest.approx(float(want), rel=1e-5)
    assert float(distillation_loss(t, t, mask)) == pytest.approx(0.0, abs=1e-6)


def test_samplers():
    scores = np.array([3.0, 1.0, 2.0, 1.0, 5.0])
    assert select_public(["x"] * 5, 2, "matching", scores) == [1, 3]  # lowest, ties by index
    assert select_public(["x"] * 5, 3, "matching", scores) == [1, 2, 3]
    r = select_public(["x"] * 100, 10, "random", seed=4)
    assert r == select_public(["x"] * 100, 10, "random", seed=4) and len(set(r)) == 10 and r == sorted(r)
    with pytest.raises(ConfigError, match="budget"):
        select_public(["x"] * 5, 6, "random")
    with pytest.raises(ConfigError, match="method"):
        select_public(["x"] * 5, 2, "nearest", scores)
    with pytest.raises(ConfigError, match="scores"):
        select_public(["x"] * 5, 2, "matching")


def test_pretraining_is_seeded_and_learns_and_matching_scores_prefer_what_it_learnt(pool):
    templates = pool[-200:]
    a, losses = pretrain(TINY, templates, steps=60, seq_len=32, batch_size=16, lr=1e-2, seed=3)
    b, _ = pretrain(TINY, templates, steps=60, seq_len=32, batch_size=16, lr=1e-2, seed=3)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 0.5
    scores = matching_scores(TINY, a, pool, 32)
    near = is_template(pool, 200)
    assert scores[near].mean() < scores[~near].mean()  # a model of chat-like text ranks chat-like text first
    model = build_lm(TINY)
    model.load_state_dict(a)
    assert scores[-1] == pytest.approx(nats_per_byte(model, [pool[-1]], 32), rel=1e-5)


def test_distillation_moves_the_student_towards_the_teacher(pool):
    teacher_state, _ = pretrain(TINY, pool[-200:], steps=60, seq_len=32, batch_size=16, lr=1e-2, seed=1)
    teacher = build_lm(TINY)
    teacher.load_state_dict(teacher_state)
    student, losses = pretrain(TINY, pool[-200:], steps=40, seq_len=32, batch_size=16, lr=1e-2, seed=2,
                               teacher=teacher)
    assert losses[-1] < losses[0]
    with pytest.raises(ConfigError, match="temperature"):
        pretrain(TINY, pool[-10:], steps=1, seq_len=32, teacher=teacher, temperature=0)
