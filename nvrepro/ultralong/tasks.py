"""Long-context probes, generated deterministically: passkey / needle-in-a-haystack and three
RULER-style tasks (Hsieh et al. 2024, arXiv:2404.06654, Sec. 3).

Every generator returns a :class:`TaskExample`: ``prompt_ids`` (what the model reads) and
``answer_ids`` (what greedy decoding must produce), exactly ``length`` tokens together, built by
concatenating separately tokenized pieces (so the length is exact for any tokenizer). The same
``(task, length, seed, index)`` always gives the same example.

* ``passkey``: the passkey prompt of :func:`nvrepro.core.data.passkey_example` (intro, repeated
  filler, one 5-digit key at a chosen depth), with the key written ``#12345`` and the question
  ending in ``#`` -- the needle-in-a-haystack probe of the length x depth heatmaps.
* ``multikey`` (RULER "multi-key NIAH"): ``num_keys`` needles "The special magic number for
  <word> is <m><digits>." at random depths, each with its own marker byte ``<m>`` from
  :data:`MARKERS`; the question asks for one key's number and ends with that key's marker.

**Toy simplification (markers).** At byte level the byte before a value (a space) occurs
everywhere, so retrieving "The pass key is 12345" means matching the multi-byte key "pass key
is ": a 4-layer byte model trained for minutes never learned it (every probe 0%, even at the
trained length). A marker byte that occurs nowhere else in the prompt (``#``, ``$``, ... are
absent from the fillers and the bible corpus) makes the key unique at the byte level, so the
one-token induction (find the earlier copy of the last token, copy what followed) that short
copy documents train in a few hundred steps answers the probe. The tasks still measure what
the paper's do -- find one fact at any depth, at lengths past the trained one -- with the key
made easy; variable tracking and common words keep their formats (multi-hop and counting).
* ``variable_tracking`` (RULER "VT"): a chain ``VAR A = 12345.``, ``VAR B = VAR A.``, ... of
  ``num_hops`` assignments plus a distractor chain with another value, spread through the filler;
  the answer lists the chain's variables in order.
* ``common_words`` (RULER "CWE"): a list of made-up words where ``num_common`` words appear
  ``freq_common + num_common - 1``, ..., ``freq_common`` times (distinct counts, so the ranking
  is unique) and every other word ``freq_uncommon`` times; the answer lists the common words,
  most frequent first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nvrepro.core.tooling.validation import ConfigError
from nvrepro.core.data.synthetic import PASSKEY_FILLER, PASSKEY_INTRO

TASKS = ("passkey", "multikey", "variable_tracking", "common_words")
RULER_TASKS = ("multikey", "variable_tracking", "common_words")

MULTIKEY_INTRO = ("Some special magic numbers are hidden inside a lot of irrelevant text. "
                  "Find them and memorize them.\n")
MULTIKEY_NEEDLE = "The special magic number for {key} is {marker}{value}. "
MULTIKEY_QUESTION = ("\nWhat is the special magic number for {key}? "
                     "The special magic number for {key} is {marker}")
PASSKEY_MARKER = "#"
PASSKEY_NEEDLE = "The pass key is #{key}. Remember it. #{key} is the pass key. "
PASSKEY_QUESTION = "\nWhat is the pass key? The pass key is #"
# Marker bytes: none occurs in PASSKEY_FILLER or in the bible corpus of the toy runs.
MARKERS = "#$%@*+=~^|<>"
KEY_WORDS = ("apple", "river", "stone", "cloud", "tiger", "maple", "ocean", "piano", "lemon",
             "eagle", "candle", "forest", "silver", "garden", "rocket", "violet", "harbor",
             "pepper", "meadow", "falcon", "copper", "willow", "amber", "canyon")
VT_INTRO = "Memorize and track the chain of variable assignments hidden in the following text.\n"
VT_FIRST = "VAR {name} = {value}. "
VT_HOP = "VAR {name} = VAR {prev}. "
VT_QUESTION = "\nFind all variables that are assigned the value {value} in the text above. Answer: "
CWE_INTRO = "Below is a list of words. Some of them appear more often than the others.\n"
CWE_QUESTION = "\nWhat are the {k} most common words in the list above? Answer: "
_CONSONANTS, _VOWELS = "bdfgklmnprstvz", "aeiou"


@dataclass(frozen=True)
class TaskExample:
    """One probe: the model reads ``prompt_ids`` and must continue with ``answer_ids``."""

    task: str
    prompt_ids: list[int]
    answer_ids: list[int]
    answer: str
    meta: dict = field(default_factory=dict)

    @property
    def length(self) -> int:
        return len(self.prompt_ids) + len(self.answer_ids)


def _default_tokenizer(tokenizer):
    from nvrepro.core.data.tokenizers import ByteTokenizer

    return ByteTokenizer() if tokenizer is None else tokenizer


def _digits(rng: np.random.Generator, n: int = 5) -> str:
    return str(int(rng.integers(10 ** (n - 1), 10**n)))


def _haystack(filler: list[int], budget: int, needles: list[list[int]], depths: list[float]
              ) -> tuple[list[int], list[int]]:
    """``budget`` filler tokens with each needle inserted ``round(depth * budget)`` filler tokens
    in (needles kept in the given order). Returns the tokens and each needle's start index."""
    base = np.resize(np.asarray(filler, dtype=np.int64), budget).tolist()
    cuts = [int(round(d * budget)) for d in depths]
    out, starts, prev = [], [], 0
    for cut, needle in zip(cuts, needles):
        out += base[prev:cut]
        starts.append(len(out))
        out += needle
        prev = cut
    return out + base[prev:], starts


def _question_and_answer(tok, question: str, answer: str) -> tuple[list[int], list[int]]:
    """``question + answer`` encoded as one text, split where the answer starts: the question's
    ids are the longest prefix that decodes to a prefix of ``question``.

    A subword tokenizer merges a space with the word after it (``" ZIEQR"``), so encoding the
    answer alone would spell its first word in ids that the prompt never uses; encoded together,
    the answer's first id may start with the question's trailing space, exactly as the words appear
    earlier in the prompt. For the byte tokenizer the split is the plain concatenation."""
    ids = tok.encode(question + answer)
    k = 0
    while k < len(ids) and question.startswith(tok.decode(ids[:k + 1])):
        k += 1
    if k == len(ids):
        raise ConfigError(f"answer: {answer!r} adds no token after the question with this tokenizer")
    return ids[:k], ids[k:]


def _budget(length: int, fixed: int, task: str) -> int:
    if length - fixed < 0:
        raise ConfigError(f"length: {length} tokens is too short for a {task} example with this "
                          f"tokenizer; need at least {fixed}")
    return length - fixed


def passkey(length: int, depth: float, seed=0, tokenizer=None, num_digits: int = 5) -> TaskExample:
    """Passkey retrieval at ``depth`` in [0, 1]; ``length`` tokens including the answer.

    Laid out as :func:`nvrepro.core.data.passkey_example` (intro, filler with the needle
    ``round(depth * F)`` of its ``F`` tokens in, question, answer), with the marked needle."""
    if not 0.0 <= float(depth) <= 1.0:
        raise ConfigError(f"depth: must be in [0, 1], got {depth!r}")
    tok = _default_tokenizer(tokenizer)
    key = _digits(np.random.default_rng(seed), num_digits)
    intro, needle = tok.encode(PASSKEY_INTRO), tok.encode(PASSKEY_NEEDLE.format(key=key))
    question, answer = _question_and_answer(tok, PASSKEY_QUESTION, key)
    budget = _budget(length, len(intro) + len(needle) + len(question) + len(answer), "passkey")
    hay, (start,) = _haystack(tok.encode(PASSKEY_FILLER), budget, [needle], [float(depth)])
    return TaskExample("passkey", intro + hay + question, answer, key,
                       {"depth": float(depth), "needle_start": len(intro) + start})


def multikey(length: int, seed=0, tokenizer=None, num_keys: int = 4, depth: float | None = None
             ) -> TaskExample:
    """Multi-key needle in a haystack; ``depth`` (optional) places the queried needle."""
    if not 1 <= num_keys <= min(len(KEY_WORDS), len(MARKERS)):
        raise ConfigError(f"num_keys: must be in [1, {min(len(KEY_WORDS), len(MARKERS))}], got {num_keys}")
    tok = _default_tokenizer(tokenizer)
    rng = np.random.default_rng(seed)
    keys = [KEY_WORDS[i] for i in rng.choice(len(KEY_WORDS), size=num_keys, replace=False)]
    values = [_digits(rng) for _ in keys]
    marks = [MARKERS[i] for i in rng.choice(len(MARKERS), size=num_keys, replace=False)]
    depths = sorted(rng.uniform(0, 1, size=num_keys).tolist())
    q = int(rng.integers(num_keys))
    if depth is not None:
        depths[q] = float(depth)
        order = np.argsort(depths, kind="stable")
        keys, values, depths = [keys[i] for i in order], [values[i] for i in order], [depths[i] for i in order]
        marks = [marks[i] for i in order]
        q = int(np.flatnonzero(order == q)[0])
    needles = [tok.encode(MULTIKEY_NEEDLE.format(key=k, marker=m, value=v)) for k, m, v in zip(keys, marks, values)]
    intro = tok.encode(MULTIKEY_INTRO)
    question, answer = _question_and_answer(tok, MULTIKEY_QUESTION.format(key=keys[q], marker=marks[q]), values[q])
    fixed = len(intro) + sum(map(len, needles)) + len(question) + len(answer)
    hay, _ = _haystack(tok.encode(PASSKEY_FILLER), _budget(length, fixed, "multikey"), needles, depths)
    return TaskExample("multikey", intro + hay + question, answer, values[q],
                       {"key": keys[q], "depth": depths[q], "num_keys": num_keys})


def _var_names(rng: np.random.Generator, n: int) -> list[str]:
    names: list[str] = []
    while len(names) < n:
        name = "".join(chr(65 + int(c)) for c in rng.integers(26, size=5))
        if name not in names:
            names.append(name)
    return names


def variable_tracking(length: int, seed=0, tokenizer=None, num_hops: int = 3,
                      num_chains: int = 2) -> TaskExample:
    """Variable tracking: the first of ``num_chains`` chains of ``num_hops`` assignments is asked."""
    if num_hops < 1 or num_chains < 1:
        raise ConfigError(f"num_hops/num_chains: must be >= 1, got {num_hops} and {num_chains}")
    tok = _default_tokenizer(tokenizer)
    rng = np.random.default_rng(seed)
    names = _var_names(rng, num_hops * num_chains)
    values: list[str] = []
    while len(values) < num_chains:
        v = _digits(rng)
        if v not in values:
            values.append(v)
    chains = [names[c * num_hops:(c + 1) * num_hops] for c in range(num_chains)]
    statements = []  # (chain, hop, text): hop h of every chain before hop h + 1 of any
    for c, chain in enumerate(chains):
        for h, name in enumerate(chain):
            text = VT_FIRST.format(name=name, value=values[c]) if h == 0 else \
                VT_HOP.format(name=name, prev=chain[h - 1])
            statements.append((h, c, text))
    # Place statements at sorted random depths, each chain's hops in order.
    order = sorted(statements, key=lambda s: (s[0], rng.random()))
    depths = sorted(rng.uniform(0, 1, size=len(order)).tolist())
    needles = [tok.encode(text) for _, _, text in order]
    answer_text = " ".join(chains[0])
    intro = tok.encode(VT_INTRO)
    question, answer = _question_and_answer(tok, VT_QUESTION.format(value=values[0]), answer_text)
    fixed = len(intro) + sum(map(len, needles)) + len(question) + len(answer)
    hay, _ = _haystack(tok.encode(PASSKEY_FILLER), _budget(length, fixed, "variable_tracking"), needles, depths)
    return TaskExample("variable_tracking", intro + hay + question, answer, answer_text,
                       {"value": values[0], "num_hops": num_hops, "num_chains": num_chains})


def _made_up_word(rng: np.random.Generator) -> str:
    """A pronounceable made-up word of 2-3 consonant-vowel syllables ("bako", "mirute")."""
    return "".join(_CONSONANTS[int(rng.integers(len(_CONSONANTS)))] + _VOWELS[int(rng.integers(len(_VOWELS)))]
                   for _ in range(int(rng.integers(2, 4))))


def common_words(length: int, seed=0, tokenizer=None, num_common: int = 3, freq_common: int = 4,
                 freq_uncommon: int = 1) -> TaskExample:
    """Common-word extraction; the list fills the context, padded with spaces to the exact length."""
    if not (num_common >= 1 and freq_common > freq_uncommon >= 1):
        raise ConfigError(f"freq_common: need num_common >= 1 and freq_common > freq_uncommon >= 1, "
                          f"got {num_common}, {freq_common}, {freq_uncommon}")
    tok = _default_tokenizer(tokenizer)
    rng = np.random.default_rng(seed)
    intro = tok.encode(CWE_INTRO)
    pool: list[str] = []
    while len(pool) < num_common:
        w = _made_up_word(rng)
        if w not in pool:
            pool.append(w)
    common = {w: freq_common + num_common - 1 - j for j, w in enumerate(pool)}  # distinct counts
    answer_text = " ".join(pool)
    question, answer = _question_and_answer(tok, CWE_QUESTION.format(k=num_common), answer_text)
    budget = _budget(length, len(intro) + len(question) + len(answer), "common_words")
    occurrences = [w for w, n in common.items() for _ in range(n)]
    # A word costs what it takes inside the list, space in front (a subword tokenizer merges them).
    used = sum(len(tok.encode(" " + w)) for w in occurrences)
    if used > budget:
        raise ConfigError(f"length: {length} tokens cannot hold {len(occurrences)} occurrences of the "
                          f"common words; raise length or lower freq_common/num_common")
    seen = set(pool)
    while True:  # new uncommon words, freq_uncommon times each, while they fit
        w = _made_up_word(rng)
        if w in seen:
            continue
        seen.add(w)
        cost = freq_uncommon * len(tok.encode(" " + w))
        if used + cost > budget:
            break
        occurrences += [w] * freq_uncommon
        used += cost
    words = [occurrences[i] for i in rng.permutation(len(occurrences))]
    # One text, so the words after the first are spelled as in the answer (" bako").
    body = tok.encode(" ".join(words) + " ")
    while len(body) > budget:  # a subword tokenizer may spell the first word longer than priced
        drop = max(i for i, w in enumerate(words) if w not in common)
        words.pop(drop)
        body = tok.encode(" ".join(words) + " ")
    pad = np.resize(np.asarray(tok.encode(" "), dtype=np.int64), budget - len(body)).tolist()
    return TaskExample("common_words", intro + body + pad + question, answer, answer_text,
                       {"counts": common, "num_words": len(words)})


_MAKERS = {"passkey": passkey, "multikey": multikey, "variable_tracking": variable_tracking,
           "common_words": common_words}


def make_examples(task: str, length: int, num_examples: int, seed: int = 0, tokenizer=None,
                  **kwargs) -> list[TaskExample]:
    """``num_examples`` examples of ``task`` at ``length`` tokens; example ``i`` uses the seed
    ``(seed, length, i)``. ``passkey`` needs ``depth=`` (or draws it from the same seed)."""
    if task not in _MAKERS:
        raise ConfigError(f"task: unknown task {task!r}; allowed: {', '.join(TASKS)}")
    out = []
    for i in range(num_examples):
        s = (seed, length, i)
        if task == "passkey" and "depth" not in kwargs:
            out.append(passkey(length, float(np.random.default_rng(s).uniform()), (*s, 1), tokenizer))
        else:
            out.append(_MAKERS[task](length, seed=s, tokenizer=tokenizer, **kwargs))
    return out
