"""Tokenizers: a byte tokenizer and a byte-level BPE trained locally with HF ``tokenizers``.

Both expose one interface, so datamodules and synthetic tasks can take either:

* ``vocab_size``: number of ids the model's embedding must cover,
* ``bos_id``, ``eos_id``, ``pad_id``, ``sep_id``: special ids,
* ``encode(text) -> list[int]`` and ``decode(ids) -> str``.

:class:`ByteTokenizer` maps UTF-8 bytes to ids ``0..255`` and puts the four special ids above
(``256..259``, so ``vocab_size == 260``). Decoding drops special ids and replaces invalid
UTF-8 (``errors="replace"``).

:class:`BPETokenizer` is a byte-level BPE (GPT-2 style pre-tokenization, no prefix space)
trained with :func:`train_bpe_tokenizer`; its special tokens take ids ``0..3``. Training is
deterministic for a given text list and vocab size (verified in the tests). The trained file
can be cached, keyed by vocab size, the corpus and the ``tokenizers`` version
(:func:`build_tokenizer`); the cache lives in ``$NVREPRO_CACHE`` or ``~/.cache/nvrepro``.
:class:`PretrainedTokenizer` reads a pretrained model's ``tokenizer.json`` from local disk (e.g.
Llama-3's, for full-scale fine-tuning), with that model's own special tokens named by the caller.
Nothing here downloads anything.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Iterable, Sequence
from pathlib import Path

from nvrepro.core.tooling.validation import ConfigError

SPECIAL_TOKENS = ("<bos>", "<eos>", "<pad>", "<sep>")
TOKENIZERS = ("byte", "bpe")


def default_cache_dir() -> Path:
    """``$NVREPRO_CACHE`` if set, else ``~/.cache/nvrepro``."""
    env = os.environ.get("NVREPRO_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "nvrepro"


class ByteTokenizer:
    """UTF-8 bytes as ids ``0..255``; ``<bos>, <eos>, <pad>, <sep>`` as ``256..259``."""

    name = "byte"

    def __init__(self) -> None:
        self.bos_id, self.eos_id, self.pad_id, self.sep_id = 256, 257, 258, 259
        self.vocab_size = 260

    @property
    def special_ids(self) -> dict[str, int]:
        return dict(zip(SPECIAL_TOKENS, (self.bos_id, self.eos_id, self.pad_id, self.sep_id)))

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        ids = [int(i) for i in ids]
        if not skip_special:
            names = {v: k for k, v in self.special_ids.items()}
            out, buf = [], []
            for i in ids:
                if i < 256:
                    buf.append(i)
                else:
                    out.append(bytes(buf).decode("utf-8", errors="replace"))
                    out.append(names.get(i, f"<{i}>"))
                    buf = []
            out.append(bytes(buf).decode("utf-8", errors="replace"))
            return "".join(out)
        return bytes(i for i in ids if 0 <= i < 256).decode("utf-8", errors="replace")

    def __repr__(self) -> str:
        return "ByteTokenizer(vocab_size=260)"


class BPETokenizer:
    """Wraps a ``tokenizers.Tokenizer`` (byte-level BPE) with the :class:`ByteTokenizer` interface."""

    name = "bpe"

    def __init__(self, tokenizer) -> None:
        self._tok = tokenizer
        ids = [tokenizer.token_to_id(t) for t in SPECIAL_TOKENS]
        if any(i is None for i in ids):
            raise ValueError(f"tokenizer: BPE file lacks special tokens {SPECIAL_TOKENS}")
        self.bos_id, self.eos_id, self.pad_id, self.sep_id = ids

    @property
    def vocab_size(self) -> int:
        """Actual vocabulary size (at most the size asked of the trainer)."""
        return self._tok.get_vocab_size(with_added_tokens=True)

    @property
    def special_ids(self) -> dict[str, int]:
        return dict(zip(SPECIAL_TOKENS, (self.bos_id, self.eos_id, self.pad_id, self.sep_id)))

    @property
    def backend(self):
        """The underlying ``tokenizers.Tokenizer``."""
        return self._tok

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self._tok.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=skip_special)

    def save(self, path: str | os.PathLike) -> None:
        """Write ``tokenizer.json`` to ``path`` (a file path, or a directory to put it in)."""
        path = Path(path)
        if path.is_dir():
            path = path / "tokenizer.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        self._tok.save(str(tmp))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "BPETokenizer":
        """Read a ``tokenizer.json`` (a file path, or a directory holding it)."""
        from tokenizers import Tokenizer

        path = Path(path)
        if path.is_dir():
            path = path / "tokenizer.json"
        if not path.is_file():
            raise FileNotFoundError(f"tokenizer: no BPE tokenizer file at {path}")
        return cls(Tokenizer.from_file(str(path)))

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size})"


class PretrainedTokenizer(BPETokenizer):
    """A pretrained model's ``tokenizer.json`` (e.g. Llama-3's, copied to local disk) with the
    :class:`ByteTokenizer` interface: its own special tokens named by the caller (``eos``; ``pad``
    defaults to ``eos``; ``bos`` and ``sep`` may be ``None``). For full-scale fine-tuning, where the
    model's vocabulary is fixed by its checkpoint."""

    name = "pretrained"

    def __init__(self, path: str | os.PathLike, *, eos: str, pad: str | None = None, bos: str | None = None,
                 sep: str | None = None) -> None:
        from tokenizers import Tokenizer

        path = Path(path)
        if path.is_dir():
            path = path / "tokenizer.json"
        if not path.is_file():
            raise ConfigError(f"tokenizer_path: no tokenizer.json at {path}")
        self._tok = Tokenizer.from_file(str(path))
        ids = {}
        for field, token in (("eos_token", eos), ("pad_token", pad or eos), ("bos_token", bos), ("sep_token", sep)):
            ids[field] = None if token is None else self._tok.token_to_id(token)
            if token is not None and ids[field] is None:
                raise ConfigError(f"{field}: {token!r} is not a token of {path}")
        self.eos_id, self.pad_id, self.bos_id, self.sep_id = (ids[f] for f in ("eos_token", "pad_token", "bos_token",
                                                                                "sep_token"))

    @property
    def special_ids(self) -> dict[str, int]:
        return {k: v for k, v in zip(SPECIAL_TOKENS, (self.bos_id, self.eos_id, self.pad_id, self.sep_id))
                if v is not None}

    def __repr__(self) -> str:
        return f"PretrainedTokenizer(vocab_size={self.vocab_size})"


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int, seed: int = 0,
                        max_texts: int | None = None, min_frequency: int = 2) -> BPETokenizer:
    """Train a byte-level BPE with the special tokens ``<bos>, <eos>, <pad>, <sep>`` (ids 0..3).

    The trainer is deterministic for a fixed text list; ``seed`` only picks the subsample when
    ``max_texts`` is smaller than the number of texts. ``vocab_size`` must exceed the 256 byte
    symbols plus the 4 specials.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if not isinstance(vocab_size, int) or vocab_size <= 260:
        raise ConfigError(f"vocab_size: a byte-level BPE needs vocab_size > 260 (256 bytes + 4 "
                          f"specials), got {vocab_size!r}")
    texts = list(texts)
    if not texts:
        raise ValueError("texts: no texts to train the BPE tokenizer on")
    if max_texts is not None and max_texts < len(texts):
        idx = sorted(random.Random(seed).sample(range(len(texts)), max_texts))
        texts = [texts[i] for i in idx]

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    return BPETokenizer(tok)


def corpus_fingerprint(texts: Iterable[str]) -> str:
    """SHA-256 over the texts (length-prefixed, so boundaries count)."""
    h = hashlib.sha256()
    for t in texts:
        b = t.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def build_tokenizer(name: str = "byte", corpus_texts: Iterable[str] | None = None,
                    vocab_size: int = 1024, cache_dir: str | os.PathLike | None = None,
                    use_cache: bool = True, seed: int = 0):
    """Build the tokenizer called ``name`` (``"byte"`` or ``"bpe"``).

    ``"bpe"`` trains on ``corpus_texts``; with ``use_cache`` the result is stored at
    ``<cache_dir>/bpe/<key>/tokenizer.json`` where ``key`` hashes the vocab size, the corpus,
    the seed and the ``tokenizers`` version, and reused on the next call.
    """
    if name == "byte":
        return ByteTokenizer()
    if name != "bpe":
        raise ConfigError(f"tokenizer: unknown tokenizer {name!r}; allowed: {', '.join(TOKENIZERS)}")
    if corpus_texts is None:
        raise ValueError("corpus_texts: the 'bpe' tokenizer needs texts to train on")
    texts = list(corpus_texts)
    if not use_cache:
        return train_bpe_tokenizer(texts, vocab_size, seed=seed)

    import tokenizers

    key = hashlib.sha256(
        f"v{vocab_size}|s{seed}|tk{tokenizers.__version__}|{corpus_fingerprint(texts)}".encode()
    ).hexdigest()[:24]
    path = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = path / "bpe" / f"{key}-v{vocab_size}" / "tokenizer.json"
    if path.is_file():
        return BPETokenizer.load(path)
    tok = train_bpe_tokenizer(texts, vocab_size, seed=seed)
    tok.save(path)
    return tok
