"""Clip QA examples and batches: the supervised positions are exactly the response and <eos>, one
placeholder run per frame, items independent of reading order, and the JSONL switch on local files."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from nvrepro.core.data.tokenizers import ByteTokenizer
from nvrepro.core.tooling.validation import ConfigError
from nvrepro.cosmos.data import ClipQA, ClipQADataModule, collate, collate_prompts

TOK = ByteTokenizer()


def test_labels_supervise_exactly_the_response():
    ds = ClipQA(9, "val", tokens_per_frame=4)
    for i in range(9):
        ex, frames = ds[i]
        supervised = [label for label in ex.labels if label != -100]
        assert TOK.decode(supervised[:-1]) == ex.question.response and supervised[-1] == TOK.eos_id
        # labels are pre-shifted: the target at position t is the token at t + 1
        assert all(ex.labels[t] in (-100, ex.input_ids[t + 1]) for t in range(len(ex.labels) - 1))
        assert ex.input_ids.count(260) == 4 * len(frames) and ex.input_ids[ex.prompt_length - 1] == TOK.sep_id
        assert ds.task_of(i) == ex.question.task


def test_items_do_not_depend_on_reading_order():
    a, b = ClipQA(6, "train", seed=3), ClipQA(6, "train", seed=3)
    for i in (5, 0, 3):
        assert a[i][0].input_ids == b[i][0].input_ids and torch.equal(a[i][1], b[i][1])
    assert ClipQA(6, "train", seed=4)[0][0].input_ids != a[0][0].input_ids or not torch.equal(
        ClipQA(6, "train", seed=4)[0][1], a[0][1])


def test_batches():
    ds = ClipQA(4, "val")
    batch = collate([ds[i] for i in range(4)])
    assert batch["pixel_values"].shape == (4, 4, 3, 32, 32) and batch["pixel_values"].dtype == torch.float32
    assert batch["input_ids"].shape == batch["labels"].shape
    prompts = collate_prompts([ds[i] for i in range(4)])
    assert [len(p) for p in prompts["prompts"]] == batch["prompt_lengths"].tolist()
    cap = ClipQA(3, "val", stage="caption")
    ex, frames = cap[0]
    assert len(frames) == 1 and ex.question is None


def _records(tmp_path, n=3):
    paths = []
    for k in range(2):
        path = tmp_path / f"f{k}.png"
        Image.fromarray(np.full((40, 50, 3), 40 * k, dtype=np.uint8)).save(path)
        paths.append(path.name)
    lines = [json.dumps({"frames": paths, "question": "Does it roll?", "options": ["yes", "no"], "answer": "no",
                         "reasoning": "it slides", "task": "mechanics"}) for _ in range(n)]
    (tmp_path / "train.jsonl").write_text("\n".join(lines))
    (tmp_path / "val.jsonl").write_text(lines[0])


def test_jsonl_source_reads_local_records(tmp_path):
    _records(tmp_path)
    dm = ClipQADataModule(source="jsonl", train_path=str(tmp_path / "train.jsonl"),
                          val_path=str(tmp_path / "val.jsonl"), frame_size=32, tokens_per_frame=4, batch_size=2)
    dm.setup()
    assert len(dm.train_set) == 3 and len(dm.val_set) == 1
    ex, frames = dm.train_set[0]
    assert frames.shape == (2, 3, 32, 32) and int(frames[1].max()) == 40
    assert dict(zip("AB", ex.question.options))[ex.question.answer] == "no"
    assert ex.question.task == "mechanics" and dm.train_set.task_of(0) == "mechanics"
    batch = next(iter(dm.train_dataloader()))
    assert batch["pixel_values"].shape == (2, 2, 3, 32, 32)


def test_jsonl_errors_name_the_problem(tmp_path):
    (tmp_path / "bad.jsonl").write_text(json.dumps({"frames": []}))
    dm = ClipQADataModule(source="jsonl", train_path=str(tmp_path / "bad.jsonl"), val_path=str(tmp_path / "bad.jsonl"))
    with pytest.raises(ConfigError, match="lacks"):
        dm.setup()
    with pytest.raises(ConfigError, match="train_path"):
        ClipQADataModule(source="jsonl")
    with pytest.raises(ConfigError, match="source"):
        ClipQADataModule(source="web")
    with pytest.raises(ConfigError, match="prompts_only"):
        ClipQADataModule(stage="caption", prompts_only=True)
    with pytest.raises(ConfigError, match="stage"):
        ClipQA(4, stage="pretrain")
