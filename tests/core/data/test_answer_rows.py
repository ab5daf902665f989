import pytest
import torch

from nvrepro.core.data.answer_rows import EncodedRows, answer_only_row, pad_batch, rows_loader
from nvrepro.core.tooling.validation import ConfigError


def test_labels_are_the_next_answer_token_and_ignored_elsewhere():
    row = answer_only_row([7, 8, 9], [4, 5, 2], max_len=6)
    assert row.input_ids == [7, 8, 9, 4, 5, 2]
    # position 2 (the last prompt token) predicts 4, then 5, then <eos> = 2; the last position predicts nothing
    assert row.labels == [-100, -100, 4, 5, 2, -100]
    assert row.prompt_len == 3


def test_too_long_and_empty_prompts_are_refused_by_field():
    with pytest.raises(ConfigError, match="max_len"):
        answer_only_row([1, 2], [3, 4, 5], max_len=4)
    with pytest.raises(ConfigError, match="prompt"):
        answer_only_row([], [3], max_len=4)


def test_padding_is_on_the_right_and_unsupervised():
    rows = EncodedRows([answer_only_row([1], [5], 8), answer_only_row([1, 2, 3], [6, 7], 8)])
    batch = pad_batch([rows[0], rows[1]], pad_id=0)
    assert batch["input_ids"].tolist() == [[1, 5, 0, 0, 0], [1, 2, 3, 6, 7]]
    assert batch["labels"].tolist() == [[5, -100, -100, -100, -100], [-100, -100, 6, 7, -100]]
    loaded = [b["input_ids"].shape for b in rows_loader(rows, 2, shuffle=True, seed=0, pad_id=0)]
    assert loaded == [torch.Size([2, 5])]
