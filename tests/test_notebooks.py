"""The notebooks themselves: clean on disk, parametrisable, and runnable in the smoke profile.

Executed with the same runner as ``nvrepro reproduce`` (:mod:`nvrepro.core.repro`).
"""

from __future__ import annotations

import ast
import re
import warnings
from pathlib import Path

import nbformat
import pytest

from nvrepro.core import repro

ROOT = repro.REPO_ROOT
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*/[0-9][0-9]_*.ipynb"))
IDS = [f"{p.parent.name}/{p.name}" for p in NOTEBOOKS]
SMOKE_SECONDS = 60
# A hung cell fails the test after this long instead of stalling CI until its own limit.
CELL_TIMEOUT = 300


def _figures_snapshot() -> dict[Path, float]:
    return {p: p.stat().st_mtime for p in (ROOT / "figures").rglob("*") if p.is_file()}


def test_notebooks_exist():
    assert NOTEBOOKS, "no notebooks found under notebooks/<track>/NN_*.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_clean(path):
    """Committed notebooks carry no outputs and no execution counts."""
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} have outputs or execution counts; strip them"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_has_parameters_cell(path):
    """The first code cell is tagged `parameters` and assigns profile, seed and out_dir."""
    nb = nbformat.read(path, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert "parameters" in first.metadata.get("tags", []), f"{path.name}: first code cell not tagged 'parameters'"
    assigned = {t.id for node in ast.parse(first.source).body if isinstance(node, ast.Assign)
                for t in node.targets if isinstance(t, ast.Name)}
    missing = {"profile", "seed", "out_dir"} - assigned
    assert not missing, f"{path.name}: parameters cell does not define {sorted(missing)}"
    namespace: dict = {}
    exec(first.source, namespace)  # noqa: S102 - our own notebook's literal assignments
    assert namespace["profile"] == "smoke", "the committed default profile must be the cheap one"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs_in_smoke_profile(path, tmp_path):
    """Runs top to bottom in a fresh kernel, under a minute, without touching figures/."""
    before = _figures_snapshot()
    result = repro.run_notebook(path, tmp_path / path.name, profile="smoke", seed=0,
                                out_dir=tmp_path / "figures", track=path.parent.name,
                                timeout=CELL_TIMEOUT)
    assert result.ok, result.error
    if result.seconds > SMOKE_SECONDS:  # a budget, not a pass/fail timing: machines differ
        warnings.warn(f"{path.name} took {result.seconds:.0f}s in the smoke profile "
                      f"(budget {SMOKE_SECONDS}s)", stacklevel=1)
    assert _figures_snapshot() == before, "a smoke run wrote into figures/"


def _write_notebook(path: Path, sources: list[str]) -> None:
    nb = nbformat.v4.new_notebook()
    cells = [nbformat.v4.new_code_cell(src) for src in sources]
    cells[0].metadata["tags"] = ["parameters"]
    nb.cells = cells
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def test_runner_reports_failing_cell(tmp_path, capsys):
    """A broken notebook: non-zero exit, the failing cell named; the other notebooks still run."""
    nbs = tmp_path / "notebooks"
    params = 'profile = "smoke"\nseed = 0\nout_dir = "."'
    _write_notebook(nbs / "demo" / "01_broken.ipynb", [params, "x = 1", "y = x + 1\nraise ValueError('boom')"])
    _write_notebook(nbs / "demo" / "02_fine.ipynb", [params, "from pathlib import Path\nassert Path(out_dir).is_absolute()"])
    argv = ["--notebooks-dir", str(nbs), "--build-dir", str(tmp_path / "build"),
            "--figures-dir", str(tmp_path / "figures")]
    assert repro.main(argv) != 0
    out = capsys.readouterr().out
    assert "cell 2" in out and "y = x + 1" in out and "ValueError: boom" in out, out
    assert re.search(r"demo/02_fine\.ipynb\s+ok", out), out
    assert (tmp_path / "build" / "smoke" / "demo" / "02_fine.ipynb").exists()
    assert not (tmp_path / "figures").exists(), "smoke profile wrote into the figures folder"

    results = repro.reproduce("smoke", notebooks_dir=nbs, build_dir=tmp_path / "build", fail_fast=True,
                              progress=False)
    assert [r.status for r in results] == ["failed"]


def test_runner_rejects_unknown_track(tmp_path, capsys):
    assert repro.main(["--only", "no-such-track"]) == 2
    err = capsys.readouterr().err
    assert "no-such-track" in err and "hybrid" in err, err


def test_paper_profile_writes_to_figures_dir(tmp_path):
    """Paper profile: out_dir is <figures-dir>/<track> (checked with a tiny notebook)."""
    nbs = tmp_path / "notebooks"
    _write_notebook(nbs / "demo" / "01_write.ipynb",
                    ['profile = "smoke"\nseed = 0\nout_dir = "."',
                     "from pathlib import Path\nPath(out_dir).mkdir(parents=True, exist_ok=True)\n"
                     "(Path(out_dir) / f'{profile}-{seed}.txt').write_text('x')"])
    results = repro.reproduce("paper", notebooks_dir=nbs, build_dir=tmp_path / "build",
                              figures_dir=tmp_path / "figures", progress=False)
    assert all(r.ok for r in results), [r.error for r in results]
    assert (tmp_path / "figures" / "demo" / "paper-0.txt").exists()
