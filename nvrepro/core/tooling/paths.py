"""Where this checkout keeps things: the repository root, ``configs/`` (the YAMLs), ``figures/``
(the status of record) and ``build/`` (git-ignored: executed notebooks, smoke figures,
trained-weights caches). Every module finds them here, never by counting parent folders."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
FIGURES_DIR = REPO_ROOT / "figures"
BUILD_DIR = REPO_ROOT / "build"
PACKAGE_DIR = Path(__file__).resolve().parents[2]
# A checkout (editable install) reads the top-level configs/; an installed wheel carries the same
# YAMLs as package data under nvrepro/configs (a link to configs/ in the checkout).
CONFIGS_DIR = REPO_ROOT / "configs" if (REPO_ROOT / "configs").is_dir() else PACKAGE_DIR / "configs"
