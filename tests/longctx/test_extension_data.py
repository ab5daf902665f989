"""Training data of the UltraLong notebooks 02/03: retrieval probes mixed into text, toy instructions."""

import pytest
import torch

from nvrepro.core.config import ConfigError
from nvrepro.core.data.tokenizers import ByteTokenizer
from nvrepro.longctx.data import (InstructionRows, RetrievalMixDataModule, RetrievalRows,
                                  ShortInstructionDataModule, min_task_length)
from nvrepro.longctx.tasks import TASKS, make_examples

TOK = ByteTokenizer()
INTROS = ("pass key", "special magic number", "VAR ", "Some of them appear more often")


def test_min_task_length_is_tight():
    for task in TASKS:
        n = min_task_length(task)
        make_examples(task, n, 8)  # fits
        with pytest.raises(ConfigError):
            make_examples(task, n - 8, 8)


def test_retrieval_rows_are_whole_probes_shifted_and_padded():
    ds = RetrievalRows(6, 1024, max_len=400, sep_id=TOK.eos_id, pad_id=TOK.pad_id, seed=3, supervise="all")
    for i in range(len(ds)):
        item = ds[i]
        x, y = item["input_ids"], item["labels"]
        assert x.shape == y.shape == (1024,)
        real = y != -100
        # shifted labels: the target of t is the input at t + 1 wherever supervised
        assert torch.equal(y[:-1][real[:-1]], x[1:][real[:-1]])
        toks = x.tolist() + [int(y[-1])] if real[-1] else x.tolist()
        n_real = int(real.sum()) + 1
        stream = toks[:n_real]
        assert all(t == TOK.pad_id for t in x.tolist()[n_real:])
        # documents end with <eos>; each is one probe no longer than max_len, with its intro text
        assert stream[-1] == TOK.eos_id
        cuts = [k for k, t in enumerate(stream) if t == TOK.eos_id]
        start = 0
        for c in cuts:
            doc = stream[start:c]
            assert 0 < len(doc) <= 400
            text = bytes(doc).decode("utf-8", errors="replace")
            assert any(s in text for s in INTROS), text[:80]
            start = c + 1


def test_answer_supervision_targets_only_the_answers():
    ds = RetrievalRows(4, 1024, max_len=400, sep_id=TOK.eos_id, seed=1)  # supervise="answer" by default
    for i in range(len(ds)):
        x, y = ds[i]["input_ids"], ds[i]["labels"]
        sup = (y != -100).nonzero().flatten().tolist()
        assert sup
        # contiguous runs of supervised targets; each run is an answer right after its question
        runs, start = [], sup[0]
        for a, b in zip(sup, sup[1:] + [None]):
            if b != a + 1:
                runs.append((start, a))
                start = b
        for lo, hi in runs:
            answer = bytes(y[lo:hi + 1].tolist()).decode()
            before = bytes([t for t in x[max(0, lo - 40):lo + 1].tolist() if t < 256]).decode()
            assert before.endswith(("pass key is ", "is ", "Answer: ")), before
            assert torch.equal(y[lo:hi].cpu(), x[lo + 1:hi + 1])  # shifted: target t is input t + 1
            assert answer.replace(" ", "").isalnum()
        with pytest.raises(ConfigError):
            RetrievalRows(1, 512, supervise="some")


def test_retrieval_rows_deterministic_and_seeded():
    a = RetrievalRows(3, 512, sep_id=None, seed=0)
    b = RetrievalRows(3, 512, sep_id=None, seed=0)
    c = RetrievalRows(3, 512, sep_id=None, seed=1)
    assert all(torch.equal(a[i]["input_ids"], b[i]["input_ids"]) for i in range(3))
    assert not all(torch.equal(a[i]["input_ids"], c[i]["input_ids"]) for i in range(3))
    assert TOK.eos_id not in a[0]["input_ids"].tolist()  # no separator asked for
    with pytest.raises(ConfigError):
        RetrievalRows(1, 512, tasks=("multikey",), max_len=200)  # shorter than any multikey probe
    with pytest.raises(ConfigError):
        RetrievalRows(1, 512, tasks=("nope",))


def test_mix_fraction_counts_rows():
    kw = dict(seq_len=512, batch_size=2, upsample=False, max_documents=40, seed=0)
    text = RetrievalMixDataModule(retrieval_fraction=0.0, **kw)
    mix = RetrievalMixDataModule(retrieval_fraction=0.25, retrieval_max_len=400, **kw)
    text.setup(), mix.setup()
    n = len(text.train_dataset)
    assert len(mix.train_dataset) == n + round(n * 0.25 / 0.75)
    # the extra rows are probes: every one holds a probe intro and padding; the text rows none
    probes = [mix.train_dataset[n + i] for i in range(3)]
    for item in probes:
        text_ = bytes([t for t in item["input_ids"].tolist() if t < 256]).decode("utf-8", "replace")
        assert any(s in text_ for s in INTROS)
    assert torch.equal(mix.train_dataset[0]["input_ids"], text.train_dataset[0]["input_ids"])
    with pytest.raises(ConfigError):
        RetrievalMixDataModule(retrieval_fraction=1.0, **kw)


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
