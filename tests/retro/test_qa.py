"""QA formats for Retro, teacher-forced exact match against generation, and the QA data module."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from nvrepro.core.data.tokenizers import ByteTokenizer
from nvrepro.retro.generation import generate_with_retrieval
from nvrepro.retro.qa import IGNORE, QADataModule, QARows, encode_qa, exact_match_rows, prompt_text, qa_rows

TOK = ByteTokenizer()


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("facts")
    train, examples = qa_rows("train", "retro++", num_entities=10, facts_seed=0, chunk_len=16, k=2, folder=folder)
    return folder, train, examples


def test_formats_place_the_answer_on_a_chunk_and_the_neighbours_where_the_paper_does(tiny_world):
    from nvrepro.retro.qa import fact_database

    folder, _, examples = tiny_world
    db = fact_database(10, 0, 16, 2, folder)
    questions, answers = [e.question for e in examples[:5]], [e.answer for e in examples[:5]]
    rows, _ = db.retrieve(questions, 3)
    encoded = {fmt: encode_qa(fmt, questions, answers, rows, db, TOK, k=2) for fmt in ("retro", "retro++", "rag")}
    for fmt, qa in encoded.items():
        n = qa.input_ids.shape[1]
        assert n % 16 == 0 and (qa.answer_start % 16 == 0).all()
        for i, a in enumerate(answers):
            s = int(qa.answer_start[i])
            gold = TOK.encode(" " + a) + [TOK.eos_id]
            assert qa.input_ids[i, s:s + len(gold)].tolist() == gold
            assert qa.labels[i, s - 1:s - 1 + len(gold)].tolist() == gold
            assert (qa.labels[i] != IGNORE).sum() == len(gold)
        text = TOK.decode(qa.input_ids[0][qa.input_ids[0] != TOK.pad_id])
        assert ("Context:" in text) == (fmt != "retro") and prompt_text(questions[0], None).split("\n")[0] in text
    assert encoded["rag"].neighbours is None
    pad = TOK.pad_id
    for fmt, first in (("retro", 0), ("retro++", 1)):
        nb = encoded[fmt].neighbours
        assert nb.shape == (5, encoded[fmt].input_ids.shape[1] // 16, 2, 32)
        expected = db.neighbour_tokens(rows[:, first:first + 2], pad)
        assert all((nb[:, c] == expected).all() for c in range(nb.shape[1]))


class Bigram(nn.Module):
    """Logits from a (V, V) table indexed by the current token: a model whose greedy text is known."""

    def __init__(self, table):
        super().__init__()
        self.table = nn.Parameter(table)
        self.cfg = SimpleNamespace(max_seq_len=512)

    def forward(self, input_ids, neighbours=None):
        return self.table[input_ids]


def test_teacher_forced_exact_match_equals_greedy_generation():
    V = TOK.vocab_size
    prompts, answers = ["Q: x\nAnswer:", "Q: y\nAnswer:", "Q: z\nAnswer:"], ["abc", "abd", "xy"]
    table = torch.zeros(V, V)
    for a, b in [(":", " "), (" ", "a"), ("a", "b"), ("b", "c"), ("x", "y")]:
        table[ord(a), ord(b)] = 5.0
    table[ord("c"), TOK.eos_id] = 5.0
    table[ord("y"), TOK.eos_id] = 5.0
    model = Bigram(table)
    n = 32
    ids = np.full((3, n), TOK.pad_id)
    labels = np.full((3, n), IGNORE)
    for i, (p, a) in enumerate(zip(prompts, answers)):
        seq = TOK.encode(p) + TOK.encode(" " + a) + [TOK.eos_id]
        ids[i, :len(seq)] = seq
        labels[i, len(TOK.encode(p)) - 1:len(seq) - 1] = seq[len(TOK.encode(p)):]
    em = exact_match_rows(model, QARows(ids, labels, None, np.zeros(3, np.int64)))
    for i, (p, a) in enumerate(zip(prompts, answers)):
        new = generate_with_retrieval(model, TOK.encode(p), 8, eos_id=TOK.eos_id)
        assert em[i] == float(new == TOK.encode(" " + a) + [TOK.eos_id])
    assert em.tolist() == [1.0, 0.0, 0.0]  # "abd" breaks at d; "xy" is never started (":" -> " " -> "a")


def test_data_module_batches_and_errors(tiny_world):
    folder, train, _ = tiny_world
    dm = QADataModule(format="retro", num_entities=10, chunk_len=16, batch_size=4, folder=str(folder))
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"input_ids", "labels", "neighbours"} and batch["neighbours"].shape[1:] == \
        (batch["input_ids"].shape[1] // 16, 2, 32)
    assert "neighbours" not in next(iter(QADataModule(format="rag", num_entities=10, chunk_len=16, batch_size=4,
                                                      folder=str(folder)).train_dataloader()))
    with pytest.raises(Exception, match="format"):
        QADataModule(format="t5")
    with pytest.raises(Exception, match="rows"):
        encode_qa("retro", ["q"], ["a"], np.zeros((1, 2), np.int64), None, TOK, k=2)
