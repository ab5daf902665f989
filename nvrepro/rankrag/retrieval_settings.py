"""The retrieval side of a RankRAG run as a config: corpus, embedder, faiss index, ``n`` and ``k``.

RankRAG's inference (arXiv 2407.02485 Sec. 4.2) retrieves the top ``n`` passages of a corpus with a
dense retriever, re-ranks them, and keeps ``k``. The toy's settings sit in
``configs/rankrag/toy_retrieval.yaml`` (the notebooks' values), the full-scale ones in
``configs/rankrag/paper_retrieval.yaml`` (a Wikipedia passage dump prepared offline as an
``hf_disk`` dataset, ``n`` and ``k`` of the paper). :func:`build_retriever` turns either into a
:class:`~nvrepro.core.retrieval.passages.PassageRetriever`; past one machine's memory (tens of
millions of passages), the same factory strings run on a sharded or GPU faiss index.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from nvrepro.core.tooling.validation import ConfigError, dataclass_from_dict, require, require_positive_int


@dataclass(frozen=True)
class RetrievalSettings:
    """``corpus`` (``load_corpus``'s name: ``hf_disk``, ``files``, ...) at ``paths`` with passages in
    ``text_field``; ``embedder_dir``: a sentence-transformers directory (``None``: the packaged
    MiniLM); ``factory``/``nprobe``: the faiss index; ``n`` retrieved, ``k`` kept (``k <= n``)."""

    corpus: str = "hf_disk"
    paths: list[str] = field(default_factory=list)
    text_field: str = "text"
    embedder_dir: str | None = None
    factory: str = "Flat"
    nprobe: int | None = None
    n: int = 20
    k: int = 1

    def __post_init__(self) -> None:
        from nvrepro.core.data.corpus import CORPORA

        require(self.corpus in CORPORA, "retrieval.corpus", f"must be one of {CORPORA}, got {self.corpus!r}")
        require_positive_int(self.n, "retrieval.n")
        require_positive_int(self.k, "retrieval.k")
        if self.k > self.n:
            raise ConfigError(f"retrieval.k: cannot keep {self.k} of n = {self.n} retrieved passages; need k <= n")
        if self.nprobe is not None:
            require_positive_int(self.nprobe, "retrieval.nprobe")

    def to_dict(self) -> dict:
        return asdict(self)


def load_retrieval_settings(path: str | Path) -> RetrievalSettings:
    """The ``retrieval:`` section of a YAML file, validated (errors name the field)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"retrieval config: {path} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    require(isinstance(data, dict) and "retrieval" in data, "retrieval", f"{path} has no 'retrieval:' section")
    return dataclass_from_dict(RetrievalSettings, data["retrieval"], "retrieval")


def build_retriever(settings: RetrievalSettings, *, cache_dir: str | Path | None = None, progress: bool = False):
    """The :class:`~nvrepro.core.retrieval.passages.PassageRetriever` of ``settings``: the corpus
    loaded, embedded (vectors cached in ``cache_dir``) and indexed."""
    from nvrepro.core.data.corpus import load_corpus
    from nvrepro.core.retrieval.embedder import SentenceEmbedder
    from nvrepro.core.retrieval.passages import PassageRetriever

    passages = load_corpus(settings.corpus, settings.paths or None, text_field=settings.text_field)
    embedder = SentenceEmbedder(settings.embedder_dir)
    return PassageRetriever(passages, embedder, settings.factory, cache_dir=cache_dir, nprobe=settings.nprobe,
                            progress=progress)
