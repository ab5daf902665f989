"""Retrieval-shaped *training* documents for the toy UltraLong runs, distinct from the evaluation probes.

Llama-3.1, where UltraLong starts, already retrieves a passkey at its trained length; a 4-layer
byte model trained for minutes on bible text does not (notebook 02 measured 0% everywhere). Real
pretraining text is full of "look it up earlier in the context" patterns; this module supplies a
compact dose of them so that copy / induction heads form at toy scale, *without* ever showing the
model an evaluation probe:

* templates, keys and fillers here share no sentence with :mod:`nvrepro.ultralong.tasks` (the
  passkey "The pass key is ...", the "special magic number" needles, ``VAR`` chains, the
  grass-is-green filler): the haystack is a span of a *training* document, the needles are
  :data:`NEEDLES` (``"The secret code is %4821. "``, ...), and the question ends by repeating the
  needle's prefix up to its marker byte, so answering is a lookup that the evaluation tasks also
  need;
* values are 3-6 digit numbers or made-up words; keys are drawn from :data:`KEYS` (disjoint from
  :data:`nvrepro.ultralong.tasks.KEY_WORDS`); every needle of a document has its own marker byte
  from :data:`nvrepro.ultralong.tasks.MARKERS` right before its value (the toy simplification of
  :mod:`nvrepro.ultralong.tasks`: the marker makes the key unique at the byte level). The markers
  are the one thing shared with the probes: they are the "alphabet" of keys, like digits are of
  values; instances (templates, keys, values, haystacks, seeds) are not shared.

Document kinds (:func:`needle_document`, :func:`copy_document`):

* ``needle``: ``INTRO``, a haystack of training text with 1-4 needles at random depths, then a
  question about one of them and its value;
* ``copy``: a list of random letters and digits, then ``"\\nAgain: "`` and the same list: every
  copied token is predictable only by looking back, the cheapest way to grow the copy /
  induction heads that retrieval needs. Short documents first (the first stage of the base's
  curriculum, ``configs/ultralong/toy_base.yaml``) grow them fastest.

:class:`MixtureRows` packs such documents back to back (each followed by the separator) into rows
of ``seq_len + 1`` tokens; row ``i`` is built from the seed ``(seed, i)`` on demand. Every token of a
document is a target (it is pretraining text), or only the answers / copies with
``supervise="answer"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from nvrepro.core.tooling.validation import ConfigError
from nvrepro.core.data.tokenizers import ByteTokenizer
from nvrepro.ultralong.tasks import MARKERS

IGNORE = -100
KINDS = ("needle", "copy")
INTRO = "Read the text and remember the facts in it.\n"
# (needle, question): the question ends with the needle's text up to the value.
NEEDLES = (
    ("The secret code is {m}{v}. ", "What is the secret code? The secret code is {m}"),
    ("The {k} box holds {m}{v}. ", "What does the {k} box hold? The {k} box holds {m}"),
    ("{K}'s lucky number is {m}{v}. ", "What is {K}'s lucky number? {K}'s lucky number is {m}"),
    ("Note: {k} = {m}{v}. ", "Recall {k}. {k} = {m}"),
    ("The door of room {k} opens with {m}{v}. ", "What opens room {k}? The door of room {k} opens with {m}"),
    ("Item {k} costs {m}{v} coins. ", "How much is item {k}? Item {k} costs {m}"),
)
KEYS = ("red", "umber", "olive", "brass", "oak", "north", "south", "iron", "glass", "paper",
        "alder", "birch", "cedar", "delta", "ember", "frost", "gamma", "hazel", "indigo", "jasper",
        "kestrel", "lotus", "mango", "nickel", "onyx", "plum", "quartz", "raven", "sable", "topaz")
COPY_HEAD, COPY_AGAIN = "Copy the list: ", "\nAgain: "
_SYLLABLES_C, _SYLLABLES_V = "bcdfghjklmnprstvwz", "aeiouy"
_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(frozen=True)
class MixtureDoc:
    """One training document: ``ids`` and the indices of its answer (or copied) tokens."""

    kind: str
    ids: list[int]
    answer: list[int]  # token indices into ids
    text: str


def _word(rng: np.random.Generator) -> str:
    return "".join(_SYLLABLES_C[int(rng.integers(len(_SYLLABLES_C)))] + _SYLLABLES_V[int(rng.integers(len(_SYLLABLES_V)))]
                   for _ in range(int(rng.integers(1, 4))))


def _value(rng: np.random.Generator) -> str:
    if rng.random() < 0.75:
        n = int(rng.integers(3, 7))
        return str(int(rng.integers(10 ** (n - 1), 10**n)))
    return _word(rng)


def needle_document(rng: np.random.Generator, length: int, haystack: Sequence[int], tokenizer=None,
                    max_needles: int = 4) -> MixtureDoc | None:
    """A needle document of exactly ``length`` tokens, or ``None`` when its needles do not fit.

    ``haystack`` is a token list (a training document); a random span of it fills the budget left
    by the intro, needles, question and answer (repeated cyclically if short).
    """
    tok = tokenizer or ByteTokenizer()
    n = int(rng.integers(1, max_needles + 1))
    picks = rng.choice(len(NEEDLES), size=n, replace=True)
    keys = rng.choice(len(KEYS), size=n, replace=False)
    marks = rng.choice(len(MARKERS), size=n, replace=False)
    needles, facts, seen = [], [], set()
    for t, k, m in zip(picks.tolist(), keys.tolist(), marks.tolist()):
        key = KEYS[k]
        needle, question = NEEDLES[t]
        if "{k}" not in needle and "{K}" not in needle:
            if t in seen:  # a keyless template only once per document
                continue
            seen.add(t)
        v = _value(rng)
        fmt = dict(k=key, K=key.capitalize(), v=v, m=MARKERS[m])
        needles.append(tok.encode(needle.format(**fmt)))
        facts.append((question.format(**fmt), v))
    q = int(rng.integers(len(facts)))
    intro = tok.encode(INTRO)
    question, answer = tok.encode("\n" + facts[q][0]), tok.encode(facts[q][1])
    budget = length - len(intro) - sum(map(len, needles)) - len(question) - len(answer)
    if budget < 0 or not haystack:
        return None
    start = int(rng.integers(len(haystack)))
    hay = np.resize(np.roll(np.asarray(haystack, dtype=np.int64), -start), budget).tolist()
    cuts = sorted(int(c) for c in rng.integers(0, budget + 1, size=len(needles)))
    body, prev = [], 0
    for cut, needle in zip(cuts, needles):
        body += hay[prev:cut] + needle
        prev = cut
    ids = intro + body + hay[prev:] + question + answer
    return MixtureDoc("needle", ids, list(range(len(ids) - len(answer), len(ids))), tok.decode(ids))


def copy_document(rng: np.random.Generator, length: int, tokenizer=None) -> MixtureDoc | None:
    """A copy document of at most ``length`` tokens (``None`` when not even one item fits): a list of
    random letters and digits (only looking back predicts them), of random length up to half the
    room."""
    tok = tokenizer or ByteTokenizer()
    head, again = tok.encode(COPY_HEAD), tok.encode(COPY_AGAIN)
    room = (length - len(head) - len(again)) // 2
    if room < 1:
        return None
    n = int(rng.integers(1, room + 1))
    items = tok.encode("".join(_CHARS[int(c)] for c in rng.integers(len(_CHARS), size=n)))[:room]
    if not items:
        return None
    ids = head + items + again + items
    return MixtureDoc("copy", ids, list(range(len(ids) - len(items), len(ids))), tok.decode(ids))


class MixtureRows(Dataset):
    """``num_rows`` rows of back-to-back mixture documents (module docstring); deterministic per index.

    Document lengths are uniform in ``[min_len, max_len]``; ``haystacks`` are token lists of
    training documents. ``(B, seq_len)`` batches ``{"input_ids", "labels"}`` (+ ``doc_ids``).
    """

    def __init__(self, num_rows: int, seq_len: int, haystacks: Sequence[Sequence[int]], min_len: int = 96,
                 max_len: int | None = None, kinds: Sequence[str] = KINDS, sep_id: int | None = None,
                 pad_id: int = 258, with_doc_ids: bool = False, seed: int = 0, supervise: str = "all",
                 tokenizer=None):
        self.max_len = seq_len if max_len is None else max_len
        if not 0 < min_len <= self.max_len <= seq_len:
            raise ConfigError(f"mixture lengths: need 0 < min_len={min_len} <= max_len={self.max_len} "
                              f"<= seq_len={seq_len}")
        if supervise not in ("all", "answer"):
            raise ConfigError(f"supervise: must be 'all' or 'answer', got {supervise!r}")
        bad = [k for k in kinds if k not in KINDS]
        if not kinds or bad:
            raise ConfigError(f"mixture kinds: unknown {bad} (allowed: {', '.join(KINDS)})")
        self.haystacks = [list(h) for h in haystacks if len(h) > 0]
        if "needle" in kinds and not self.haystacks:
            raise ConfigError("haystacks: need at least one non-empty training document for needle documents")
        self.num_rows, self.seq_len, self.min_len = num_rows, seq_len, min_len
        self.kinds, self.sep_id, self.pad_id = tuple(kinds), sep_id, pad_id
        self.with_doc_ids, self.seed, self.supervise = with_doc_ids, seed, supervise
        self.tok = tokenizer or ByteTokenizer()

    def __len__(self) -> int:
        return self.num_rows

    def documents(self, i: int) -> list[MixtureDoc]:
        """The documents of row ``i``, in order."""
        rng = np.random.default_rng((self.seed, i))
        extra = 0 if self.sep_id is None else 1
        docs, used, misses = [], 0, 0
        while misses < 8 and self.seq_len + 1 - used - extra >= self.min_len:
            length = int(rng.integers(self.min_len, min(self.max_len, self.seq_len + 1 - used - extra) + 1))
            kind = self.kinds[int(rng.integers(len(self.kinds)))]
            if kind == "needle":
                hay = self.haystacks[int(rng.integers(len(self.haystacks)))]
                doc = needle_document(rng, length, hay, self.tok)
            else:
                doc = copy_document(rng, length, self.tok)
            if doc is None:
                misses += 1
                continue
            docs.append(doc)
            used += len(doc.ids) + extra
        return docs

    def row(self, i: int) -> tuple[list[int], list[bool], list[int]]:
        """``(tokens, supervised, doc)`` of ``seq_len + 1`` entries for row ``i``."""
        toks, sup, owner = [], [], []
        for d, doc in enumerate(self.documents(i)):
            s = [self.supervise == "all"] * len(doc.ids)
            for j in doc.answer:
                s[j] = True
            tail = [] if self.sep_id is None else [self.sep_id]
            toks += doc.ids + tail
            sup += s + [self.supervise == "all"] * len(tail)
            owner += [d] * (len(doc.ids) + len(tail))
        pad = self.seq_len + 1 - len(toks)
        return (toks + [self.pad_id] * pad, sup + [False] * pad, owner + [owner[-1] if owner else 0] * pad)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        toks, sup, doc = self.row(i)
        t = torch.tensor(toks, dtype=torch.long)
        labels = t[1:].clone()
        labels[~torch.tensor(sup[1:])] = IGNORE  # labels[t] is the target token t + 1
        item = {"input_ids": t[:-1], "labels": labels}
        if self.with_doc_ids:
            item["doc_ids"] = torch.tensor(doc[:-1], dtype=torch.long)
        return item


__all__ = ["MixtureRows", "MixtureDoc", "needle_document", "copy_document", "NEEDLES", "KEYS", "KINDS"]
