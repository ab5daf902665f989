"""Generation with retrieval in the loop, and the repetition rate."""

import math

import numpy as np
import pytest
import torch

from nvrepro.core.lm.model import PatternLM
from nvrepro.retro.generation import generate_with_retrieval, repetition_rate
from nvrepro.retro.model import RetroConfig, RetroLM, gpt_config, retro_pattern, retrofit_from_gpt

CFG = RetroConfig(pattern=retro_pattern(6), d_model=16, vocab_size=30, max_seq_len=48, chunk_len=4,
                  attention=dict(n_heads=2, n_kv_heads=2, head_dim=8, rope=True), ffn=dict(hidden=32))


def test_retrieves_once_per_completed_chunk_and_matches_a_full_forward():
    torch.manual_seed(0)
    model = RetroLM(CFG).eval()
    seen = []

    def retrieve(chunk):
        seen.append(chunk.tolist())
        return (np.arange(16).reshape(2, 8) + chunk[0]) % 30

    prompt = [1, 2, 3, 4, 5, 6]
    new = generate_with_retrieval(model, prompt, 7, retrieve=retrieve, chunk_len=4)
    ids = prompt + new
    assert len(new) == 7 and seen == [ids[0:4], ids[4:8], ids[8:12]]  # chunks complete before the last step
    # greedy: each new token is the argmax of one forward over everything before it
    for t in range(len(prompt), len(ids)):
        c = t // 4
        neighbours = torch.as_tensor(np.stack([retrieve(np.asarray(ids[u * 4:(u + 1) * 4])) for u in range(c)]))[None]
        assert int(model(torch.tensor([ids[:t]]), neighbours=neighbours)[0, -1].argmax()) == ids[t]


def test_without_retrieval_a_retrofitted_retro_writes_what_its_gpt_writes():
    torch.manual_seed(1)
    gpt = PatternLM(gpt_config(CFG)).eval()
    retro = retrofit_from_gpt(RetroLM(CFG), gpt).eval()
    expected = gpt.generate(torch.tensor([[3, 1, 4]]), 10)[0, 3:].tolist()
    assert generate_with_retrieval(retro, [3, 1, 4], 10) == expected


def test_generation_errors():
    model = RetroLM(CFG)
    with pytest.raises(ValueError, match="max_seq_len"):
        generate_with_retrieval(model, [1] * 40, 10)
    with pytest.raises(ValueError, match="chunk_len"):
        generate_with_retrieval(model, [1], 2, retrieve=lambda c: c)


def test_repetition_rate_counts_repeated_word_ngrams():
    assert repetition_rate("a b c d e f", n=2) == 0.0
    # bigrams: (a b) (b a) (a b) (b a) (a b): the last three repeat earlier ones
    assert repetition_rate("a b a b a b", n=2) == pytest.approx(3 / 5)
    assert repetition_rate("the the the the", n=1) == pytest.approx(3 / 4)
    assert math.isnan(repetition_rate("too short", n=4))
    with pytest.raises(ValueError, match="n"):
        repetition_rate("x", n=0)
