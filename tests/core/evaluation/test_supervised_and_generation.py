"""Loss/accuracy, generation and option scoring against naive per-row references."""

import math

import pytest
import torch

from nvrepro.core.evaluation import (answer_loss, check_number, choose_option, generate_greedy, option_logprobs,
                                     position_losses, supervised_scores)
from nvrepro.core.lm.config import AttentionConfig, FFNConfig, MambaConfig, ModelConfig
from nvrepro.core.lm.model import build_model


@pytest.fixture(scope="module")
def hybrid():
    torch.manual_seed(0)
    cfg = ModelConfig(pattern="M*-", d_model=32, vocab_size=23, max_seq_len=64,
                      mamba=MambaConfig(n_heads=2, head_dim=16, d_state=8, chunk_size=8),
                      attention=AttentionConfig(n_heads=2, n_kv_heads=1, head_dim=16), ffn=FFNConfig(hidden=64))
    return build_model(cfg).eval()


def naive_logprob(model, ids: list[int]) -> torch.Tensor:
    """log p of each next token of one row, computed alone, by hand (log of softmax)."""
    with torch.no_grad():
        logits = model(torch.tensor([ids]))[0].double()
    probs = torch.exp(logits) / torch.exp(logits).sum(-1, keepdim=True)
    return torch.log(probs[torch.arange(len(ids) - 1), torch.tensor(ids[1:])])


def test_supervised_scores_match_per_position_counting(hybrid):
    g = torch.Generator().manual_seed(1)
    batches = []
    for b in (3, 2):
        ids = torch.randint(0, 23, (b, 10), generator=g)
        labels = torch.randint(0, 23, (b, 10), generator=g)
        labels[torch.rand(b, 10, generator=g) < 0.5] = -100
        batches.append({"input_ids": ids, "labels": labels})
    nll, hits, n = 0.0, 0, 0
    for batch in batches:
        for row, lab in zip(batch["input_ids"], batch["labels"]):
            with torch.no_grad():
                logits = hybrid(row[None])[0].double()
            for t in range(10):
                if lab[t] == -100:
                    continue
                nll -= (logits[t, lab[t]] - torch.logsumexp(logits[t], -1)).item()
                hits += int(logits[t].argmax() == lab[t])
                n += 1
    got = supervised_scores(hybrid, batches)
    assert got.count == n and got.correct == hits
    assert got.loss == pytest.approx(nll / n, rel=1e-5)
    assert got.accuracy.low <= hits / n <= got.accuracy.high
    same = supervised_scores(hybrid, batches, reference=[hybrid(b["input_ids"]).argmax(-1) for b in batches])
    assert same.agree == same.count  # a model agrees with itself everywhere


def test_supervised_scores_refuses_nothing_supervised(hybrid):
    batch = {"input_ids": torch.zeros(1, 4, dtype=torch.long), "labels": torch.full((1, 4), -100)}
    with pytest.raises(ValueError, match="no supervised positions"):
        supervised_scores(hybrid, [batch])


def test_answer_loss_and_position_losses_match_naive_rows(hybrid):
    prompts, answers = [[1, 2, 3], [4, 5], [6, 7, 8]], [[9, 10], [11, 12, 13], [14]]
    terms = []
    for p, a in zip(prompts, answers):
        lp = naive_logprob(hybrid, p + a)
        terms += (-lp[len(p) - 1:]).tolist()
    assert answer_loss(hybrid, prompts, answers) == pytest.approx(sum(terms) / len(terms), rel=1e-5)
    ids = torch.randint(0, 23, (3, 9), generator=torch.Generator().manual_seed(2))
    labels = torch.roll(ids, -1, 1)
    naive = torch.stack([-torch.log_softmax(hybrid(r[None])[0].double(), -1)[torch.arange(9), y]
                         for r, y in zip(ids, labels)]).mean(0)
    assert torch.allclose(position_losses(hybrid, ids, labels, batch_size=2).double(), naive, atol=1e-5)


def test_generate_greedy_equals_one_row_at_a_time(hybrid):
    prompts = [[1, 2, 3], [4, 5], [7, 8, 9], [3], [10, 11]]
    batched = generate_greedy(hybrid, prompts, max_new_tokens=5, batch_size=2)
    for p, got in zip(prompts, batched):
        ids = list(p)
        for _ in range(5):  # naive greedy: a full forward per new token, no cache
            with torch.no_grad():
                ids.append(int(hybrid(torch.tensor([ids]))[0, -1].argmax()))
        assert got == ids[len(p):]


def test_option_logprobs_and_choice_match_naive_rows(hybrid):
    prompt, options = [1, 2, 3], [[4], [5, 6], [7, 8], [9, 10, 11]]
    scores = option_logprobs(hybrid, prompt, options, batch_size=1)
    for o, s in zip(options, scores):
        assert s.item() == pytest.approx(naive_logprob(hybrid, prompt + o)[len(prompt) - 1:].sum().item(), abs=1e-6)
    assert choose_option(hybrid, prompt, options) == int(scores.argmax())
    per_token = [s.item() / len(o) for s, o in zip(scores, options)]
    assert choose_option(hybrid, prompt, options, per_token=True) == max(range(4), key=per_token.__getitem__)
    with pytest.raises(ValueError, match="options"):
        option_logprobs(hybrid, prompt, [[]])


def test_check_number_verdicts():
    assert check_number(None, 3.0, what="x", verbose=False).ok is None
    assert check_number("abc", 3.0, what="x", verbose=False).ok is False
    assert check_number(3.02, 3.0, what="x", rel_tol=0.01, verbose=False).ok is True
    slip = check_number(6.0, 3.0, what="x", slips=((6.0, "doubled"),), verbose=False)
    assert slip.ok is False and "doubled" in slip.message
    assert check_number(math.inf, 3.0, what="x", verbose=False).ok is False
