"""One place knows where the checkout keeps things (nvrepro.core.tooling.paths)."""

import re
import subprocess
import sys
import zipfile

from nvrepro.core.tooling import paths

PACKAGE = paths.PACKAGE_DIR


def test_paths_point_at_the_checkout():
    assert (paths.REPO_ROOT / "pyproject.toml").is_file()
    assert (paths.CONFIGS_DIR / "hybrid" / "toy_hybrid.yaml").is_file()
    assert paths.FIGURES_DIR == paths.REPO_ROOT / "figures" and paths.BUILD_DIR == paths.REPO_ROOT / "build"


def test_no_other_module_counts_parent_folders_to_find_the_checkout():
    offenders = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                 if p.name != "paths.py" and re.search(r"__file__\).*parents\[\d\]", p.read_text())]
    assert not offenders, f"use nvrepro.core.tooling.paths instead in {offenders}"


def test_an_installed_wheel_carries_every_config(tmp_path):
    """Configs are found without an editable install: the wheel holds them as package data."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path), str(paths.REPO_ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("nvrepro-*.whl")
    shipped = {n.removeprefix("nvrepro/configs/") for n in zipfile.ZipFile(wheel).namelist()
               if n.startswith("nvrepro/configs/")}
    in_checkout = {p.relative_to(paths.REPO_ROOT / "configs").as_posix()
                   for p in (paths.REPO_ROOT / "configs").rglob("*.yaml")}
    assert shipped == in_checkout
    assert (paths.PACKAGE_DIR / "configs").resolve() == (paths.REPO_ROOT / "configs").resolve()
