"""Generated forms, the example sequences of each architecture, batches, the JSONL source and ``nvrepro fit``."""

import json
import random

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from nvrepro.cli import main
from nvrepro.core.data.tokenizers import ByteTokenizer
from nvrepro.core.lm.config import model_config_from_yaml
from nvrepro.core.tooling.paths import CONFIGS_DIR
from nvrepro.core.tooling.validation import ConfigError
from nvrepro.core.vision.tiling import tile_image
from nvrepro.nvlm.data import DocumentQA, DocumentQADataModule, collate, read_jsonl
from nvrepro.nvlm.documents import ask, render_document
from nvrepro.nvlm.evaluation import exact_match
from nvrepro.nvlm.prompts import build_example
from nvrepro.nvlm.text_tasks import TEXT_TASKS, instruction

TOK = ByteTokenizer()


def test_a_document_is_the_same_for_the_same_seed_and_its_tiles_are_its_cells():
    a, b = render_document(random.Random(5)), render_document(random.Random(5))
    assert a.entries == b.entries and np.array_equal(np.asarray(a.image), np.asarray(b.image))
    for seed in range(30):
        doc = render_document(random.Random(seed), cell_size=32, max_cells=6)
        cols, rows = doc.grid
        assert doc.image.size == (32 * cols, 32 * rows) and cols * rows <= 6
        tiles = tile_image(doc.image, 32, 6)
        assert tiles.grid == doc.grid  # one tile per cell, no resizing
        for k, tile in enumerate(tiles.tiles):
            c, r = k % cols, k // cols
            crop = doc.image.crop((32 * c, 32 * r, 32 * c + 32, 32 * r + 32))
            assert np.array_equal(np.asarray(tile), np.asarray(crop))
            assert (np.asarray(tile) < 128).any()  # the entry's ink is in its cell


def test_questions_have_the_answers_of_the_form():
    doc = render_document(random.Random(2))
    labels = dict(doc.entries)
    for seed in range(20):
        q = ask(doc, random.Random(seed), "ocr")
        assert q.answer == labels[q.text.split()[2].rstrip("?")]
        q = ask(doc, random.Random(seed), "layout")
        row, col = int(q.text.split()[1]), int(q.text.split()[3].rstrip("?"))
        assert q.answer == "".join(doc.entry_at(col - 1, row - 1))
    with pytest.raises(ValueError, match="kind"):
        ask(doc, random.Random(0), "chart")
    with pytest.raises(ValueError, match="cell_size"):
        render_document(random.Random(0), cell_size=8)


def test_text_tasks_have_exact_answers():
    rng = random.Random(0)
    for kind in TEXT_TASKS:
        for _ in range(20):
            item = instruction(rng, kind)
            words = item.text.split()
            if kind == "add":
                assert int(item.answer) == int(words[1]) + int(words[2])
            elif kind == "reverse":
                assert item.answer == words[1][::-1]
            elif kind == "sort":
                assert item.answer.split() == sorted(words[1:])
            else:
                assert ord(item.answer) == ord(words[1]) + 1


@pytest.mark.parametrize("architecture, in_decoder", [("D", 7), ("X", 0), ("H", 1)])
def test_each_architecture_puts_its_images_where_the_paper_does(architecture, in_decoder):
    ex = build_example(TOK, "value of C?", "47", "ocr", grid=(3, 2), has_thumbnail=True, architecture=architecture,
                       tag_style="1d", tokens_per_tile=16, image_token_id=260)
    assert ex.input_ids.count(260) == 16 * in_decoder
    assert sum(ex.image_in_decoder) == in_decoder and len(ex.image_in_decoder) == 7
    if architecture == "H":
        assert ex.image_in_decoder[-1]  # the thumbnail
    for k, tag in enumerate([f"<tile_{i}>" for i in range(1, 7)] + ["<tile_global_thumbnail>"]):
        tag_ids = [t for t, owner in zip(ex.input_ids, ex.token_tile) if owner == k]
        assert TOK.decode(tag_ids) == tag
    supervised = [label for label in ex.labels if label != -100]
    assert TOK.decode(supervised) == "47" and supervised[-1] == TOK.eos_id
    # pre-shifted: the label at t is the token at t + 1
    assert all(ex.labels[t] == ex.input_ids[t + 1] for t in range(len(ex.labels) - 1) if ex.labels[t] != -100)


def test_no_tags_and_text_only_examples():
    ex = build_example(TOK, "q?", "a", "ocr", grid=(2, 1), has_thumbnail=True, architecture="X", tag_style="none",
                       tokens_per_tile=4, image_token_id=260)
    assert set(ex.token_tile) == {-1} and TOK.decode(ex.input_ids) == "\nq?a"
    text = build_example(TOK, "add 1 2", "3", "text:add", grid=None, has_thumbnail=False, architecture="D",
                         tag_style="1d", tokens_per_tile=4, image_token_id=260)
    assert text.image_in_decoder == [] and 260 not in text.input_ids


def test_batches_pad_and_blend_text_only_examples():
    ds = DocumentQA(40, "train", seed=1, architecture="H", text_fraction=0.5, tile_size=32, tokens_per_tile=16)
    batch = collate([ds[i] for i in range(40)])
    assert 5 < int(batch["is_text"].sum()) < 35
    assert not batch["image_mask"][batch["is_text"]].any()
    assert batch["pixel_values"].shape[2:] == (3, 32, 32) and batch["pixel_values"].dtype == torch.float32
    assert ((batch["labels"] != -100).sum(1) >= 2).all()
    assert torch.equal(collate([ds[3]])["input_ids"], collate([DocumentQA(40, "train", seed=1, architecture="H",
                       text_fraction=0.5)[3]])["input_ids"])  # an example depends only on (seed, split, index)
    low = DocumentQA(10, "val", max_tiles=1)
    assert all(len(low[i][1]) == 1 for i in range(10))  # low resolution: one tile, no thumbnail


def test_exact_match_counts_a_row_right_only_if_every_answer_token_is_the_argmax():
    labels = torch.tensor([[-100, 3, 4], [-100, 3, 4], [-100, -100, -100]])
    logits = torch.zeros(3, 3, 6)
    logits[0, 1, 3] = logits[0, 2, 4] = 1
    logits[1, 1, 3] = logits[1, 2, 5] = 1
    assert exact_match(logits, labels).tolist() == [True, False, False]


def test_jsonl_source_reads_local_images(tmp_path):
    for i in range(3):
        Image.new("RGB", (64, 32), (i * 50, 0, 0)).save(tmp_path / f"p{i}.png")
    lines = [json.dumps({"image": f"p{i}.png", "question": f"q{i}?", "answer": f"a{i}"}) for i in range(3)]
    (tmp_path / "train.jsonl").write_text("\n".join(lines))
    dm = DocumentQADataModule(architecture="D", source="jsonl", train_path=str(tmp_path / "train.jsonl"),
                              val_path=str(tmp_path / "train.jsonl"), batch_size=2)
    batch = next(iter(dm.train_dataloader()))
    assert batch["pixel_values"].shape[1] == 3  # 2 x 1 tiles + thumbnail
    (tmp_path / "bad.jsonl").write_text(json.dumps({"image": "p0.png", "question": "q"}))
    with pytest.raises(ConfigError, match="line 1 lacks"):
        read_jsonl(tmp_path / "bad.jsonl")
    with pytest.raises(ConfigError, match="train_path"):
        DocumentQADataModule(source="jsonl")


@pytest.mark.parametrize("arch", ["d", "x", "h"])
def test_nvrepro_fit_trains_each_architecture(tmp_path, arch):
    cfg = yaml.safe_load((CONFIGS_DIR / "nvlm" / f"toy_{arch}.yaml").read_text())
    model = cfg["model"]["init_args"]["model"]
    model.update(d_model=32, attention=dict(n_heads=2, n_kv_heads=2, head_dim=16, rope=True), ffn=dict(hidden=64))
    cfg["data"]["init_args"].update(num_train=8, num_val=4, batch_size=4)
    cfg["trainer"] = dict(max_steps=2, limit_val_batches=1, val_check_interval=2, accelerator="cpu", devices=1,
                          logger=False, enable_checkpointing=False, enable_progress_bar=False,
                          default_root_dir=str(tmp_path))
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["fit", "--config", str(path)]) in (0, None)
    assert model_config_from_yaml(CONFIGS_DIR / "nvlm" / f"toy_{arch}.yaml").architecture == arch.upper()


def test_fit_refuses_data_built_for_another_architecture(tmp_path):
    cfg = yaml.safe_load((CONFIGS_DIR / "nvlm" / "toy_d.yaml").read_text())
    cfg["data"]["init_args"].update(architecture="X", num_train=4, num_val=4, batch_size=2)
    cfg["trainer"] = dict(max_steps=1, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                          enable_progress_bar=False, default_root_dir=str(tmp_path))
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises((ConfigError, SystemExit)):
        main(["fit", "--config", str(path)])


class _Oracle(torch.nn.Module):
    """Predicts the target's next token whenever the prefix so far matches the target, except at answer
    position ``slip`` (it predicts a wrong token there); otherwise token 0."""

    def __init__(self, target: list[int], slip: int | None):
        super().__init__()
        self.target, self.slip = target, slip

    def forward(self, input_ids, **_):
        b, l = input_ids.shape
        logits = torch.zeros(b, l, 261)
        for t in range(l):
            prefix = input_ids[0, :t + 1].tolist()
            nxt = self.target[t + 1] if prefix == self.target[:t + 1] and t + 1 < len(self.target) else 0
            if self.slip is not None and t + 1 == self.slip:
                nxt = (nxt + 1) % 256
            logits[0, t, nxt] = 1.0
        return logits


@pytest.mark.parametrize("slip_offset", [None, 0, 1])
def test_exact_match_of_one_forward_pass_is_greedy_decodings(slip_offset):
    from nvrepro.nvlm.evaluation import greedy_answer

    ds = DocumentQA(2, "val", architecture="D")
    example, pixels = ds[0]
    first = next(t for t, label in enumerate(example.labels) if label != -100) + 1  # first answer token
    model = _Oracle(example.input_ids, None if slip_offset is None else first + slip_offset)
    batch = collate([ds[0]])
    em = bool(exact_match(model(batch["input_ids"]), batch["labels"])[0])
    greedy = greedy_answer(model, ds[0])
    assert em == (greedy == example.input_ids[first:]) == (slip_offset is None)
