"""One place knows where the checkout keeps things (nvrepro.core.tooling.paths)."""

import pathlib
import re

from nvrepro.core.tooling import paths

PACKAGE = pathlib.Path(paths.__file__).resolve().parents[1]


def test_paths_point_at_the_checkout():
    assert (paths.REPO_ROOT / "pyproject.toml").is_file()
    assert (paths.CONFIGS_DIR / "hybrid" / "toy_hybrid.yaml").is_file()
    assert paths.FIGURES_DIR == paths.REPO_ROOT / "figures" and paths.BUILD_DIR == paths.REPO_ROOT / "build"


def test_no_other_module_counts_parent_folders_to_find_the_checkout():
    offenders = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                 if p.name != "paths.py" and re.search(r"__file__\).*parents\[\d\]", p.read_text())]
    assert not offenders, f"use nvrepro.core.tooling.paths instead in {offenders}"
