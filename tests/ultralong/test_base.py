"""The text-and-retrieval toy base (issue 19): interleaved batches, the per-source loss, the text
loss per byte and the unigram baseline, and the smoke pipeline.

References are independent of the code under test: the per-source loss against cross-entropies of
row slices, the unigram against its closed form, the text loss against ``ln V`` for a model whose
logits are all zero, nats per byte against nats per token for the byte tokenizer."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nvrepro.core.data.tokenizers import ByteTokenizer
from nvrepro.core.lm.config import AttentionConfig, FFNConfig, ModelConfig
from nvrepro.core.lm.model import PatternLM
from nvrepro.core.tooling.validation import ConfigError
from nvrepro.core.training.arms import train_arm
from nvrepro.ultralong import base
from nvrepro.ultralong.data import InterleavedBatches, validate_curriculum
from nvrepro.ultralong.mixture import MixtureRows
from nvrepro.ultralong.module import source_weighted_loss

STAGES = [dict(steps=3, seq_len=48, batch_size=5, retrieval_share=0.6),
          dict(steps=2, seq_len=96, batch_size=4, retrieval_share=0.5)]


def _batches(seed: int = 0) -> InterleavedBatches:
    rng = np.random.default_rng(0)
    text = [rng.integers(0, 250, size=int(n)).tolist() for n in rng.integers(20, 60, size=40)]

    def rows(seq_len):
        return MixtureRows(10**6, seq_len, text, 24, seq_len, ["copy"], 257, 258, seed=seed + seq_len,
                           supervise="answer")

    return InterleavedBatches(STAGES, text, rows, 257, seed=seed)


def test_batches_follow_the_curriculum_with_exact_shares():
    ds = _batches()
    assert len(ds) == 5
    for step, (bsz, seq, n_text) in enumerate([(5, 48, 2)] * 3 + [(4, 96, 2)] * 2):
        b = ds[step]
        assert b["input_ids"].shape == b["labels"].shape == (bsz, seq)
        assert b["is_text"].tolist() == [True] * n_text + [False] * (bsz - n_text)
        # text rows are next-token text (every target set); mixture rows supervise answers only
        assert (b["labels"][:n_text] != -100).all()
        mixture = b["labels"][n_text:]
        assert ((mixture != -100).sum(1) > 0).all() and (mixture == -100).any()
    with pytest.raises(IndexError):
        ds[5]


def test_batches_are_seeded():
    a, b, c = _batches(0), _batches(0), _batches(1)
    for step in range(5):
        assert torch.equal(a[step]["input_ids"], b[step]["input_ids"])
    assert any(not torch.equal(a[s]["input_ids"], c[s]["input_ids"]) for s in range(5))
    assert not torch.equal(a[0]["input_ids"][2:], a[1]["input_ids"][2:])  # steps take different mixture rows


@pytest.mark.parametrize("bad, field", [
    ([], "curriculum"),
    ([dict(steps=1, seq_len=32, batch_size=2)], "curriculum[0]"),
    ([dict(steps=0, seq_len=32, batch_size=2, retrieval_share=0.5)], "curriculum[0].steps"),
    ([dict(steps=1, seq_len=32, batch_size=2, retrieval_share=1.5)], "curriculum[0].retrieval_share"),
    ([dict(steps=1, seq_len=64, batch_size=2, retrieval_share=0.5)], "curriculum[0].seq_len"),
    ([dict(steps=1, seq_len=32, batch_size=2, retrieval_share=0.5),
      dict(steps=1, seq_len=16, batch_size=2, retrieval_share=0.5)], "curriculum[1].seq_len"),
])
def test_curriculum_errors_name_the_field(bad, field):
    with pytest.raises(ConfigError, match=field.replace("[", r"\[").replace("]", r"\]")):
        validate_curriculum(bad, 32)


def test_source_weighted_loss_weighs_each_source_mean():
    torch.manual_seed(0)
    logits = torch.randn(4, 6, 11)
    labels = torch.randint(0, 11, (4, 6))
    labels[2:, :5] = -100  # retrieval rows: one target each
    is_text = torch.tensor([True, True, False, False])
    loss, text, retrieval = source_weighted_loss(logits, labels, is_text, 0.3)
    ref_text = F.cross_entropy(logits[:2].reshape(-1, 11), labels[:2].reshape(-1))
    ref_retrieval = F.cross_entropy(logits[2:, 5], labels[2:, 5])
    assert text.item() == pytest.approx(ref_text.item(), rel=1e-6)
    assert retrieval.item() == pytest.approx(ref_retrieval.item(), rel=1e-6)
    assert loss.item() == pytest.approx(0.3 * ref_text.item() + 0.7 * ref_retrieval.item(), rel=1e-6)
    only_text, _, none = source_weighted_loss(logits[:2], labels[:2], is_text[:2], 0.3)
    assert none is None and only_text.item() == pytest.approx(ref_text.item(), rel=1e-6)
    with pytest.raises(ValueError, match="labels"):
        source_weighted_loss(logits, torch.full_like(labels, -100), is_text, 0.3)


def test_unigram_baseline_closed_form():
    out = base.unigram_baseline([[0, 0], [1]], torch.tensor([[0, 1, 2, -100]]), 3, [6])
    p = np.array([2.5, 1.5, 0.5]) / 4.5  # (c + 1/2) / (N + V/2)
    nats = -(math.log(p[0]) + math.log(p[1]) + math.log(p[2]))
    assert out["nats_per_token"] == pytest.approx(nats / 3)
    assert out["nats_per_byte"] == pytest.approx(nats / 6) and out["per_block_nats_per_byte"] == [pytest.approx(nats / 6)]
    assert out["uniform_nats_per_token"] == pytest.approx(math.log(3))


def test_text_loss_of_a_uniform_model_is_ln_v_and_bytes_match_the_byte_tokenizer():
    model = PatternLM(ModelConfig(pattern="*-", d_model=16, vocab_size=260, max_seq_len=32,
                                  attention=AttentionConfig(n_heads=2, n_kv_heads=2, head_dim=8), ffn=FFNConfig(hidden=32)))
    with torch.no_grad():
        model.lm_head.weight.zero_()  # every logit 0: the uniform distribution over 260 ids
    tok = ByteTokenizer()
    x, y = base.held_out_blocks([tok.encode("In the beginning God created the heaven and the earth.")] * 3,
                                31, tok.eos_id, 4)
    assert (y == tok.eos_id).sum() == 0 and (y == -100).sum() > 0
    nbytes = base.target_bytes(tok, y)
    assert nbytes == (y != -100).sum(1).tolist()  # ASCII: one byte per byte-level id
    assert base.target_bytes(tok, torch.tensor([list("é".encode())])) == [2]  # split across two ids, counted once
    out = base.text_loss(model, x, y, nbytes)
    assert out["nats_per_token"] == pytest.approx(math.log(260), rel=1e-5)
    assert out["nats_per_byte"] == pytest.approx(out["nats_per_token"], rel=1e-9)
    assert out["per_block_nats_per_byte"] == pytest.approx([math.log(260)] * len(x), rel=1e-5)


def test_smoke_pipeline_records_the_curve_and_reports():
    p = base.plan("smoke")
    key, model, curve = train_arm(base.BASE_YAML, seed=0, cache_dir=base.CACHE, steps=4,
                                  data_overrides={"curriculum": p["curriculum"], "max_documents": p["max_documents"]},
                                  module_overrides={"record_every": 2}, code=base.TRAINING_CODE, record="curve")
    assert [row["step"] for row in curve] == [2.0, 4.0]
    assert all(math.isfinite(row["text_loss"]) and math.isfinite(row["retrieval_loss"]) for row in curve)
    # the LR the window's last step used: linear warmup (step + 1) / 50 of the YAML's peak 2e-3
    assert [row["lr"] for row in curve] == pytest.approx([2e-3 * 2 / 50, 2e-3 * 4 / 50])
    report = base.base_report(model, "smoke")
    assert report["L"] == 256 and set(report["retrieval"]) == {"passkey", "multikey"}
    assert report["unigram"]["nats_per_byte"] < report["unigram"]["uniform_nats_per_token"]
    assert 0 <= report["retrieval"]["passkey"]["low"] <= report["retrieval"]["passkey"]["high"] <= 1
    with pytest.raises(ConfigError, match="profile"):
        base.plan("huge")


def _report(model_blocks, unigram_blocks, passkey, ruler):
    probe = lambda k: {"correct": k, "n": 50}  # noqa: E731
    retrieval = {"passkey": probe(passkey)} | {t: ({"error": "does not fit"} if k is None else probe(k))
                                               for t, k in ruler.items()}
    return {"text": {"per_block_nats_per_byte": model_blocks}, "unigram": {"per_block_nats_per_byte": unigram_blocks},
            "retrieval": retrieval}


UNIGRAM = [1.9, 1.8, 1.85, 1.95, 1.9, 1.75]


@pytest.mark.parametrize("model_scale, passkey, ruler, held, deciding", [
    (0.55, 50, {"multikey": 45, "common_words": 0}, True, None),
    (0.95, 50, {"multikey": 45}, False, "models text"),  # 0.95 x unigram is not 0.8 x
    (0.55, 40, {"multikey": 45}, False, "passkey at L"),  # 0.8 [0.67, 0.89] lies below 0.9
    (0.55, 47, {"multikey": 45}, None, "passkey at L"),  # 0.94 [0.84, 0.98] straddles 0.9
    (0.55, 50, {"multikey": 11, "variable_tracking": 2}, False, "a RULER-style task at L"),
    (0.55, 50, {"multikey": 25, "variable_tracking": None}, None, "a RULER-style task at L"),  # 0.5 straddles
])
def test_base_claim_parts(model_scale, passkey, ruler, held, deciding):
    seeds = [_report([model_scale * u + 0.01 * s for u in UNIGRAM], UNIGRAM, passkey, ruler) for s in range(2)]
    verdict = base.BASE.judge({"reports": seeds})
    assert verdict.held is held
    if deciding is not None:
        assert verdict.reason.startswith({False: "did not hold", None: "undecided"}[held])
        assert deciding in verdict.reason
    verdict.to_dict()  # plain data for the sidecar


def test_base_figure_draws_every_seed_and_task():
    import matplotlib.pyplot as plt

    from nvrepro.ultralong.figures import plot_base

    reports = [_report([0.55 * u for u in UNIGRAM], UNIGRAM, 50, {"multikey": 30, "common_words": None})
               | {"L": 256, "bytes_per_token": 3.0} for _ in range(2)]
    for r in reports:
        r["text"]["nats_per_byte"], r["unigram"]["nats_per_byte"] = 1.0, 1.85
        r["unigram"]["uniform_nats_per_token"] = math.log(1024)
    curves = [[{"step": 50.0, "text_loss": 5.0, "retrieval_loss": 4.0}, {"step": 100.0, "text_loss": 4.0,
                                                                        "retrieval_loss": 2.0}]] * 2
    fig = plot_base({"reports": reports, "curves": curves})
    ax_c, ax_t, ax_r = fig.axes
    assert len(ax_c.lines) == 4  # two sources x two seeds
    assert [round(p.get_height(), 3) for p in ax_t.patches] == [1.0, 1.85, round(math.log(1024) / 3, 3)]
    assert [round(p.get_height(), 2) for p in ax_r.patches] == [1.0, 0.6]  # pooled: 100/100, 60/100
    plt.close(fig)


def test_the_cache_key_covers_every_ultralong_module_that_trains_the_base():
    import ast
    import importlib

    seen, todo = set(), ["nvrepro.ultralong.data", "nvrepro.ultralong.module"]
    while todo:  # ultralong modules imported, directly or not, by the data and training modules
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        tree = ast.parse(open(importlib.import_module(name).__file__).read())
        todo += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
                 and n.module.startswith("nvrepro.ultralong")]
    assert seen <= set(base.TRAINING_CODE)


def test_train_base_trains_in_the_yamls_precision(tmp_path):
    assert base.yaml_precision(base.BASE_YAML) == {"precision": "bf16-mixed"}
    plain = tmp_path / "plain.yaml"
    plain.write_text(base.BASE_YAML.read_text().replace("  precision: bf16-mixed\n", ""))
    assert base.yaml_precision(plain) == {}
    p = base.plan("smoke")
    data = {"curriculum": p["curriculum"], "max_documents": p["max_documents"]}
    _, model, _ = base.train_base("smoke", seed=0, cache=False)
    weights = {}
    for precision in ("bf16-mixed", "32-true"):  # the same run by hand, in each precision
        _, other, _ = train_arm(base.BASE_YAML, seed=0, cache_dir=base.CACHE, steps=4, data_overrides=data,
                                trainer={"precision": precision}, code=base.TRAINING_CODE, record="curve")
        weights[precision] = other.state_dict()
    for name, value in model.state_dict().items():
        assert torch.equal(value, weights["bf16-mixed"][name]), name
    assert any(not torch.equal(v, weights["32-true"][k]) for k, v in model.state_dict().items())
