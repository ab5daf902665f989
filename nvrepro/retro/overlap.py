"""How much of each held-out document its retrieved neighbours already contain: RETRO's evaluation split.

Borgeaud et al. (2022, Sec. 2.6 and 4.4) show that much of RETRO's gain on a test set can come from
test chunks whose neighbours contain the same text (leakage), so they report results as a function
of the overlap between an evaluation chunk and its neighbours. The Bible has many such parallel
passages (Kings / Chronicles, the synoptic gospels, Psalms 14 / 53, Psalm 18 / 2 Samuel 22), so the
held-out chapters are split the same way before comparing RETRO with GPT.

The measure here, on token ids (byte tokens: characters):

* chunk: for a held-out chunk ``C`` (its ``l`` non-pad tokens, ``l <= m``) and its ``k`` neighbours
  ``N_1 .. N_k`` (chunk + continuation, ``2 m`` tokens each, pad excluded),
  ``overlap(C) = #{i : C[i : i + n] is an n-gram of some N_j} / (l - n + 1)``, the share of ``C``'s
  token n-gram positions found in its neighbours (``n = ngram``); ``nan`` when ``l < n``;
* document: the mean over its chunks with a defined overlap (``nan`` if none);
* groups: ``overlap >= threshold`` is "with near-duplicate passages in the database", the rest
  "without".

An exact copy scores 1 and text sharing no ``n``-token string scores 0; ordinary text in the same
language shares a few short phrases, which is why ``n`` is well above a word's length.
:class:`OverlapConfig` holds ``ngram`` and ``threshold``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nvrepro.core.tooling.validation import require, require_positive_int


@dataclass(frozen=True)
class OverlapConfig:
    """``ngram``: tokens an n-gram (16 bytes is about three words); ``threshold``: the document overlap
    from which a held-out document counts as having near-duplicate passages in the database. Both
    are choices, not measurements: a fifth of a document's 16-byte strings found in what its chunks
    retrieve is far above what shared formulas give ordinary text ("Yahweh spoke to Moses, saying"
    is 30 bytes), while parallel passages retold in other words (Kings / Chronicles in the WEB
    differ in punctuation and small words) still reach it."""

    ngram: int = 16
    threshold: float = 0.2

    def __post_init__(self) -> None:
        require_positive_int(self.ngram, "ngram")
        require(0.0 < self.threshold <= 1.0, "threshold", f"must be in (0, 1], got {self.threshold!r}")


def _ngrams(tokens: np.ndarray, n: int) -> np.ndarray:
    """The n-grams of a 1-D token array as rows ``(len - n + 1, n)`` (none if shorter than ``n``)."""
    if len(tokens) < n:
        return np.zeros((0, n), dtype=tokens.dtype)
    return np.lib.stride_tricks.sliding_window_view(tokens, n)


def chunk_overlap(chunks: np.ndarray, neighbours: np.ndarray, ngram: int, pad_id: int) -> np.ndarray:
    """Overlap ``(c,)`` of each chunk ``chunks (c, m)`` with its neighbours ``neighbours (c, k, r)``
    (see the module docstring); pad tokens end a chunk and split a neighbour; ``nan`` for a chunk of
    fewer than ``ngram`` tokens."""
    require_positive_int(ngram, "ngram")
    chunks, neighbours = np.asarray(chunks, dtype=np.int64), np.asarray(neighbours, dtype=np.int64)
    require(chunks.ndim == 2 and neighbours.ndim == 3 and len(chunks) == len(neighbours), "neighbours",
            f"need chunks (c, m) and neighbours (c, k, r), got {chunks.shape} and {neighbours.shape}")
    out = np.full(len(chunks), np.nan)
    for i, (chunk, nbs) in enumerate(zip(chunks, neighbours)):
        grams = _ngrams(chunk[chunk != pad_id], ngram)
        if not len(grams):
            continue
        seen = set()
        for nb in nbs:
            for part in np.split(nb, np.flatnonzero(nb == pad_id)):  # n-grams never cross a pad
                seen.update(g.tobytes() for g in _ngrams(part[part != pad_id], ngram))
        out[i] = np.mean([g.tobytes() in seen for g in grams])
    return out


@dataclass(frozen=True)
class DocumentOverlap:
    """One held-out document: ``document`` (corpus index), ``overlap`` (mean over its chunks),
    ``chunks (c,)`` (each chunk's overlap, ``nan`` where undefined)."""

    document: int
    overlap: float
    chunks: np.ndarray


def document_overlap(db, held=None, cfg: OverlapConfig | None = None, pad_id: int | None = None,
                     k: int | None = None) -> list[DocumentOverlap]:
    """The overlap of every held-out document of ``db`` with the ``k`` (default all) neighbours its
    chunks retrieve (``held``: :func:`~nvrepro.retro.data.heldout_chunks`, computed if ``None``)."""
    from nvrepro.retro.data import database_pad_id, heldout_chunks

    cfg = cfg or OverlapConfig()
    held = heldout_chunks(db) if held is None else held
    pad = pad_id if pad_id is not None else database_pad_id(db)
    rows = held.rows if k is None else held.rows[:, :k]
    per_chunk = chunk_overlap(held.chunks, db.neighbour_tokens(rows, pad), cfg.ngram, pad)
    out = []
    for i, doc in enumerate(held.documents):
        values = per_chunk[held.of(i)]
        defined = values[~np.isnan(values)]
        out.append(DocumentOverlap(doc, float(defined.mean()) if len(defined) else float("nan"), values))
    return out


def split_by_overlap(overlaps: list[DocumentOverlap], threshold: float) -> tuple[list[int], list[int]]:
    """``(with, without)``: corpus indices of the documents whose overlap is ``>= threshold`` and of
    the rest (an undefined overlap counts as without)."""
    require(0.0 < threshold <= 1.0, "threshold", f"must be in (0, 1], got {threshold!r}")
    with_dup = [o.document for o in overlaps if o.overlap >= threshold]
    return with_dup, [o.document for o in overlaps if not o.overlap >= threshold]
