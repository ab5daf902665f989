"""LM weights on disk: the three layouts read back to the same tensors; init_from is strict."""

from __future__ import annotations

import pytest
import torch

from nvrepro.core.lm.config import ConfigError, ModelConfig
from nvrepro.core.lm.model import build_model
from nvrepro.core.training.weights import init_from, load_lm, read_lm_file, save_lm

CFG = dict(pattern="M*-", d_model=16, vocab_size=20, max_seq_len=32,
           mamba=dict(n_heads=2, head_dim=8, d_state=4, chunk_size=8),
           attention=dict(n_heads=2, n_kv_heads=1, head_dim=8), ffn=dict(hidden=32))


def model(seed: int = 0, **overrides):
    torch.manual_seed(seed)
    return build_model(ModelConfig(**{**CFG, **overrides}))


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_the_three_layouts_read_back(tmp_path):
    m = model()
    save_lm(m, tmp_path / "lm.pt")
    torch.save({"hyper_parameters": {"model": m.cfg.to_dict()},  # what Lightning writes for CausalLMModule
                "state_dict": {f"model.{k}": v for k, v in m.state_dict().items()}}, tmp_path / "run.ckpt")
    torch.save(m.state_dict(), tmp_path / "bare.pt")
    for name in ("lm.pt", "run.ckpt"):
        assert same_weights(load_lm(tmp_path / name), m) and load_lm(tmp_path / name).cfg == m.cfg
    cfg, state = read_lm_file(tmp_path / "bare.pt")
    assert cfg is None and state.keys() == m.state_dict().keys()
    assert same_weights(init_from(model(seed=1), tmp_path / "bare.pt"), m)
    with pytest.raises(ValueError, match="bare state dict with no model config"):
        load_lm(tmp_path / "bare.pt")


def test_init_from_is_strict_and_compares_configs_when_asked(tmp_path):
    save_lm(model(), tmp_path / "lm.pt")
    # another RoPE-free setting that keeps every shape: loads unless the configs must match
    other = model(seed=1, max_seq_len=64)
    assert same_weights(init_from(other, tmp_path / "lm.pt"), model())
    with pytest.raises(ConfigError, match=r"student_init .* max_seq_len: 64 vs 32"):
        init_from(model(seed=1, max_seq_len=64), tmp_path / "lm.pt", same_config=True, field="student_init")
    with pytest.raises(RuntimeError, match="size mismatch"):
        init_from(model(ffn=dict(hidden=48)), tmp_path / "lm.pt")


def test_missing_or_foreign_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint: no such file"):
        read_lm_file(tmp_path / "nope.pt")
    torch.save({"epoch": 3}, tmp_path / "odd.pt")
    with pytest.raises(ValueError, match="neither a save_lm file"):
        read_lm_file(tmp_path / "odd.pt")
