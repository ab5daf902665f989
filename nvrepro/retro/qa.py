"""Open-domain QA with a Retro model: the three input formats, a data module, and exact match.

The fact world (:mod:`nvrepro.retro.facts`) gives questions whose answer sits in one passage of a
database of invented people. Every question retrieves its nearest database chunks by text (MiniLM,
:meth:`~nvrepro.core.retrieval.database.Database.retrieve`); the formats differ in where those go:

* ``"retro"`` (RETRO fine-tuned for QA, the study's Sec. 6): the decoder reads only
  ``Question: ... Answer:``; the top ``k`` neighbours reach it through the encoder;
* ``"retro++"`` (RETRO++, the study's variant): the top-1 neighbour's text is in the decoder's
  context (``Context: ... Question: ... Answer:``) and the next ``k`` neighbours go through the
  encoder; this is also the retrieval-augmented format InstructRetro is instruction-tuned and
  evaluated in (retrieved context in the prompt), where the encoder can be dropped at inference;
* ``"rag"``: the same prompt as ``"retro++"`` for a GPT (no encoder, no neighbours).

A sequence is ``pad ... prompt | answer <eos> pad ...``: the prompt is left-padded to a whole number
of chunks, so the answer starts a chunk and its first token is predicted from the prompt's last
token, which (by CCA's shift) attends to the neighbours of the prompt's last chunk; every chunk
gets the question's neighbours (InstructRetro's evaluation gives all chunks the same retrieved
passages). Labels: the answer and ``<eos>`` only.

Exact match (:func:`exact_match_rows`): the greedy answer equals the gold answer followed by
``<eos>`` exactly when, teacher-forced on the gold answer, the argmax at every answer position is
the gold token, so one batched forward decides it (a test checks this against generation).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from nvrepro.core.data.datamodules import _TrainValDataModule
from nvrepro.core.data.tokenizers import ByteTokenizer
from nvrepro.core.evaluation.modes import eval_mode
from nvrepro.core.evaluation.supervised import device_of
from nvrepro.core.tooling.paths import BUILD_DIR
from nvrepro.core.tooling.validation import ConfigError, require, require_positive_int

FORMATS = ("retro", "retro++", "rag")
IGNORE = -100


@dataclass(frozen=True)
class QARows:
    """Encoded QA examples: ``input_ids (q, n)``, ``labels (q, n)`` (answer + eos only),
    ``neighbours (q, n // m, k, 2 m)`` (every chunk the question's neighbours; ``None`` for
    ``"rag"``), ``answer_start (q,)`` (first answer position)."""

    input_ids: np.ndarray
    labels: np.ndarray
    neighbours: np.ndarray | None
    answer_start: np.ndarray


def prompt_text(question: str, context: str | None) -> str:
    """The prompt of a question, with the retrieved ``context`` first when given."""
    head = f"Context: {context.strip()}\n" if context is not None else ""
    return f"{head}Question: {question}\nAnswer:"


def encode_qa(fmt: str, questions: Sequence[str], answers: Sequence[str], rows: np.ndarray, db, tokenizer,
              k: int, length: int | None = None) -> QARows:
    """Encode questions in format ``fmt`` (:data:`FORMATS`). ``rows (q, >= k + 1)``: each question's
    database rows by similarity. The top-1 row's text is the context of ``"retro++"``/``"rag"``;
    the encoder gets rows ``[0, k)`` (``"retro"``) or ``[1, k + 1)`` (``"retro++"``). ``length``:
    tokens a sequence (default: the longest example, rounded up to whole chunks)."""
    require(fmt in FORMATS, "format", f"must be one of {FORMATS}, got {fmt!r}")
    require_positive_int(k, "k")
    rows = np.asarray(rows)
    require(rows.ndim == 2 and rows.shape[1] >= k + 1 and len(rows) == len(questions), "rows",
            f"need (questions={len(questions)}, >= k + 1 = {k + 1}), got {rows.shape}")
    m, pad, eos = db.config.chunk_len, tokenizer.pad_id, tokenizer.eos_id
    encoder_rows = rows[:, :k] if fmt == "retro" else rows[:, 1:k + 1]
    examples = []
    for q, a, top in zip(questions, answers, rows[:, 0]):
        context = None
        if fmt != "retro":
            tokens = db.neighbour_tokens(np.asarray([top]), pad)[0]
            context = tokenizer.decode(tokens[tokens != pad])
        prompt = tokenizer.encode(prompt_text(q, context))
        prompt = [pad] * (-len(prompt) % m) + prompt
        examples.append((prompt, tokenizer.encode(" " + a) + [eos]))
    need = max(len(p) + len(a) for p, a in examples)
    length = length or -(-need // m) * m
    require(length >= need and length % m == 0, "length", f"must be a multiple of {m} of at least {need}, got {length}")
    ids = np.full((len(examples), length), pad, dtype=np.int64)
    labels = np.full((len(examples), length), IGNORE, dtype=np.int64)
    starts = np.zeros(len(examples), dtype=np.int64)
    for i, (p, a) in enumerate(examples):
        ids[i, :len(p) + len(a)] = p + a
        labels[i, len(p) - 1:len(p) + len(a) - 1] = a  # labels[t] is the token at t + 1
        starts[i] = len(p)
    neighbours = None
    if fmt != "rag":
        tokens = db.neighbour_tokens(encoder_rows, pad)  # (q, k, 2m)
        neighbours = np.repeat(tokens[:, None], length // m, axis=1)
    return QARows(ids, labels, neighbours, starts)


@torch.no_grad()
def exact_match_rows(model, qa: QARows, use_neighbours: bool = True, batch_size: int = 32) -> np.ndarray:
    """Per example, 1.0 if greedy decoding would write exactly the gold answer and ``<eos>``
    (teacher-forced argmax equals every answer label), else 0.0. ``use_neighbours=False`` runs
    a Retro model's decoder alone (the encoder ablated, InstructRetro Sec. 5)."""
    device = device_of(model)
    out = []
    with eval_mode(model):
        for start in range(0, len(qa.input_ids), batch_size):
            part = slice(start, start + batch_size)
            inputs = {"input_ids": torch.from_numpy(qa.input_ids[part]).to(device)}
            if use_neighbours and qa.neighbours is not None:
                inputs["neighbours"] = torch.from_numpy(qa.neighbours[part]).to(device)
            labels = torch.from_numpy(qa.labels[part]).to(device)
            hit = (model(**inputs).argmax(-1) == labels) | (labels == IGNORE)
            out.append(hit.all(-1).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


class _RowsDataset(Dataset):
    def __init__(self, qa: QARows):
        self.qa = qa

    def __len__(self) -> int:
        return len(self.qa.input_ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = {"input_ids": torch.from_numpy(self.qa.input_ids[i]), "labels": torch.from_numpy(self.qa.labels[i])}
        if self.qa.neighbours is not None:
            item["neighbours"] = torch.from_numpy(self.qa.neighbours[i])
        return item


def fact_database(num_entities: int, facts_seed: int, chunk_len: int, k: int, folder: str | Path | None = None,
                  progress: bool = False):
    """The database of the fact world's passages (built under ``folder``, default
    ``build/retro/facts_<n>_<seed>_<m>``, on first use), keeping ``k + 1`` neighbours a chunk."""
    from nvrepro.retro.data import open_or_build
    from nvrepro.retro.facts import fact_database_config

    folder = Path(folder) if folder else BUILD_DIR / "retro" / f"facts_{num_entities}_{facts_seed}_{chunk_len}"
    cfg = fact_database_config(folder, num_entities, facts_seed, chunk_len=chunk_len, k=k + 1)
    return open_or_build(cfg, progress=progress)


def qa_rows(split: str, fmt: str, *, num_entities: int, facts_seed: int, chunk_len: int, k: int,
            test_fraction: float = 0.2, folder: str | Path | None = None) -> tuple[QARows, list]:
    """The ``split`` (``"train"``/``"test"``) questions of the fact world encoded in ``fmt``, and
    the :class:`~nvrepro.retro.facts.QAExample` s (the test split's people never appear in train)."""
    from nvrepro.retro.facts import qa_examples

    require(split in ("train", "test"), "split", f"must be 'train' or 'test', got {split!r}")
    db = fact_database(num_entities, facts_seed, chunk_len, k, folder)
    examples = qa_examples(num_entities, facts_seed, test_fraction)[split]
    rows, _ = db.retrieve([e.question for e in examples], k + 1)
    return encode_qa(fmt, [e.question for e in examples], [e.answer for e in examples], rows, db,
                     ByteTokenizer(), k), examples


class QADataModule(_TrainValDataModule):
    """Fact-world QA in one of :data:`FORMATS`: train on the train people's questions, validate on
    the test people's. Byte tokens (the database's). ``k``: neighbours through the encoder."""

    def __init__(self, format: str = "retro++", num_entities: int = 300, facts_seed: int = 0, chunk_len: int = 64,
                 k: int = 2, test_fraction: float = 0.2, batch_size: int = 16, seed: int = 0, num_workers: int = 0,
                 folder: str | None = None):
        super().__init__()
        if format not in FORMATS:
            raise ConfigError(f"format: must be one of {FORMATS}, got {format!r}")
        for value, name in ((num_entities, "num_entities"), (chunk_len, "chunk_len"), (k, "k"),
                            (batch_size, "batch_size")):
            require_positive_int(value, name)
        self.save_hyperparameters()
        self.format, self.num_entities, self.facts_seed, self.chunk_len, self.k = format, num_entities, facts_seed, chunk_len, k
        self.test_fraction, self.batch_size, self.seed, self.num_workers, self.folder = (
            test_fraction, batch_size, seed, num_workers, folder)
        self.vocab_size = ByteTokenizer().vocab_size

    def rows(self, split: str) -> QARows:
        return qa_rows(split, self.format, num_entities=self.num_entities, facts_seed=self.facts_seed,
                       chunk_len=self.chunk_len, k=self.k, test_fraction=self.test_fraction, folder=self.folder)[0]

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and self.train_dataset is None:
            self.train_dataset = _RowsDataset(self.rows("train"))
        if stage in (None, "validate", "test") and self.val_dataset is None:
            self.val_dataset = _RowsDataset(self.rows("test"))
