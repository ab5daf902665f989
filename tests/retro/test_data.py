"""RETRO windows and batches against references written out: a naive window loop, the raw document
bytes, and a fresh search of the database (with same-document exclusion for training chunks)."""

import numpy as np
import pytest
import yaml

pytest.importorskip("faiss")
pytest.importorskip("sentence_transformers")

from nvrepro.core.data.corpus import split_indices  # noqa: E402
from nvrepro.core.tooling.validation import ConfigError  # noqa: E402
from nvrepro.retro.data import (RetroDataModule, database_windows, heldout_chunks, heldout_windows,  # noqa: E402
                                windows)

from .conftest import DOCS, write_db_yaml  # noqa: E402

PAD = 258  # the byte tokenizer's pad id


def naive_windows(ids, n, pad):
    inputs, labels, j = [], [], 0
    while j * n + 1 < len(ids):
        inputs.append([ids[t] if t < len(ids) else pad for t in range(j * n, j * n + n)])
        labels.append([ids[t + 1] if t + 1 < len(ids) else -100 for t in range(j * n, j * n + n)])
        j += 1
    return inputs, labels


@pytest.mark.parametrize("length", [0, 1, 2, 8, 9, 16, 17, 30, 33])
def test_windows_match_a_naive_loop(length):
    ids = list(np.random.default_rng(length).integers(0, 256, length))
    inputs, labels = windows(ids, m=4, seq_chunks=2, pad_id=PAD)
    ref_in, ref_lab = naive_windows(ids, 8, PAD)
    assert inputs.tolist() == ref_in and labels.tolist() == ref_lab
    assert inputs.shape[1:] == (8,) and labels.dtype == np.int64
    assert labels[labels != -100].tolist() == ids[1:]  # every token but the first is a label exactly once


def test_windows_errors_name_the_argument():
    with pytest.raises(ConfigError, match="seq_chunks"):
        windows([1, 2, 3], 4, 0, PAD)
    with pytest.raises(ConfigError, match="m:"):
        windows([1, 2, 3], 0, 2, PAD)


@pytest.fixture(scope="module")
def dm(tiny_db_yaml):
    module = RetroDataModule(tiny_db_yaml, seq_chunks=2, batch_size=3, seed=1)
    module.setup()
    return module


def test_training_windows_are_database_chunks_with_their_neighbours(dm):
    db, m, s = dm.db, 8, 2
    in_db, heldout = split_indices(len(DOCS), 0.25, 0)
    docs = database_windows(db, s)
    assert [d.document for d in docs] == in_db
    texts, query_docs, found = [], [], []
    for d in docs:
        raw = list(DOCS[d.document].encode())
        assert d.labels[d.labels != -100].tolist() == raw[1:]
        for j in range(len(d.input_ids)):
            for u in range(s):
                c = j * s + u
                chunk = raw[c * m:(c + 1) * m]
                assert d.input_ids[j, u * m:(u + 1) * m].tolist() == chunk + [PAD] * (m - len(chunk))
                if not chunk:  # past the document: no neighbours
                    assert (d.rows[j, u] == -1).all()
                    continue
                texts.append(bytes(chunk).decode())
                query_docs.append(d.document)
                found.append(d.rows[j, u])
    fresh, _ = db.retrieve(texts, 2, query_doc_ids=query_docs)  # a fresh search, own document excluded
    assert np.array_equal(np.stack(found), fresh)
    assert (db.chunks.doc_ids[fresh] != np.array(query_docs)[:, None]).all()


def test_batches_carry_neighbour_tokens_and_the_baseline_sees_the_same_tokens(dm, tiny_db_yaml):
    gpt = RetroDataModule(tiny_db_yaml, seq_chunks=2, batch_size=3, seed=1, retrieval=False)
    batches, plain = list(dm.train_dataloader()), list(gpt.train_dataloader())
    assert len(batches) == len(plain) > 1
    m = 8
    in_db, _ = split_indices(len(DOCS), 0.25, 0)
    # every chunk-aligned (chunk, continuation) pair of the database documents, read from the raw text
    pairs = set()
    for d in in_db:
        raw = list(DOCS[d].encode())
        for c in range(0, len(raw), m):
            pairs.add(tuple(raw[c:c + 2 * m] + [PAD] * (2 * m - len(raw[c:c + 2 * m]))))
    for b, p in zip(batches, plain):
        assert set(b) == {"input_ids", "labels", "neighbours"} and set(p) == {"input_ids", "labels"}
        assert b["input_ids"].equal(p["input_ids"]) and b["labels"].equal(p["labels"])
        bsz = len(b["input_ids"])
        assert b["input_ids"].shape == (bsz, 16) and b["neighbours"].shape == (bsz, 2, 2, 16)
        for nb in b["neighbours"].reshape(-1, 16).tolist():
            assert nb == [PAD] * 16 or tuple(nb) in pairs
        # all-pad neighbours exactly for the all-pad input chunks
        empty_chunk = (b["input_ids"].reshape(bsz, 2, m) == PAD).all(-1)
        assert ((b["neighbours"] == PAD).all(-1).all(-1) == empty_chunk).all()
    # a different seed shuffles differently
    other = next(iter(RetroDataModule(tiny_db_yaml, seq_chunks=2, batch_size=3, seed=2).train_dataloader()))
    assert not other["input_ids"].equal(batches[0]["input_ids"])


def test_heldout_windows_retrieve_by_chunk_text_once(dm, monkeypatch):
    db, m = dm.db, 8
    _, heldout = split_indices(len(DOCS), 0.25, 0)
    assert db.heldout_documents == heldout and not set(heldout) & set(db.chunks.doc_ids.tolist())
    docs = heldout_windows(db, 2)
    assert [d.document for d in docs] == heldout
    texts, found = [], []
    for d in docs:
        raw = list(DOCS[d.document].encode())
        assert d.labels[d.labels != -100].tolist() == raw[1:]
        n_chunks = -(-len(raw) // m)
        texts += [bytes(raw[c * m:(c + 1) * m]).decode() for c in range(n_chunks)]
        found.append(d.rows.reshape(-1, 2)[:n_chunks])
    fresh, _ = db.retrieve(texts, 2)  # held-out documents are not in the database: nothing excluded
    assert np.array_equal(np.concatenate(found), fresh)
    # cached: a second call searches nothing
    monkeypatch.setattr(type(db), "retrieve", lambda *a, **k: pytest.fail("searched again"))
    assert [w.rows.tolist() for w in heldout_windows(db, 2)] == [d.rows.tolist() for d in docs]
    val = next(iter(dm.val_dataloader()))
    assert val["neighbours"].shape[1:] == (2, 2, 16)
    # the baseline's validation: the same tokens, nothing searched
    gpt = RetroDataModule(dm.hparams.database, seq_chunks=2, batch_size=3, retrieval=False)
    plain = next(iter(gpt.val_dataloader()))
    assert set(plain) == {"input_ids", "labels"} and plain["input_ids"].equal(val["input_ids"])


def test_errors_name_the_argument(tiny_db_yaml, tmp_path):
    with pytest.raises(ConfigError, match="seq_chunks"):
        RetroDataModule(tiny_db_yaml, seq_chunks=0)
    with pytest.raises(ConfigError, match="chunk_len: expected 64"):
        RetroDataModule(tiny_db_yaml, chunk_len=64)
    with pytest.raises(ConfigError, match="k:"):
        RetroDataModule(tiny_db_yaml, k=3)
    with pytest.raises(ConfigError, match="report.json"):
        RetroDataModule(write_db_yaml(tmp_path / "none"), build=False).setup("fit")
    # a config that no longer matches the database in its out_dir
    section = yaml.safe_load(open(tiny_db_yaml))["database"]
    (tmp_path / "stale.yaml").write_text(yaml.safe_dump({"database": {**section, "k": 1}}))
    stale = str(tmp_path / "stale.yaml")
    with pytest.raises(ConfigError, match="database.k: .* built with k=2"):
        RetroDataModule(stale).setup("fit")
    no_heldout = RetroDataModule(write_db_yaml(tmp_path / "all", DOCS[:3], heldout_fraction=0.0), seq_chunks=2)
    assert len(no_heldout.train_dataloader()) > 0
    with pytest.raises(ConfigError, match="heldout_fraction"):
        no_heldout.val_dataloader()
    # a corpus edited after the database was built
    changed = RetroDataModule(write_db_yaml(tmp_path / "changed", DOCS, chunk_len=8), seq_chunks=2)
    changed.setup("fit")
    (tmp_path / "changed" / "doc0.txt").write_text("Something else entirely.")
    with pytest.raises(ConfigError, match="database.corpus: .* do not reproduce"):
        changed.val_dataloader()
