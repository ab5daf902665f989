"""A small world, its tokenizer and a tiny random model, shared by the RankRAG tests."""

import pytest
import torch

from nvrepro.core.lm.config import ModelConfig
from nvrepro.core.lm.model import PatternLM


@pytest.fixture(scope="session")
def small_world():
    from nvrepro.rankrag.world import build_world

    return build_world(num_people=30, num_companies=6, seed=3)


@pytest.fixture(scope="session")
def small_tokenizer(small_world):
    from nvrepro.rankrag.data import world_tokenizer

    return world_tokenizer(small_world, vocab_size=600, seed=3)


def tiny_lm(vocab_size: int, seed: int = 0, pattern: str = "*-*-") -> PatternLM:
    torch.manual_seed(seed)
    cfg = ModelConfig.from_dict(dict(pattern=pattern, d_model=32, vocab_size=vocab_size, max_seq_len=512,
                                     attention=dict(n_heads=2, n_kv_heads=2, head_dim=16, rope=True),
                                     ffn=dict(hidden=64, activation="relu2")))
    return PatternLM(cfg).eval()


@pytest.fixture(scope="session")
def tiny_model(small_tokenizer):
    return tiny_lm(small_tokenizer.vocab_size)
