"""save_figure writes the PNG and a valid JSON sidecar with the metrics behind it."""

from __future__ import annotations

import json

import numpy as np
import torch

from nvrepro.core.plotting import new_figure, save_figure, to_jsonable


def test_save_figure_writes_png_and_sidecar(tmp_path):
    fig, ax = new_figure()
    ax.plot([1, 2, 3], [1, 4, 9])
    metrics = {"loss": np.float32(0.5), "curve": np.arange(3), "best": float("inf"),
               "worst": -np.inf, "gap": np.nan, "t": torch.tensor([1.0, 2.0]), "n": np.int64(7)}
    png = save_figure(fig, "demo", tmp_path / "out", metrics=metrics, claim="y grows",
                      held=np.bool_(True), config={"lengths": (1, 2)}, seed=3)
    assert png == tmp_path / "out" / "demo.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    sidecar = json.loads((tmp_path / "out" / "demo.json").read_text())  # strict JSON parses
    assert {"metrics", "claim", "held", "config", "seed", "versions", "created"} <= sidecar.keys()
    assert sidecar["metrics"] == {"loss": 0.5, "curve": [0, 1, 2], "best": "inf", "worst": "-inf",
                                  "gap": "nan", "t": [1.0, 2.0], "n": 7}
    assert sidecar["held"] is True and sidecar["seed"] == 3 and sidecar["claim"] == "y grows"
    assert sidecar["config"] == {"lengths": [1, 2]}
    assert set(sidecar["versions"]) == {"python", "torch", "nvrepro", "numpy", "matplotlib"}
    assert sidecar["created"].endswith("+00:00")


def test_new_figure_grid_and_jsonable():
    fig, axes = new_figure(2, 3)
    assert axes.shape == (2, 3)
    assert fig.get_dpi() == 150
    assert to_jsonable({1: (np.float64(2.0), None)}) == {"1": [2.0, None]}
