"""Training data of the UltraLong notebooks 02/03: retrieval-shaped training documents mixed into
text (never the evaluation probes), toy instructions."""

import numpy as np
import pytest
import torch

from nvrepro.core.lm.config import ConfigError
from nvrepro.core.data.synthetic import PASSKEY_FILLER
from nvrepro.core.data.tokenizers import ByteTokenizer
from nvrepro.ultralong import tasks
from nvrepro.ultralong.data import InstructionRows, RetrievalMixDataModule, ShortInstructionDataModule
from nvrepro.ultralong.evaluate import niah_grid, ruler_scores
from nvrepro.ultralong.mixture import (COPY_AGAIN, COPY_HEAD, INTRO, KEYS, NEEDLES, MixtureRows, copy_document,
                                     needle_document)

TOK = ByteTokenizer()
HAY = TOK.encode("In the beginning God created the heavens and the earth. " * 8)
# Fixed pieces of every evaluation probe (nvrepro.ultralong.tasks): none may occur in training rows.
EVAL_PIECES = ("pass key", "special magic number", "VAR ", "Some of them appear more often",
               PASSKEY_FILLER.split(". ")[0], tasks.VT_INTRO[:30], tasks.CWE_INTRO[:30])


def _text(ids) -> str:
    return bytes([t for t in ids if t < 256]).decode("utf-8", errors="replace")


def test_needle_document_by_hand():
    rng = np.random.default_rng(0)
    doc = needle_document(rng, 300, HAY)
    assert doc is not None and len(doc.ids) == 300 and doc.kind == "needle"
    text = _text(doc.ids)
    answer = _text(doc.ids[i] for i in doc.answer)
    assert doc.answer == list(range(300 - len(answer), 300))  # the answer closes the document
    assert text.startswith(INTRO)
    # the question repeats a needle's text up to its value, and that needle holds the answer
    question = text[:-len(answer)].rsplit("\n", 1)[1]
    prefix = question.split("? ", 1)[1] if "? " in question else question.split(". ", 1)[1]
    assert prefix + answer in text[len(INTRO):-len(question) - len(answer)]
    marker = question[-1]  # the question ends with its needle's marker byte, unique in the document
    assert marker in tasks.MARKERS and text.count(marker) == 2
    assert None is needle_document(rng, 40, HAY)  # too short for its needles


def test_copy_document_by_hand():
    doc = copy_document(np.random.default_rng(1), 120)
    head, again = TOK.encode(COPY_HEAD), TOK.encode(COPY_AGAIN)
    n = len(doc.answer)
    assert doc.ids[:len(head)] == head and len(doc.ids) == len(head) + len(again) + 2 * n <= 120
    items = doc.ids[len(head):len(head) + n]
    assert doc.ids[len(head) + n:len(head) + n + len(again)] == again and doc.ids[-n:] == items
    assert doc.answer == list(range(len(doc.ids) - n, len(doc.ids)))
    assert copy_document(np.random.default_rng(1), 20) is None


def test_mixture_rows_are_whole_documents_shifted_and_padded():
    ds = MixtureRows(6, 512, [HAY], min_len=32, max_len=300, sep_id=TOK.eos_id, pad_id=TOK.pad_id, seed=3)
    for i in range(len(ds)):
        x, y = ds[i]["input_ids"], ds[i]["labels"]
        assert x.shape == y.shape == (512,)
        docs = ds.documents(i)
        stream = [t for d in docs for t in d.ids + [TOK.eos_id]]
        assert x.tolist()[:len(stream)] == stream[:512]
        assert all(t == TOK.pad_id for t in x.tolist()[len(stream):])
        assert all(len(d.ids) <= 300 and (d.kind == "copy" or len(d.ids) >= 32) for d in docs)
        real = y != -100  # supervise="all": every document token, shifted by one
        assert torch.equal(y[:len(stream) - 1], torch.tensor(stream[1:]))
        assert not real[len(stream) - 1:].any()


def test_answer_supervision_targets_only_answers_and_copies():
    ds = MixtureRows(4, 512, [HAY], max_len=300, sep_id=TOK.eos_id, seed=1, supervise="answer")
    for i in range(len(ds)):
        y = ds[i]["labels"]
        targets, pos = [], 0
        for d in ds.documents(i):
            targets += [(pos + j - 1, d.ids[j]) for j in d.answer]
            pos += len(d.ids) + 1
        sup = (y != -100).nonzero().flatten().tolist()
        assert sup == [t for t, _ in targets] and y[sup].tolist() == [v for _, v in targets]
    with pytest.raises(ConfigError):
        MixtureRows(1, 512, [HAY], supervise="some")
    with pytest.raises(ConfigError):
        MixtureRows(1, 512, [HAY], kinds=["nope"])
    with pytest.raises(ConfigError):
        MixtureRows(1, 512, [HAY], max_len=600)


def test_mixture_rows_deterministic_and_seeded():
    a, b = MixtureRows(3, 512, [HAY], seed=0), MixtureRows(3, 512, [HAY], seed=0)
    c = MixtureRows(3, 512, [HAY], seed=1)
    assert all(torch.equal(a[i]["input_ids"], b[i]["input_ids"]) for i in range(3))
    assert not all(torch.equal(a[i]["input_ids"], c[i]["input_ids"]) for i in range(3))
    assert TOK.eos_id not in a[0]["input_ids"].tolist()  # no separator asked for


def test_mixture_never_contains_evaluation_probes():
    # templates and keys are disjoint from the evaluation tasks'
    for needle, question in NEEDLES:
        for piece in (tasks.PASSKEY_NEEDLE[:15], tasks.PASSKEY_QUESTION.strip(), tasks.MULTIKEY_NEEDLE[:25], tasks.VT_FIRST[:4]):
            assert piece not in needle and piece not in question
    assert not set(KEYS) & set(tasks.KEY_WORDS)
    # no training row holds a fixed piece of any probe, nor an evaluation needle
    ds = MixtureRows(64, 3072, [HAY], min_len=32, sep_id=TOK.eos_id, seed=0)
    rows = [_text(ds[i]["input_ids"].tolist()) for i in range(len(ds))]
    assert any("secret code" in r or "Again: " in r for r in rows)
    for r in rows:
        assert not any(p in r for p in EVAL_PIECES)
    # every evaluation passkey / multikey answer sentence (the notebooks' grids, seed 1000)
    seen = []
    niah_grid(lambda p, n: seen.append(_text(p)) or [0] * n, [384, 768], [0.0, 0.5, 1.0], 2, seed=1000,
              progress=False)
    ruler_scores(lambda p, n: seen.append(_text(p)) or [0] * n, [384], ["multikey"], 2, seed=1000, progress=False)
    assert len(seen) == 14
    joined = "".join(rows)
    for prompt in seen:
        assert prompt[-60:] not in joined and prompt[:80] not in joined


def test_mix_fraction_counts_rows():
    kw = dict(seq_len=512, batch_size=2, upsample=False, max_documents=40, seed=0)
    text = RetrievalMixDataModule(retrieval_fraction=0.0, **kw)
    mix = RetrievalMixDataModule(retrieval_fraction=0.25, retrieval_max_len=400, **kw)
    only = RetrievalMixDataModule(retrieval_fraction=1.0, retrieval_kinds=["copy"], **kw)
    text.setup(), mix.setup(), only.setup()
    n = len(text.train_dataset)
    assert len(mix.train_dataset) == n + round(n * 0.25 / 0.75)
    assert isinstance(only.train_dataset, MixtureRows) and len(only.train_dataset) == n
    assert COPY_HEAD in _text(only.train_dataset[0]["input_ids"].tolist())
    # the extra rows are mixture documents; the text rows are unchanged
    for i in range(3):
        row = _text(mix.train_dataset[n + i]["input_ids"].tolist())
        assert INTRO in row or COPY_HEAD in row
    assert torch.equal(mix.train_dataset[0]["input_ids"], text.train_dataset[0]["input_ids"])
    for bad in (dict(retrieval_fraction=1.5), dict(retrieval_kinds=["passkey"]), dict(retrieval_supervise="x")):
        with pytest.raises(ConfigError):
            RetrievalMixDataModule(**kw, **bad)


def test_instruction_rows_supervise_the_response_only():
    docs = [TOK.encode("In the beginning God created the heavens and the earth. " * 4)]
    ds = InstructionRows(docs, 4, 384, seed=0)
    for i in range(4):
        prompt, response = ds.example(i)
        item = ds[i]
        y = item["labels"]
        targets = y[y != -100].tolist()
        assert targets == response + [TOK.eos_id]
        text = bytes(prompt).decode()
        assert text.startswith("### Instruction:") and bytes(response).decode() in text
        assert 32 <= len(response) <= 96
    with pytest.raises(ConfigError):
        InstructionRows(docs, 1, 128)


def test_short_instruction_datamodule_builds():
    dm = ShortInstructionDataModule(seq_len=384, batch_size=2, num_rows=8, max_documents=20)
    dm.setup()
    assert len(dm.train_dataset) == 8
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_ids"].shape == (2, 384)


def test_marker_bytes_are_absent_from_the_corpus():
    train, val = RetrievalMixDataModule(seq_len=384, batch_size=2, max_documents=80, seed=0)._split_docs()
    text = "".join(train + val)
    assert len(text) > 10_000 and not set(tasks.MARKERS) & set(text)
