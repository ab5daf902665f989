"""Long-context packing, the cross-document attention mask, and length upsampling."""

import numpy as np
import pytest
import torch

from nvrepro.core.lm.config import ConfigError, ModelConfig
from nvrepro.ultralong.packing import (
    LongContextDataModule,
    length_multipliers,
    pack_with_separator,
    sample_documents,
)
from nvrepro.core.lm.model import build_model

SEP = 99


def random_docs(lengths, seed=0, vocab=50):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, vocab, size=n).tolist() for n in lengths]


def test_packed_blocks_reproduce_the_documents_with_separators():
    docs = random_docs([7, 30, 3, 12, 25, 9])
    packed = pack_with_separator(docs, seq_len=15, sep_id=SEP)
    blocks = np.concatenate([packed["input_ids"], packed["labels"][:, -1:]], axis=1)  # (N, 16)
    assert np.array_equal(packed["labels"][:, :-1], packed["input_ids"][:, 1:])
    stream = blocks.reshape(-1).tolist()
    expected = [t for d in docs for t in d + [SEP]]
    assert stream == expected[: len(stream)] and len(expected) - len(stream) < 16
    # Split the stream at the separators: the documents come back in order.
    pieces, cur = [], []
    for t in stream:
        if t == SEP:
            pieces.append(cur)
            cur = []
        else:
            cur.append(t)
    assert pieces == docs[: len(pieces)]
    # Within a block, doc_ids start at 0 and step by one right after each separator.
    for ids, doc in zip(packed["input_ids"], packed["doc_ids"]):
        assert doc[0] == 0
        steps = np.flatnonzero(np.diff(doc))
        assert np.all(np.diff(doc) >= 0) and np.all(ids[steps] == SEP)


def test_no_separator_concatenates():
    docs = random_docs([5, 6, 7, 8])
    packed = pack_with_separator(docs, seq_len=9, sep_id=None)
    assert packed["input_ids"].shape == (2, 9)  # 26 tokens -> two blocks of 10
    assert packed["input_ids"][0].tolist() == (docs[0] + docs[1])[:9]
    assert packed["doc_ids"][0].tolist() == [0] * 5 + [1] * 4


def tiny_lm(pattern, **attention):
    torch.manual_seed(0)
    cfg = ModelConfig(pattern=pattern, d_model=32, vocab_size=100, max_seq_len=128,
                      attention=dict(n_heads=4, n_kv_heads=2, head_dim=8, rope=True, **attention),
                      mamba=dict(n_heads=4, head_dim=8, d_state=8, chunk_size=8))
    return build_model(cfg).double().eval()


@pytest.mark.parametrize("attention", [{}, dict(rope_scaling="yarn", rope_factor=4.0, rope_original_max_len=16)])
def test_doc_masked_attention_equals_running_each_document_alone(attention):
    model = tiny_lm("*-*-", **attention)
    docs = random_docs([9, 17, 4, 13])
    packed = pack_with_separator(docs, seq_len=44, sep_id=SEP)  # 47 tokens: one block, all 4 docs
    ids = torch.from_numpy(packed["input_ids"])
    doc_ids = torch.from_numpy(packed["doc_ids"])
    with torch.no_grad():
        masked = model(ids, doc_ids=doc_ids)[0]
        unmasked = model(ids)[0]
        for d in range(int(doc_ids.max()) + 1):
            where = (doc_ids[0] == d).nonzero()[:, 0]
            alone = model(ids[:, where])[0]  # the document (and its separator) from position 0
            torch.testing.assert_close(masked[where], alone, rtol=1e-9, atol=1e-9)
            if d > 0:  # without the mask, later documents see earlier ones
                assert (unmasked[where] - alone).abs().max() > 1e-4


def test_mamba_layers_are_not_masked_by_doc_ids():
    model = tiny_lm("M*-")
    docs = random_docs([6, 10])
    packed = pack_with_separator(docs, seq_len=17, sep_id=SEP)
    ids, doc_ids = torch.from_numpy(packed["input_ids"]), torch.from_numpy(packed["doc_ids"])
    with torch.no_grad():
        masked = model(ids, doc_ids=doc_ids)[0]
        where = (doc_ids[0] == 1).nonzero()[:, 0]
        alone = model(ids[:, where])[0]
    assert (masked[where] - alone).abs().max() > 1e-6  # the SSM state leaks across the boundary


def test_doc_ids_are_rejected_with_a_cache():
    model = tiny_lm("*-")
    cache = model.allocate_cache(1, 16)
    with pytest.raises(ValueError, match="doc_ids"):
        model(torch.zeros(1, 4, dtype=torch.long), cache, doc_ids=torch.zeros(1, 4, dtype=torch.long))


def test_length_multipliers_follow_the_rule():
    m = length_multipliers([1, 99, 100, 500, 999, 1000, 5000], short_len=100, long_len=1000,
                           short_weight=0.25, long_weight=3.0)
    assert m.tolist() == [0.25, 0.25, 1.0, 1.0, 1.0, 3.0, 3.0]
    with pytest.raises(ConfigError, match="short_len"):
        length_multipliers([1], short_len=10, long_len=5)


def test_sampling_frequencies_and_source_shares():
    # Source "a": one short, one medium, one long document; source "b": two medium ones.
    sources = {"a": random_docs([10, 100, 1000]), "b": random_docs([200, 200], seed=1)}
    total = 1110 + 400
    picks = sample_documents(sources, num_tokens=400 * total, short_len=50, long_len=500,
                             short_weight=0.5, long_weight=4.0, seed=3)
    counts = {k: np.bincount([i for s, i in picks if s == k], minlength=len(v)) for k, v in sources.items()}
    # Within a source: draw probabilities m / sum(m) = (0.5, 1, 4) / 5.5.
    freq = counts["a"] / counts["a"].sum()
    np.testing.assert_allclose(freq, np.array([0.5, 1.0, 4.0]) / 5.5, atol=0.02)
    # Across sources: each keeps its token share of the original corpus.
    tokens = {k: sum(len(sources[k][i]) for s, i in picks if s == k) for k in sources}
    share_a = tokens["a"] / (tokens["a"] + tokens["b"])
    assert share_a == pytest.approx(1110 / total, abs=0.005)
    # Seeded: same seed, same picks and order; another seed differs.
    kwargs = dict(num_tokens=5000, short_len=50, long_len=500)
    assert sample_documents(sources, seed=7, **kwargs) == sample_documents(sources, seed=7, **kwargs)
    assert sample_documents(sources, seed=7, **kwargs) != sample_documents(sources, seed=8, **kwargs)


def test_datamodule_batches(tmp_path):
    paths = []
    for i, n in enumerate([300, 40, 900, 120, 600, 80, 500, 700]):
        p = tmp_path / f"doc{i}.txt"
        p.write_text(("abcdefghij"[i] * n))
        paths.append(str(p))
    dm = LongContextDataModule(corpus="files", paths=paths, seq_len=64, batch_size=4, separator="sep",
                               cross_doc_mask=True, short_len=100, long_len=500, val_fraction=0.25)
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"input_ids", "labels", "doc_ids"} and batch["input_ids"].shape == (4, 64)
    assert torch.equal(batch["labels"][:, :-1], batch["input_ids"][:, 1:])
    # A document id changes exactly after a separator token.
    for ids, doc in zip(batch["input_ids"], batch["doc_ids"]):
        steps = (doc[1:] != doc[:-1]).nonzero()[:, 0]
        assert torch.all(ids[steps] == dm.tokenizer.sep_id)
    plain = LongContextDataModule(corpus="files", paths=paths, seq_len=64, batch_size=4, separator="none",
                                  upsample=False, val_fraction=0.25)
    assert set(next(iter(plain.train_dataloader()))) == {"input_ids", "labels"}
    with pytest.raises(ConfigError, match="separator"):
        LongContextDataModule(separator="newline")
