"""Where this checkout keeps things: the repository root, ``configs/`` (the YAMLs), ``figures/``
(the status of record) and ``build/`` (git-ignored: executed notebooks, smoke figures,
trained-weights caches). Every module finds them here, never by counting parent folders."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
FIGURES_DIR = REPO_ROOT / "figures"
BUILD_DIR = REPO_ROOT / "build"
CONFIGS_DIR = REPO_ROOT / "configs"
