"""CompileLayers: each block compiled in place, after FP8Training, training the same weights as eager."""

import lightning as L
import pytest
import torch

from nvrepro.core.data import SyntheticDataModule
from nvrepro.core.lm.config import ModelConfig
from nvrepro.core.tooling.compiling import compile_available
from nvrepro.core.tooling.validation import ConfigError
from nvrepro.core.training.compile import CompileLayers
from nvrepro.core.training.module import CausalLMModule
from nvrepro.core.training.precision import FP8Training

TINY = ModelConfig(pattern="M*-", d_model=32, vocab_size=64, max_seq_len=64,
                   mamba=dict(n_heads=4, head_dim=8, d_state=8, n_groups=2, chunk_size=8),
                   attention=dict(n_heads=4, n_kv_heads=2, head_dim=8), ffn=dict(hidden=64))
FP8 = dict(backend="torchao", exclude_first_n=0, exclude_last_n=0)


def fit(tmp_path, callbacks):
    L.seed_everything(0)
    module = CausalLMModule(model=TINY)
    data = SyntheticDataModule(task="mqar", vocab_size=64, seq_len=32, num_train=16, num_val=4,
                               batch_size=8, num_kv_pairs=4)
    L.Trainer(accelerator="cpu", max_steps=2, limit_val_batches=0, logger=False, enable_checkpointing=False,
              callbacks=callbacks, enable_progress_bar=False, enable_model_summary=False,
              default_root_dir=tmp_path).fit(module, datamodule=data)
    return module


@pytest.mark.skipif(not compile_available()[0], reason="torch.compile cannot run here")
def test_compiled_fp8_layers_train_the_same_weights_as_eager(tmp_path):
    """Reference: the same run without CompileLayers (torchao FP8 eager)."""
    compile_layers = CompileLayers()
    compiled = fit(tmp_path, [FP8Training(FP8), compile_layers])
    eager = fit(tmp_path, [FP8Training(FP8)])
    assert compile_layers.compiled == 3
    assert all(block._compiled_call_impl is not None for block in compiled.model.layers)
    want = eager.model.state_dict()
    assert list(compiled.model.state_dict()) == list(want)  # checkpoints keep their keys
    for name, value in compiled.model.state_dict().items():
        torch.testing.assert_close(value, want[name], rtol=1e-4, atol=1e-5, msg=name)


def test_compiling_before_the_fp8_conversion_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="CompileLayers must come after FP8Training"):
        fit(tmp_path, [CompileLayers(), FP8Training(FP8)])
