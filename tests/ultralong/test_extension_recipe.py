"""The continued-pretraining recipe of the extension arms: upsampled text rows, the same retrieval
rows with and without upsampling, and the module that starts from the base's checkpoint."""

import numpy as np
import torch

from nvrepro.core.lm.config import AttentionConfig, FFNConfig, ModelConfig
from nvrepro.ultralong.extension_recipe import ExtensionDataModule, ExtensionLMModule
from nvrepro.ultralong.module import TextRetrievalLMModule

STAGE = [dict(steps=3, seq_len=128, batch_size=4, retrieval_share=0.5)]


def _dm(**kw) -> ExtensionDataModule:
    args = dict(corpus="web_bible", tokenizer="byte", seq_len=128, batch_size=4, curriculum=STAGE,
                max_documents=40, short_len=3000, long_len=5000, seed=3) | kw
    dm = ExtensionDataModule(**args)
    dm.setup("fit")
    return dm


def _rows_from(dm, batch) -> list[int]:
    """Indices of the doc-stream rows (upsampled or not) that each text row of ``batch`` equals."""
    packed = dm.train_dataset.text[128]["input_ids"]
    return [int(np.flatnonzero((packed == row.numpy()).all(1))[0]) for row in batch["input_ids"][batch["is_text"]]]


def test_upsampling_changes_the_text_rows_only():
    up, flat = _dm(), _dm(upsample=False)
    assert up.upsample and not flat.upsample
    for i in range(len(up.train_dataset)):
        a, b = up.train_dataset[i], flat.train_dataset[i]
        mix = ~a["is_text"]
        assert torch.equal(a["is_text"], b["is_text"]) and int(mix.sum()) == 2
        assert torch.equal(a["input_ids"][mix], b["input_ids"][mix])  # the same retrieval documents
        assert torch.equal(a["labels"][mix], b["labels"][mix])
    assert not np.array_equal(up.train_dataset.text[128]["input_ids"], flat.train_dataset.text[128]["input_ids"])


def test_upsampled_text_favours_long_chapters_by_the_stated_weights():
    dm = _dm(num_tokens=4_000_000)  # about 25x the train tokens: many draws, a tight share
    train_docs, _ = dm._split_docs()
    ids = [dm.tokenizer.encode(d) for d in train_docs]
    picks = dm.upsampled(ids)
    assert len(picks) > 20 * len(ids)
    lengths = np.array([len(d) for d in ids])
    # chapters below short_len are drawn at weight 0.5, those at or above long_len at 2, the rest 1
    weight = np.where(lengths < 3000, 0.5, np.where(lengths >= 5000, 2.0, 1.0))
    expected_long = (weight * lengths)[lengths >= 5000].sum() / (weight * lengths).sum()
    plain_long = lengths[lengths >= 5000].sum() / lengths.sum()
    got_long = sum(len(d) for d in picks if len(d) >= 5000) / sum(len(d) for d in picks)
    assert expected_long > plain_long  # long chapters get a larger share of the text tokens
    assert abs(got_long - expected_long) < 0.05


def test_extension_module_starts_from_the_checkpoint(tmp_path):
    cfg = ModelConfig(pattern="*-", d_model=32, vocab_size=64, max_seq_len=32,
                      attention=AttentionConfig(n_heads=2, n_kv_heads=2, head_dim=16, rope=True),
                      ffn=FFNConfig(hidden=64))
    torch.manual_seed(0)
    parent = TextRetrievalLMModule(model=cfg.to_dict())
    path = tmp_path / "base.pt"
    torch.save(parent.model.state_dict(), path)
    torch.manual_seed(1)
    child = ExtensionLMModule(model=cfg.to_dict(), init_from=str(path), text_weight=0.3)
    assert all(torch.equal(a, b) for a, b in zip(parent.model.state_dict().values(), child.model.state_dict().values()))
    assert child.text_weight == 0.3
    torch.manual_seed(1)
    fresh = ExtensionLMModule(model=cfg.to_dict())
    assert not all(torch.equal(a, b) for a, b in zip(parent.model.state_dict().values(), fresh.model.state_dict().values()))
