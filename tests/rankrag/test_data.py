"""Answer-only labels, right padding, the world's tokenizer and the datamodule."""

import pytest
import torch

from nvrepro.core.data.tokenizers import ByteTokenizer
from nvrepro.core.tooling.validation import ConfigError
from nvrepro.core.data.answer_rows import pad_batch
from nvrepro.rankrag.data import IGNORE, RankRAGDataModule, encode_row, label_token_ids
from nvrepro.rankrag.prompts import render_prompt


def test_labels_cover_exactly_the_answer_and_eos(small_tokenizer):
    tok = small_tokenizer
    row = encode_row(tok, "When was Ann Lee born?", ["Ann Lee was born in 1950."], "1950", max_len=200)
    prompt = tok.encode(render_prompt("When was Ann Lee born?", ["Ann Lee was born in 1950."]))
    assert row.input_ids[:len(prompt)] == prompt and row.prompt_len == len(prompt)
    supervised = [(t, lab) for t, lab in enumerate(row.labels) if lab != IGNORE]
    # labels are pre-shifted: the label at t is the token at t + 1, from the last prompt token on
    assert [t for t, _ in supervised] == list(range(len(prompt) - 1, len(row.input_ids) - 1))
    assert all(lab == row.input_ids[t + 1] for t, lab in supervised)
    answer_ids = [lab for _, lab in supervised]
    assert answer_ids[-1] == tok.eos_id and tok.decode(answer_ids[:-1]).strip() == "1950"


def test_too_long_rows_name_max_len(small_tokenizer):
    with pytest.raises(ConfigError, match="max_len"):
        encode_row(small_tokenizer, "q " * 50, [], "a", max_len=10)


def test_right_padding_keeps_rows_and_ignores_pads():
    items = [{"input_ids": torch.tensor([5, 6, 7]), "labels": torch.tensor([-100, 7, -100])},
             {"input_ids": torch.tensor([8]), "labels": torch.tensor([-100])}]
    batch = pad_batch(items, pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 7, -100], [-100, -100, -100]]


def test_label_tokens_are_single_and_a_byte_tokenizer_has_none(small_tokenizer):
    t, f = label_token_ids(small_tokenizer)
    assert t != f and small_tokenizer.decode([t]).strip() == "True" and small_tokenizer.decode([f]).strip() == "False"
    with pytest.raises(ConfigError, match="tokenizer"):
        label_token_ids(ByteTokenizer())


def test_datamodule_batches_and_errors():
    dm = RankRAGDataModule(stage="blend", ranking_share=0.5, size=24, val_size=8, num_people=30, num_companies=6,
                           world_seed=3, vocab_size=600, batch_size=4)
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_ids"].shape == batch["labels"].shape and batch["input_ids"].shape[0] == 4
    assert (batch["labels"] != IGNORE).any(dim=1).all()  # every row has an answer to learn
    assert len(dm.val_dataset) == 8 and dm.vocab_size <= 600 + 2  # BPE + the two label tokens
    stage_one = RankRAGDataModule(stage="instruction", size=8, val_size=4, num_people=30, num_companies=6,
                                  world_seed=3, vocab_size=600, batch_size=4)
    assert len(next(iter(stage_one.train_dataloader()))["input_ids"]) == 4
    with pytest.raises(ConfigError, match="ranking_share"):
        RankRAGDataModule(ranking_share=1.5)
    with pytest.raises(ConfigError, match="stage"):
        RankRAGDataModule(stage="pretrain")


def test_full_scale_switch_reads_a_saved_blend_and_a_pretrained_tokenizer(tmp_path, small_world, small_tokenizer):
    """The config switch to real data: a blend saved to disk and a pretrained model's tokenizer.json
    (here the small world's BPE saved as a file, its own <eos> and <pad> named)."""
    import datasets

    from nvrepro.rankrag.blend import build_blend

    blend = build_blend(small_world, ranking_share=0.5, size=12, seed=0)
    datasets.DatasetDict({"train": blend, "validation": blend.select(range(4))}).save_to_disk(str(tmp_path / "blend"))
    small_tokenizer.save(tmp_path / "tok")
    dm = RankRAGDataModule(blend_path=str(tmp_path / "blend"), tokenizer_path=str(tmp_path / "tok"),
                           eos_token="<eos>", pad_token="<pad>", batch_size=4)
    dm.setup("fit")
    assert len(dm.train_dataset) == 12 and len(dm.val_dataset) == 4
    assert dm.tokenizer.eos_id == small_tokenizer.eos_id and dm.tokenizer.pad_id == small_tokenizer.pad_id
    assert next(iter(dm.train_dataloader()))["input_ids"].shape[0] == 4
    with pytest.raises(ConfigError, match="blend_path"):
        RankRAGDataModule(blend_path=str(tmp_path / "missing"), batch_size=4).setup("fit")
    with pytest.raises(ConfigError, match="eos_token"):
        RankRAGDataModule(tokenizer_path=str(tmp_path / "tok"))
    with pytest.raises(ConfigError, match="pad_token"):
        RankRAGDataModule(tokenizer_path=str(tmp_path / "tok"), eos_token="<eos>", pad_token="<nope>").tokenizer
