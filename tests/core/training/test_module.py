"""The causal-LM LightningModule: it learns, its schedule is right, its checkpoints are safe."""

import math

import lightning as L
import pytest
import torch

from nvrepro.core.lm.config import ConfigError
from nvrepro.core.data import SyntheticDataModule, TextDataModule
from nvrepro.core.training.module import CausalLMModule, causal_lm_loss, lr_lambda

TINY = dict(pattern="M*-", d_model=32, vocab_size=64, max_seq_len=64,
            mamba=dict(n_heads=4, head_dim=8, d_state=8, chunk_size=16),
            attention=dict(n_heads=2, n_kv_heads=1, head_dim=16), ffn=dict(hidden=64))


def trainer(tmp_path, **kw):
    return L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                     enable_model_summary=False, default_root_dir=tmp_path, **kw)


def test_learns_byte_level_text(tmp_path):
    """From uniform over 260 bytes (ln 260 = 5.56 nats) to below English unigram entropy."""
    L.seed_everything(0)
    module = CausalLMModule(model={**TINY, "vocab_size": 260}, optim=dict(lr=1e-2, warmup_steps=5))
    data = TextDataModule(max_documents=60, seq_len=64, batch_size=16, seed=0)
    before = trainer(tmp_path).validate(module, datamodule=data, verbose=False)[0]["val/loss"]
    trainer(tmp_path, max_steps=40, limit_val_batches=0).fit(module, datamodule=data)
    after = trainer(tmp_path).validate(module, datamodule=data, verbose=False)[0]["val/loss"]
    assert before > 5.0 and after < 3.2, (before, after)


def test_loss_is_cross_entropy_over_supervised_positions():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 5)
    labels = torch.tensor([[1, -100, 4], [-100, -100, 0]])
    expected = -(torch.log_softmax(logits[0, 0], -1)[1] + torch.log_softmax(logits[0, 2], -1)[4]
                 + torch.log_softmax(logits[1, 2], -1)[0]) / 3
    assert torch.isclose(causal_lm_loss(logits, labels), expected)


def test_warmup_then_cosine_schedule():
    assert lr_lambda(0, 10, 110, 0.1) == pytest.approx(0.1)
    assert lr_lambda(9, 10, 110, 0.1) == pytest.approx(1.0)
    assert lr_lambda(60, 10, 110, 0.1) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 2)))
    assert lr_lambda(110, 10, 110, 0.1) == pytest.approx(0.1)
    assert lr_lambda(500, 10, 110, 0.1) == pytest.approx(0.1)


def test_checkpoint_loads_with_weights_only(tmp_path):
    L.seed_everything(1)
    module = CausalLMModule(model=TINY)
    data = SyntheticDataModule(task="mqar", vocab_size=64, seq_len=32, num_train=64, num_val=8,
                               batch_size=16, num_kv_pairs=4)
    t = trainer(tmp_path, max_steps=2, limit_val_batches=0)
    t.fit(module, datamodule=data)
    path = tmp_path / "tiny.ckpt"
    t.save_checkpoint(path)
    raw = torch.load(path, weights_only=True)  # raises if anything but tensors and plain data
    assert raw["hyper_parameters"]["model"]["pattern"] == "M*-"
    restored = CausalLMModule.load_from_checkpoint(path, weights_only=True)
    ids = torch.randint(0, 64, (2, 16))
    torch.testing.assert_close(restored(ids), module(ids))


def test_vocab_mismatch_is_named(tmp_path):
    module = CausalLMModule(model=TINY)  # 64 tokens; the byte tokenizer needs 260
    data = TextDataModule(max_documents=5, seq_len=32, batch_size=2)
    with pytest.raises(ConfigError, match="model.vocab_size"):
        trainer(tmp_path, max_steps=1).fit(module, datamodule=data)


def test_bad_optimizer_field_is_named():
    with pytest.raises(ConfigError, match="optim.lr"):
        CausalLMModule(model=TINY, optim=dict(lr=0))
    with pytest.raises(ConfigError, match="optim.wamrup: unknown config key"):
        CausalLMModule(model=TINY, optim=dict(wamrup=3))
