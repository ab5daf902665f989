"""The house progress bar: one bar over the optimizer steps, redrawn sparingly."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from nvrepro.core.training.progress import StepProgressBar, progress_callbacks


def _fit(tiny, bar: StepProgressBar, steps: int) -> list[int]:
    """Fit ``steps`` steps; returns the bar's position at each redraw (tqdm's ``refresh``)."""
    drawn: list[int] = []
    original_start = bar.on_train_start

    def start(trainer, module):
        original_start(trainer, module)
        real_refresh = bar.bar.refresh
        bar.bar.refresh = lambda *a, **k: drawn.append(bar.bar.n) or real_refresh(*a, **k)

    bar.on_train_start = start
    model_cls, data = tiny
    torch.manual_seed(0)
    L.Trainer(max_steps=steps, logger=False, enable_checkpointing=False, enable_model_summary=False,
              callbacks=[bar], accelerator="cpu").fit(model_cls(), data(batch_size=4))
    return drawn


def test_bar_counts_every_step_but_redraws_rarely(tiny):
    bar = StepProgressBar(min_interval=60.0)
    seen = {}
    original_end = bar.on_train_end
    bar.on_train_end = lambda t, m: seen.update(n=bar.bar.n, total=bar.bar.total) or original_end(t, m)
    drawn = _fit(tiny, bar, steps=200)
    assert seen == {"n": 200, "total": 200}
    # Lightning's own bars redraw on each of the 200 steps; within a minute this one redraws at
    # most at the start and once on close.
    assert len(drawn) <= 2, drawn


def test_bar_redraws_every_step_without_an_interval(tiny):
    drawn = _fit(tiny, StepProgressBar(min_interval=0.0), steps=20)
    assert len(drawn) >= 20  # the interval, not the step count, is what limits redraws


def test_progress_callbacks_and_bad_interval():
    assert progress_callbacks(False) == []
    (bar,) = progress_callbacks(True, min_interval=2.0)
    assert isinstance(bar, StepProgressBar) and bar.min_interval == 2.0
    with pytest.raises(ValueError, match="min_interval"):
        StepProgressBar(min_interval=-1)
