"""Data: tokenizers, a local natural-text corpus, synthetic tasks and Lightning datamodules.

Label convention everywhere: ``labels[t]`` is the target of position ``t`` (already shifted;
``-100`` = not supervised). See :mod:`nvrepro.core.data.synthetic`.
"""

from nvrepro.core.data.corpus import CORPORA, load_corpus, split_documents
from nvrepro.core.data.datamodules import SyntheticDataModule, TextDataModule, pack_documents
from nvrepro.core.data.synthetic import (
    IGNORE_INDEX,
    TASKS,
    SyntheticDataset,
    accuracy,
    make_copy,
    make_mqar,
    make_passkey,
    make_task,
    passkey_example,
)
from nvrepro.core.data.tokenizers import (
    SPECIAL_TOKENS,
    TOKENIZERS,
    BPETokenizer,
    ByteTokenizer,
    PretrainedTokenizer,
    build_tokenizer,
    default_cache_dir,
    train_bpe_tokenizer,
)

__all__ = [
    "BPETokenizer", "ByteTokenizer", "CORPORA", "PretrainedTokenizer", "IGNORE_INDEX", "SPECIAL_TOKENS", "TASKS",
    "TOKENIZERS", "SyntheticDataModule", "SyntheticDataset", "TextDataModule", "accuracy",
    "build_tokenizer", "default_cache_dir", "load_corpus", "make_copy", "make_mqar",
    "make_passkey", "make_task", "pack_documents", "passkey_example", "split_documents",
    "train_bpe_tokenizer",
]
