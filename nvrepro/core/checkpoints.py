"""Trained weights cached under ``build/`` (git-ignored), keyed by everything that determines them.

A notebook's paper profile may train for many minutes; rerunning it should not. An experiment
names what made its weights (YAML text, overrides, seed, steps, ...) and :func:`cache_key`
hashes them; :func:`load_cached` / :func:`save_cached` read and write a payload of plain
containers, tensors and numbers, loaded with ``torch.load(..., weights_only=True)`` (no pickled
code runs). Any change to the inputs gives a new key, so a stale file is never reused; a fresh
clone has no cache and simply trains. Smoke runs (tests, CI) should pass ``cache=False`` to
their experiments so that they never depend on what ``build/`` holds.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

BUILD_DIR = Path(__file__).resolve().parents[2] / "build"


def cache_key(*parts: Any) -> str:
    """16 hex digits of the SHA-256 of ``parts`` as sorted JSON (non-JSON values by ``str``)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cache_path(folder: str | Path, name: str, *parts: Any) -> Path:
    """``folder/<name>-<cache_key(*parts)>.pt``; a relative ``folder`` is taken under ``build/``."""
    folder = Path(folder)
    return (folder if folder.is_absolute() else BUILD_DIR / folder) / f"{name}-{cache_key(*parts)}.pt"


def load_cached(path: str | Path) -> dict | None:
    """The payload saved at ``path`` (``weights_only=True``, on CPU), or ``None`` if there is none."""
    path = Path(path)
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


def save_cached(path: str | Path, payload: dict) -> Path:
    """Write ``payload`` (state dicts, lists, numbers, strings) atomically: a killed run leaves
    no half-written file that a later run would load."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path
