"""Greedy answers through the caches, short-context loss, context reach, and checkpoint loading."""

import math

import pytest
import torch
import torch.nn.functional as F

from nvrepro.core.lm.config import ModelConfig
from nvrepro.core.lm.model import build_model
from nvrepro.ultralong.evaluate import (block_losses, context_reach, greedy_predictor, loss_by_position,
                                       short_context_loss)
from nvrepro.ultralong.module import ContextExtensionModule
from nvrepro.ultralong.packing import pack_with_separator
from nvrepro.ultralong.tasks import make_examples


def tiny(max_seq_len=1024, **attention):
    torch.manual_seed(0)
    cfg = ModelConfig(pattern="*-*-", d_model=32, vocab_size=260, max_seq_len=max_seq_len,
                      attention=dict(n_heads=4, n_kv_heads=2, head_dim=8, rope=True, **attention),
                      ffn=dict(hidden=64, activation="swiglu"))
    return build_model(cfg).eval()


def test_greedy_predictor_is_the_argmax_loop_without_a_cache():
    model = tiny()
    e = make_examples("passkey", 300, 1, seed=0)[0]
    got = greedy_predictor(model)(e.prompt_ids, 5)
    ids = torch.tensor([e.prompt_ids])
    with torch.no_grad():
        for _ in range(5):  # recompute the whole sequence each step: no cache involved
            ids = torch.cat([ids, model(ids)[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert got == ids[0, len(e.prompt_ids):].tolist()


def test_short_context_loss_of_a_uniform_model_is_log_vocab():
    model = tiny()
    torch.nn.init.zeros_(model.lm_head.weight)  # logits 0 everywhere: uniform over 260 tokens
    docs = [list(range(50, 120))] * 10
    out = short_context_loss(model, docs, seq_len=64, sep_id=257, max_blocks=5)
    assert math.isclose(out["loss"], math.log(260), rel_tol=1e-6)
    assert len(out["per_block"]) == 5  # 10 x 71 tokens make 11 blocks of 65; the first 5 are scored
    assert all(math.isclose(x, math.log(260), rel_tol=1e-6) for x in out["per_block"])


def test_block_losses_are_the_per_row_cross_entropy():
    """Per-block, per-position losses against F.cross_entropy on each packed block, computed here."""
    model = tiny()
    docs = [list(range(40 + k, 100 + k)) for k in range(6)]
    packed = pack_with_separator(docs, 48, 257)
    with torch.no_grad():
        ref = torch.stack([F.cross_entropy(model(torch.from_numpy(x)[None])[0], torch.from_numpy(y), reduction="none")
                           for x, y in zip(packed["input_ids"][:3], packed["labels"][:3])])
    got = block_losses(model, docs, 48, 257, max_blocks=3)
    assert got.shape == (3, 48)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)
    by_pos = loss_by_position(model, docs, 48, 257, num_bins=4, max_blocks=3)
    assert by_pos["edges"] == [0, 12, 24, 36, 48]
    per_block = [[ref[b, 12 * k:12 * (k + 1)].mean().item() for k in range(4)] for b in range(3)]
    for got_row, ref_row in zip(by_pos["loss_per_block"], per_block, strict=True):
        assert got_row == pytest.approx(ref_row, rel=1e-5)
    assert by_pos["loss"] == pytest.approx([sum(col) / 3 for col in zip(*per_block)], rel=1e-5)


def test_context_reach_rows():
    model = tiny(max_seq_len=2048, rope_scaling="yarn", rope_factor=4.0, rope_original_max_len=512)
    rows = context_reach(model, [1024, 512], time_budget_s=60, threads=1, progress=False)
    assert [r["length"] for r in rows] == [512, 1024]
    assert rows[1]["kv_cache_bytes"] == 2 * rows[0]["kv_cache_bytes"] == 2 * 2 * 2 * 512 * 2 * 8 * 4
    assert all(r["seconds"] > 0 and isinstance(r["correct"], bool) for r in rows)


def test_extension_module_loads_the_short_context_weights(tmp_path):
    short = tiny(max_seq_len=128)
    path = tmp_path / "short.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in short.state_dict().items()}}, path)
    long_cfg = dict(short.cfg.to_dict(), max_seq_len=1024)
    long_cfg["attention"] = dict(long_cfg["attention"], rope_scaling="yarn", rope_factor=8.0,
                                 rope_original_max_len=128)
    module = ContextExtensionModule(model=long_cfg, init_from=str(path))
    for (k, a), b in zip(short.state_dict().items(), module.model.state_dict().values()):
        assert torch.equal(a, b), k
    assert "init_from" not in module.hparams
    x = torch.randint(0, 256, (1, 100))
    with torch.no_grad():  # same weights, different positions: the outputs differ
        assert not torch.allclose(short(x), module.model(x))
