"""The task: token rows, nats per byte across tokenizers, tokenizers in messages, users on disk."""

import math

import numpy as np
import pytest
import torch

from nvrepro.core.data.tokenizers import ByteTokenizer, train_bpe_tokenizer
from nvrepro.core.tooling.validation import ConfigError
from nvrepro.fl.task import (DEFAULT_MODEL_CONFIG, build_lm, mean_loss, nats_per_byte, text_bytes, token_rows,
                             tokenizer_from_json, tokenizer_json, user_rows)
from nvrepro.fl.users import user_texts


def test_rows_predict_every_token_but_the_first_exactly_once():
    tok = ByteTokenizer()
    texts = ["hello there", "a", "bc"]
    stream = [i for t in texts for i in tok.encode(t) + [tok.eos_id]]
    for seq_len in (1, 3, 4, 7, 40):
        rows = token_rows(texts, seq_len)
        assert rows.shape[1] == seq_len + 1
        labels = [int(x) for x in rows[:, 1:].reshape(-1) if x != tok.pad_id]
        assert labels == stream[1:]  # in order, none twice, none missing
        assert rows[0, 0] == stream[0]


def test_nats_per_byte_is_the_mean_token_loss_for_bytes():
    model = build_lm(DEFAULT_MODEL_CONFIG, seed=1)
    texts = user_texts(3, 8)
    rows = token_rows(texts, 32)
    total_tokens = text_bytes(texts) - 1  # every byte and <eos> but the first is predicted
    assert nats_per_byte(model, texts, 32) == pytest.approx(mean_loss(model, rows) * total_tokens / text_bytes(texts),
                                                            rel=1e-5)


def test_nats_per_byte_of_a_uniform_model_is_log_vocab_per_token():
    """A model with constant logits: each token costs ln V, so nats/byte = ln V * tokens / bytes."""
    bpe = train_bpe_tokenizer(user_texts(0, 200) + user_texts(1, 200), 300)
    cfg = dict(DEFAULT_MODEL_CONFIG, vocab_size=bpe.vocab_size)
    model = build_lm(cfg, seed=0)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    texts = user_texts(2, 10)
    tokens = sum(len(bpe.encode(t)) + 1 for t in texts) - 1
    want = math.log(bpe.vocab_size) * tokens / text_bytes(texts)
    assert nats_per_byte(model, texts, 16, bpe) == pytest.approx(want, rel=1e-5)


def test_tokenizer_travels_as_a_string(tmp_path):
    assert tokenizer_json(None) == "" and isinstance(tokenizer_from_json(""), ByteTokenizer)
    bpe = train_bpe_tokenizer(user_texts(0, 100), 280)
    back = tokenizer_from_json(tokenizer_json(bpe))
    text = "Taking the dog for a walk around Berlin."
    assert back.encode(text) == bpe.encode(text) and back.vocab_size == bpe.vocab_size
    bpe.save(tmp_path / "tokenizer.json")
    assert tokenizer_from_json(str(tmp_path / "tokenizer.json")).encode(text) == bpe.encode(text)


def test_users_from_disk(tmp_path):
    from datasets import Dataset

    from nvrepro.fl.user_data import num_users, user_texts_from_disk

    rows = [("bob", "b1"), ("alice", "a1"), ("bob", "b2"), ("carol", "c1"), ("alice", "a2"), ("alice", "a3")]
    Dataset.from_dict({"user_id": [u for u, _ in rows], "text": [t for _, t in rows]}).save_to_disk(tmp_path / "ds")
    path = str(tmp_path / "ds")
    assert num_users(path) == 3
    assert user_texts_from_disk(path, 0, 10) == ["a1", "a2", "a3"]  # alice: sorted ids, dataset order kept
    assert user_texts_from_disk(path, 0, 2) == ["a1", "a2"]
    assert user_texts_from_disk(path, 2, 10) == ["c1"]
    assert user_rows(1, 5, 8, user_data=path).reshape(-1).tolist()[:2] == list(b"b1")
    with pytest.raises(ConfigError, match="user_data"):
        user_texts_from_disk(path, 3, 1)
    with pytest.raises(ConfigError, match="user_data"):
        num_users(str(tmp_path / "missing"))
    from nvrepro.fl.server import DPFedAvgSettings

    with pytest.raises(ConfigError, match="num_users"):
        DPFedAvgSettings(num_users=2, clients_per_round=1, eval_users=2, user_data=path)
    assert DPFedAvgSettings(num_users=2, clients_per_round=1, eval_users=1, user_data=path).user_data == path


def test_settings_check_the_tokenizer_fits_the_model():
    from nvrepro.fl.server import DPFedAvgSettings

    bpe = train_bpe_tokenizer(user_texts(0, 100), 300)
    with pytest.raises(ConfigError, match="vocab_size"):
        DPFedAvgSettings(tokenizer=tokenizer_json(bpe), model_config=dict(DEFAULT_MODEL_CONFIG, vocab_size=280))
    DPFedAvgSettings(tokenizer=tokenizer_json(bpe), model_config=dict(DEFAULT_MODEL_CONFIG, vocab_size=300))
