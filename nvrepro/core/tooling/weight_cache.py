"""Trained weights cached under ``build/`` (git-ignored), keyed by everything that determines them.

A notebook's paper profile may train for many minutes; rerunning it should not. An experiment
names what made its weights (YAML text, overrides, seed, steps, ...) and :func:`cache_key`
hashes them; :func:`cache_path` adds the version of the code that trains (:func:`code_version`:
the nvrepro source that does the work, comments and docstrings aside) and torch's version, so a
bug fix never reuses weights trained before it. :func:`load_cached` / :func:`save_cached` read and
write a payload of plain containers, tensors and numbers, loaded with
``torch.load(..., weights_only=True)`` (no pickled code runs). A fresh clone has no cache and
simply trains.

Only the paper profile uses the cache (:func:`use_cache`): smoke runs (tests, CI, a student's
first run) neither read nor write it, so they never depend on what ``build/`` holds.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
import os
from pathlib import Path
from typing import Any, Sequence

import torch

from nvrepro.core.tooling.paths import BUILD_DIR

# The code a cached training depends on, unless the caller names less: all of nvrepro.
ALL_CODE = ("nvrepro",)


def cache_key(*parts: Any) -> str:
    """16 hex digits of the SHA-256 of ``parts`` as sorted JSON (non-JSON values by ``str``)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def use_cache(profile: str, requested: bool | None = None) -> bool:
    """Whether a run in ``profile`` reads and writes the trained-weights cache.

    ``paper``: ``requested`` (default ``True``). Any other profile: never; asking for the cache
    there raises ``ValueError``, since smoke results must not depend on what ``build/`` holds.
    """
    if profile == "paper":
        return True if requested is None else bool(requested)
    if requested:
        raise ValueError(f"cache: only the paper profile uses the trained-weights cache, "
                         f"not profile {profile!r}")
    return False


def _source_fingerprint(path: Path) -> str:
    """The file's code as an AST dump without docstrings: comments, docstrings, blank lines and
    line numbers do not change it; any change to what runs does."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, include_attributes=False)


@functools.lru_cache(maxsize=None)
def _package_version(package: str) -> str:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ValueError(f"code: no importable package or module {package!r}")
    root = Path(spec.origin)
    files = sorted(root.parent.rglob("*.py")) if root.name == "__init__.py" else [root]
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.relative_to(root.parent).as_posix().encode())
        digest.update(_source_fingerprint(f).encode())
    return digest.hexdigest()[:16]


def code_version(packages: Sequence[str] = ALL_CODE) -> str:
    """16 hex digits that change whenever the code of ``packages`` (dotted names of nvrepro
    packages or modules, their submodules included) changes, and not for edits to comments or
    docstrings. Computed once per process."""
    return cache_key(*[(p, _package_version(p)) for p in sorted(packages)])


def cache_path(folder: str | Path, name: str, *parts: Any, code: Sequence[str] = ALL_CODE) -> Path:
    """``folder/<name>-<key>.pt``, ``key`` hashing ``parts``, :func:`code_version` of ``code``
    (the packages whose code does the training) and torch's version.

    A relative ``folder`` is taken under ``build/``.
    """
    folder = Path(folder)
    key = cache_key(*parts, {"code": code_version(code), "torch": torch.__version__})
    return (folder if folder.is_absolute() else BUILD_DIR / folder) / f"{name}-{key}.pt"


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
