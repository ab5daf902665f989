"""Shared pieces of the RETRO track's tests: a tiny database of eight short documents."""

import pytest
import yaml

DOCS = ["The Lord is my shepherd; I shall not want. He makes me lie down in green pastures.",
        "The LORD is my shepherd, I lack nothing. He lets me lie down in green meadows.",
        "In the beginning was the Word, and the Word was with God, and the Word was God.",
        "Stock markets fell on Monday as investors sold shares in technology companies.",
        "Short one.",
        "Exactly thirty-two bytes long!!!",
        "The cat sat on the mat and looked at the dog, who sat on the rug by the door.",
        "Rain is expected over the hills tonight, clearing by the morning with light winds."]


def write_db_yaml(folder, docs=DOCS, **database) -> str:
    """Write ``docs`` as .txt files and a YAML whose ``database`` section indexes them (byte tokens,
    chunk_len 8, k 2, Flat, two of eight documents held out); ``database`` overrides keys."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, d in enumerate(docs):
        (folder / f"doc{i}.txt").write_text(d)
        paths.append(str(folder / f"doc{i}.txt"))
    section = dict(corpus="files", paths=paths, tokenizer="byte", chunk_len=8, factory="Flat", k=2, extra=16,
                   heldout_fraction=0.25, recall_queries=8, recall_k=3, seed=0, out_dir=str(folder / "db"))
    section.update(database)
    path = folder / "db.yaml"
    path.write_text(yaml.safe_dump({"database": section}))
    return str(path)


@pytest.fixture(scope="session")
def tiny_db_yaml(tmp_path_factory):
    """Path of the YAML of the tiny database (built on first use by whoever opens it)."""
    return write_db_yaml(tmp_path_factory.mktemp("tiny_db"))
