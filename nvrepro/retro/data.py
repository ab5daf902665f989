"""RETRO's training data: chunk-aligned windows of database documents, each chunk with its neighbours.

Notation: ``m`` = the database's ``chunk_len``, ``s`` = ``seq_chunks``, ``n = s m`` tokens a
sequence, ``k`` neighbours a chunk, ``r = 2 m`` tokens a neighbour (chunk + continuation).

* Training sequences are windows of ``n + 1`` tokens of **one** database document starting at
  token ``j n`` (:func:`windows`): ``input_ids = window[:-1]``, ``labels = window[1:]`` (already
  shifted; ``-100`` and pad inputs past the document's end, so only a document's last window is
  padded). Chunk ``u`` of window ``j`` is the document's chunk ``j s + u``, a database row, and its
  neighbours are that row's precomputed ``db.neighbours`` (other documents only, Borgeaud et al.
  Sec. 2.3); a chunk past the document's end has none (``-1``: all pad).
* Validation and test use the held-out documents (``db.heldout_documents``): tokenized with the
  database's tokenizer, cut into the same windows, each chunk's neighbours retrieved by its text
  with ``db.retrieve`` (they are not in the database, so nothing is excluded). The retrievals are
  computed once and cached next to the database (``heldout_neighbours.npz``), checked against the
  chunks on reload.
* The data gives chunk ``u`` the neighbours retrieved **for** chunk ``u``; RETRO's causal shift
  (they are used only from the chunk's last token on) is the model's job.

Batches of :class:`RetroDataModule`: ``{"input_ids": (b, n), "labels": (b, n), "neighbours":
(b, s, k, 2m)}``, all ``int64``; with ``retrieval=False`` the same batches in the same order
without ``"neighbours"`` (the GPT baseline sees exactly the tokens RETRO sees).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from nvrepro.core.data.datamodules import _TrainValDataModule
from nvrepro.core.data.tokenizers import ByteTokenizer
from nvrepro.core.tooling.paths import REPO_ROOT
from nvrepro.core.tooling.validation import ConfigError, require, require_positive_int

CACHE_FILE = "heldout_neighbours.npz"


def windows(token_ids, m: int, seq_chunks: int, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Chunk-aligned windows of one document: ``(input_ids (w, n), labels (w, n))``, ``n = seq_chunks m``.

    Window ``j`` reads tokens ``[j n, j n + n]``; ``labels[j, t]`` is token ``j n + t + 1`` (``-100``
    past the end) and inputs past the end are ``pad_id``. ``w = ceil((L - 1) / n)``: every token
    but the first is a label exactly once (no window for a document of fewer than 2 tokens).
    """
    require_positive_int(m, "m")
    require_positive_int(seq_chunks, "seq_chunks")
    ids = np.asarray(token_ids, dtype=np.int64)
    require(ids.ndim == 1, "token_ids", f"must be 1-D, got shape {ids.shape}")
    n = m * seq_chunks
    w = max(0, -(-(len(ids) - 1) // n))
    padded = np.full(w * n + 1, pad_id, dtype=np.int64)
    padded[:len(ids)] = ids[:w * n + 1]
    labels = np.full(w * n + 1, -100, dtype=np.int64)
    labels[:len(ids)] = ids[:w * n + 1]
    starts = np.arange(w)[:, None] * n + np.arange(n)[None, :]
    return padded[starts], labels[starts + 1]


def window_neighbours(chunk_rows: np.ndarray, num_windows: int, seq_chunks: int) -> np.ndarray:
    """Neighbour rows ``(w, s, k)`` of the windows of a document whose chunks have ``chunk_rows (c, k)``:
    window ``j``'s chunk ``u`` is chunk ``j s + u``; chunks past the document get ``-1``."""
    chunk_rows = np.asarray(chunk_rows, dtype=np.int64)
    out = np.full((num_windows * seq_chunks, chunk_rows.shape[1]), -1, dtype=np.int64)
    used = min(len(chunk_rows), len(out))
    out[:used] = chunk_rows[:used]
    return out.reshape(num_windows, seq_chunks, chunk_rows.shape[1])


@dataclass(frozen=True)
class DocumentWindows:
    """The windows of one document: ``document`` (corpus index), ``input_ids (w, n)``, ``labels
    (w, n)``, ``rows (w, s, k)`` (database rows of each chunk's neighbours, ``-1``: none)."""

    document: int
    input_ids: np.ndarray
    labels: np.ndarray
    rows: np.ndarray


def _strip_pad(tokens: np.ndarray, pad_id: int) -> np.ndarray:
    real = np.flatnonzero(tokens != pad_id)
    return tokens[:real[-1] + 1] if len(real) else tokens[:0]


def database_windows(db, seq_chunks: int, k: int | None = None, pad_id: int | None = None) -> list[DocumentWindows]:
    """The training windows of every database document (in corpus order), neighbours from the
    precomputed ``db.neighbours`` (first ``k``, default all). A document's tokens are its chunks
    joined, so every window chunk is the database chunk it retrieves for. ``pad_id``: the
    tokenizer's (default: rebuilt from the database, :func:`database_tokenizer`)."""
    k = _check_k(db, k)
    pad = database_pad_id(db) if pad_id is None else pad_id
    m = db.config.chunk_len
    order = np.lexsort((db.chunks.chunk_index, db.chunks.doc_ids))
    docs, starts = np.unique(db.chunks.doc_ids[order], return_index=True)
    out = []
    for doc, rows in zip(docs.tolist(), np.split(order, starts[1:])):
        tokens = _strip_pad(db.chunks.tokens[rows].reshape(-1), pad)
        inputs, labels = windows(tokens, m, seq_chunks, pad)
        if len(inputs):
            out.append(DocumentWindows(doc, inputs, labels,
                                       window_neighbours(db.neighbours[rows, :k], len(inputs), seq_chunks)))
    return out


def database_tokenizer(db, docs: list[str] | None = None):
    """The tokenizer the database was built with, rebuilt as :func:`build_database` builds it
    (BPE trains on the database's documents). Raises ``ConfigError`` if the corpus read now and
    the tokenizer do not reproduce the database's first chunk."""
    from nvrepro.core.data.corpus import split_indices
    from nvrepro.core.data.tokenizers import build_tokenizer

    cfg = db.config
    if cfg.tokenizer == "byte":
        tok = ByteTokenizer()
    else:
        docs = _corpus(db) if docs is None else docs
        tok = build_tokenizer(cfg.tokenizer, [docs[i] for i in split_indices(len(docs), cfg.heldout_fraction,
                                                                               cfg.seed)[0]])
    return check_corpus(db, _corpus(db) if docs is None else docs, tok)


def check_corpus(db, docs: list[str], tokenizer):
    """``tokenizer`` if it and the corpus ``docs`` reproduce the database's first chunk, else
    ``ConfigError`` naming ``database.corpus``."""
    if len(db.chunks):
        first = db.chunks.doc_ids[np.flatnonzero(db.chunks.chunk_index == 0)[0]]
        ids = tokenizer.encode(docs[first])[:db.config.chunk_len]
        if ids != db.chunks.tokens[db.chunks.doc_ids == first][0][:len(ids)].tolist():
            raise ConfigError(f"database.corpus: the corpus and {db.config.tokenizer!r} tokenizer read now do not "
                              f"reproduce the first chunk of the database at {db.path} (the corpus changed "
                              "since it was built?); rebuild the database")
    return tokenizer


def _corpus(db) -> list[str]:
    from nvrepro.core.data.corpus import load_corpus

    return load_corpus(db.config.corpus, db.config.paths, max_documents=db.config.max_documents)


def database_pad_id(db) -> int:
    """The pad id of the database's tokenizer (BPE: rebuilt, :func:`database_tokenizer`)."""
    return ByteTokenizer().pad_id if db.config.tokenizer == "byte" else database_tokenizer(db).pad_id


def _check_k(db, k: int | None) -> int:
    if k is None:
        return db.neighbours.shape[1]
    require_positive_int(k, "k")
    require(k <= db.neighbours.shape[1], "k", f"the database keeps {db.neighbours.shape[1]} neighbours a "
            f"chunk (its config's k), got k={k}")
    return k


@dataclass(frozen=True)
class HeldoutChunks:
    """The held-out documents' chunks and what they retrieve: ``documents (d,)`` corpus indices,
    ``tokens`` (one ``(L_i,)`` array each), ``chunk_doc (c,)`` position in ``documents`` of every
    chunk, ``chunks (c, m)`` (pad-filled), ``rows (c, k)`` and ``scores (c, k)`` of the nearest
    database chunks of each chunk's text (the database's ``k``)."""

    documents: list[int]
    tokens: list[np.ndarray]
    chunk_doc: np.ndarray
    chunks: np.ndarray
    rows: np.ndarray
    scores: np.ndarray

    def of(self, i: int) -> slice:
        """Chunk rows of the ``i``-th held-out document."""
        hits = np.flatnonzero(self.chunk_doc == i)
        return slice(int(hits[0]), int(hits[-1]) + 1) if len(hits) else slice(0, 0)


def heldout_chunks(db, tokenizer=None, cache: bool = True, retrieve: bool = True) -> HeldoutChunks:
    """Chunk the held-out documents and retrieve the database's ``k`` neighbours of each chunk's
    text (``db.retrieve``, no exclusion). Cached in ``<db>/heldout_neighbours.npz`` unless
    ``cache=False``; a cache whose chunks differ from the ones computed now is recomputed.
    ``retrieve=False`` searches nothing (rows ``-1``): the same chunks for a model without retrieval."""
    from nvrepro.core.retrieval.chunks import iter_document_chunks

    heldout = db.heldout_documents
    require(len(heldout) > 0, "database.heldout_fraction", f"the database at {db.path} keeps no held-out "
            "documents, so there is no validation data; build it with heldout_fraction > 0")
    docs = _corpus(db)
    tok = database_tokenizer(db, docs) if tokenizer is None else check_corpus(db, docs, tokenizer)
    m, k = db.config.chunk_len, db.neighbours.shape[1]
    tokens = [np.asarray(tok.encode(docs[d]), dtype=np.int64) for d in heldout]
    chunk_doc, chunks = [], []
    for i, c, _ in iter_document_chunks(tokens, m, tok.pad_id):
        chunk_doc.append(np.full(len(c), i))
        chunks.append(c)
    chunk_doc = np.concatenate(chunk_doc) if chunks else np.zeros(0, np.int64)
    chunks = np.concatenate(chunks) if chunks else np.zeros((0, m), np.int64)
    if not retrieve:
        return HeldoutChunks(list(heldout), tokens, chunk_doc, chunks, np.full((len(chunks), k), -1),
                             np.full((len(chunks), k), np.nan, dtype=np.float32))
    path = Path(db.path) / CACHE_FILE
    if cache and path.is_file():
        saved = np.load(path)
        if (saved["documents"].tolist() == list(heldout) and saved["chunks"].shape == chunks.shape
                and (saved["chunks"] == chunks).all() and saved["rows"].shape[1] == k):
            return HeldoutChunks(list(heldout), tokens, chunk_doc, chunks, saved["rows"], saved["scores"])
    texts = [tok.decode(c[c != tok.pad_id]) for c in chunks]
    rows, scores = db.retrieve(texts, k) if texts else (np.zeros((0, k), np.int64), np.zeros((0, k), np.float32))
    rows = np.asarray(rows, dtype=np.int64)
    if cache:
        np.savez(path, documents=np.asarray(heldout), chunks=chunks, rows=rows, scores=scores)
    return HeldoutChunks(list(heldout), tokens, chunk_doc, chunks, rows, np.asarray(scores))


def heldout_windows(db, seq_chunks: int, k: int | None = None, tokenizer=None, cache: bool = True,
                    retrieve: bool = True) -> list[DocumentWindows]:
    """The held-out documents as :class:`DocumentWindows` (one per document, in
    ``db.heldout_documents`` order), neighbours retrieved by chunk text (:func:`heldout_chunks`;
    ``retrieve=False``: none, rows ``-1``): the unit of per-document perplexity."""
    k = _check_k(db, k)
    held = heldout_chunks(db, tokenizer, cache, retrieve)
    pad = tokenizer.pad_id if tokenizer is not None else database_pad_id(db)
    out = []
    for i, (doc, tokens) in enumerate(zip(held.documents, held.tokens)):
        inputs, labels = windows(tokens, db.config.chunk_len, seq_chunks, pad)
        if len(inputs):
            out.append(DocumentWindows(doc, inputs, labels,
                                       window_neighbours(held.rows[held.of(i), :k], len(inputs), seq_chunks)))
    return out


class WindowDataset(Dataset):
    """Rows of a list of :class:`DocumentWindows`, as dicts of tensors: ``input_ids (n,)``,
    ``labels (n,)`` and, when ``neighbour_tokens`` (a ``(rows, 2m)`` table: chunk + continuation of
    every database row) is given, ``neighbours (s, k, 2m)`` (``-1`` rows all ``pad_id``)."""

    def __init__(self, docs: list[DocumentWindows], neighbour_tokens: np.ndarray | None, pad_id: int):
        n = docs[0].input_ids.shape[1] if docs else 0
        self.input_ids = np.concatenate([d.input_ids for d in docs]) if docs else np.zeros((0, n), np.int64)
        self.labels = np.concatenate([d.labels for d in docs]) if docs else self.input_ids.copy()
        self.rows = np.concatenate([d.rows for d in docs]) if docs else None
        self.table = None
        if neighbour_tokens is not None:  # a last all-pad row stands for -1
            pad_row = np.full((1, neighbour_tokens.shape[1]), pad_id, dtype=neighbour_tokens.dtype)
            self.table = np.concatenate([neighbour_tokens, pad_row])

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = {"input_ids": torch.from_numpy(self.input_ids[i]), "labels": torch.from_numpy(self.labels[i])}
        if self.table is not None:
            rows = self.rows[i]
            item["neighbours"] = torch.from_numpy(self.table[np.where(rows >= 0, rows, len(self.table) - 1)]
                                                  .astype(np.int64))
        return item


def resolve_config_path(path: str | Path) -> Path:
    """``path`` as given if it exists, else under the repository root (notebooks run elsewhere)."""
    path = Path(path)
    return path if path.is_absolute() or path.exists() else REPO_ROOT / path


def open_or_build(cfg, build: bool = True, progress: bool = False):
    """The database of ``cfg``: opened if its ``out_dir`` holds one (built with the same config,
    else ``ConfigError`` naming the first differing field), built with ``build_database`` if not
    (``build=False``: ``ConfigError`` naming the missing file)."""
    from nvrepro.core.retrieval.database import build_database, open_database

    out = Path(cfg.out_dir) if Path(cfg.out_dir).is_absolute() else REPO_ROOT / cfg.out_dir
    if build and not (out / "report.json").exists():
        build_database(cfg, progress=progress)
    db = open_database(cfg.out_dir)
    built, wanted = asdict(db.config), asdict(cfg)
    for key in wanted:
        if key != "out_dir" and built.get(key) != wanted[key]:
            raise ConfigError(f"database.{key}: the database at {db.path} was built with {key}={built.get(key)!r} "
                              f"but the config asks for {wanted[key]!r}; rebuild it or change out_dir")
    return db


class RetroDataModule(_TrainValDataModule):
    """Windows of ``seq_chunks`` database chunks with their neighbours (see the module docstring).

    ``database``: a YAML with a ``database`` section (``configs/retro/toy_db.yaml``); its ``out_dir``
    is opened, or built first when it holds no database (``build=False`` raises instead).
    ``retrieval=False``: the same batches without ``neighbours``. ``k``: neighbours a chunk (at most
    the database's). ``chunk_len``: if given, the database's must equal it. Validation and test
    need held-out documents (``heldout_fraction > 0`` in the database config).
    """

    def __init__(self, database: str = "configs/retro/toy_db.yaml", seq_chunks: int = 4, batch_size: int = 16,
                 num_workers: int = 0, seed: int = 0, retrieval: bool = True, k: int | None = None,
                 chunk_len: int | None = None, build: bool = True):
        super().__init__()
        from nvrepro.core.retrieval.database import load_database_config

        require_positive_int(seq_chunks, "seq_chunks")
        require_positive_int(batch_size, "batch_size")
        require(isinstance(num_workers, int) and num_workers >= 0, "num_workers",
                f"must be a non-negative integer, got {num_workers!r}")
        self.db_config = load_database_config(resolve_config_path(database))
        if chunk_len is not None and chunk_len != self.db_config.chunk_len:
            raise ConfigError(f"chunk_len: expected {chunk_len} but the database config {database} has "
                              f"chunk_len {self.db_config.chunk_len}")
        if k is not None:
            require_positive_int(k, "k")
            require(k <= self.db_config.k, "k", f"the database keeps {self.db_config.k} neighbours a chunk, got {k}")
        self.save_hyperparameters()
        self.database, self.seq_chunks, self.batch_size = database, seq_chunks, batch_size
        self.num_workers, self.seed, self.retrieval, self.k, self.build = num_workers, seed, retrieval, k, build
        self.db = self._tokenizer = self._table = None
        self.train_dataset = self.val_dataset = None

    @property
    def chunk_len(self) -> int:
        """RETRO's ``m``: tokens a chunk (the database's)."""
        return self.db_config.chunk_len

    @property
    def seq_len(self) -> int:
        """Tokens a sequence, ``seq_chunks * chunk_len``."""
        return self.seq_chunks * self.chunk_len

    @property
    def tokenizer(self):
        """The database's tokenizer (:func:`database_tokenizer`; BPE is rebuilt on first use)."""
        if self._tokenizer is None:
            self._tokenizer = ByteTokenizer() if self.db_config.tokenizer == "byte" else database_tokenizer(
                self.open())
        return self._tokenizer

    @property
    def vocab_size(self) -> int:
        """Embedding size for the model: 260 for byte tokens (known without the database)."""
        return self.tokenizer.vocab_size

    def open(self):
        """The database (opened, or built if ``build`` and its ``out_dir`` has none)."""
        if self.db is None:
            self.db = open_or_build(self.db_config, self.build)
        return self.db

    def prepare_data(self) -> None:
        """Build the database if missing (single process); downloads nothing."""
        self.open()

    def _dataset(self, docs: list[DocumentWindows]) -> WindowDataset:
        if self.retrieval and self._table is None:  # chunk + continuation of every database row
            self._table = self.open().chunks.neighbour_tokens(np.arange(len(self.db.chunks))).astype(np.int32)
        return WindowDataset(docs, self._table if self.retrieval else None, self.tokenizer.pad_id)

    def setup(self, stage: str | None = None) -> None:
        db = self.open()
        if stage in (None, "fit") and self.train_dataset is None:
            self.train_dataset = self._dataset(database_windows(db, self.seq_chunks, self.k, self.tokenizer.pad_id))
        if stage in (None, "validate", "test") and self.val_dataset is None:
            self.val_dataset = self._dataset(heldout_windows(db, self.seq_chunks, self.k, self.tokenizer,
                                                             retrieve=self.retrieval))
