"""The notebooks themselves: clean on disk, parametrisable, and runnable in the smoke profile.

Executed with the same runner as ``nvrepro reproduce`` (:mod:`nvrepro.core.tooling.runner`).
"""

from __future__ import annotations

import ast
import re
import warnings
from pathlib import Path

import nbformat
import pytest

from nvrepro.core.tooling import runner as repro

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
def test_notebook_cells_have_unique_ids(path):
    """nbformat 4.5 cell ids: JupyterLab and nbdime rely on them; future nbformat requires them."""
    import json

    cells = json.loads(path.read_text())["cells"]
    ids = [c.get("id") for c in cells]
    assert None not in ids, f"{path.name}: cells {[i for i, x in enumerate(ids) if x is None]} have no id"
    assert len(set(ids)) == len(ids), f"{path.name}: duplicate cell ids"


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
    # None: nvrepro.core.tooling.figures.figure_dir picks figures/ for the paper profile and build/
    # otherwise, so running the notebook as committed never overwrites the status of record.
    assert namespace["out_dir"] is None, f"{path.name}: out_dir must default to None"


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


CHATTY_CELL = """
import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset


class Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(64, 64)

    def training_step(self, batch, batch_idx):
        (x,) = batch
        for _ in range(3):
            x = torch.tanh(self.layer(x))
        return x.pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


# Lightning's default bar redraws on every step: several messages a step to the client.
data = DataLoader(TensorDataset(torch.randn(256, 64)), batch_size=1)
L.Trainer(max_steps=2000, logger=False, enable_checkpointing=False, enable_model_summary=False).fit(Tiny(), data)
print("fitted")
"""

# What a flood does to a cell on a busy CPU, made deterministic: the kernel's final "idle" status
# for this cell never reaches the client (ZeroMQ dropped it), although the cell succeeded.
LOSE_IDLE_CELL = """
kernel = get_ipython().kernel
publish = kernel._publish_status


def drop_next_idle(status, channel, parent=None):
    if status == "idle":
        kernel._publish_status = publish
        return
    publish(status, channel, parent)


kernel._publish_status = drop_next_idle
print("this cell succeeded")
"""


def test_runner_survives_a_busy_chatty_cell(tmp_path):
    """A training cell that floods the client with progress messages runs through the runner."""
    nb = tmp_path / "demo" / "01_chatty.ipynb"
    _write_notebook(nb, ['profile = "smoke"\nseed = 0\nout_dir = None', CHATTY_CELL])
    result = repro.run_notebook(nb, tmp_path / "out.ipynb", profile="smoke", seed=0,
                                out_dir=tmp_path / "figures", timeout=CELL_TIMEOUT)
    assert result.ok, result.error


def test_a_cell_whose_idle_status_is_lost_does_not_fail_the_run(tmp_path):
    """papermill's defaults fail such a cell after 4 s ("Timeout waiting for IOPub output", as
    notebook ultralong/02 once did after a long fit); the runner waits, then goes on, and the
    next cell still runs. A failing cell is still a failure (the reply says so)."""
    import papermill as pm
    from nbclient.exceptions import CellTimeoutError

    nb = tmp_path / "demo" / "01_lost.ipynb"
    _write_notebook(nb, ['profile = "smoke"\nseed = 0\nout_dir = None', LOSE_IDLE_CELL, "after = 1 + 1"])
    with pytest.raises(CellTimeoutError, match="IOPub"):
        pm.execute_notebook(str(nb), str(tmp_path / "default.ipynb"), kernel_name="python3", progress_bar=False)
    result = repro.run_notebook(nb, tmp_path / "out.ipynb", profile="smoke", seed=0,
                                out_dir=tmp_path / "figures", timeout=CELL_TIMEOUT, iopub_patience=5)
    assert result.ok, result.error
    _write_notebook(nb, ['profile = "smoke"\nseed = 0\nout_dir = None', LOSE_IDLE_CELL, "raise ValueError('late')"])
    failed = repro.run_notebook(nb, tmp_path / "out.ipynb", profile="smoke", seed=0,
                                out_dir=tmp_path / "figures", timeout=CELL_TIMEOUT, iopub_patience=5)
    assert not failed.ok and "ValueError: late" in failed.error


def test_a_failure_says_how_to_rerun_only_that_notebook(tmp_path, capsys):
    nbs = tmp_path / "notebooks"
    _write_notebook(nbs / "demo" / "01_broken.ipynb", ['profile = "smoke"\nseed = 0\nout_dir = "."', "1 / 0"])
    _write_notebook(nbs / "demo" / "02_fine.ipynb", ['profile = "smoke"\nseed = 0\nout_dir = "."', "x = 1"])
    argv = ["--notebooks-dir", str(nbs), "--build-dir", str(tmp_path / "build"), "--only", "demo/01"]
    assert repro.main(argv) == 1
    out = capsys.readouterr().out
    assert "rerun only it: nvrepro reproduce --profile smoke --only demo/01_broken" in out, out
    assert "02_fine" not in out  # --only TRACK/NOTEBOOK ran just the one


def test_only_names_the_notebooks_when_none_matches(tmp_path):
    nbs = tmp_path / "notebooks"
    _write_notebook(nbs / "demo" / "01_a.ipynb", ['profile = "smoke"\nseed = 0\nout_dir = "."'])
    with pytest.raises(ValueError, match="no notebook of track 'demo' matches; its notebooks: 01_a"):
        repro.discover(nbs, "demo/09")


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
