"""quiet_fit: the numbers of a plain Trainer with the same settings, and nothing left changed."""

from __future__ import annotations

import logging
import warnings

import lightning as L
import torch

from nvrepro.core.training.fitting import quiet_fit


def test_quiet_fit_trains_exactly_as_a_plain_trainer(tiny):
    model_cls, data = tiny
    torch.manual_seed(0)
    plain = model_cls()
    L.Trainer(max_steps=12, logger=False, enable_checkpointing=False, enable_model_summary=False,
              enable_progress_bar=False, accelerator="cpu", gradient_clip_val=1.0).fit(plain, data())
    torch.manual_seed(0)
    quiet = model_cls()
    outcome = quiet_fit(quiet, train_dataloaders=data(), max_steps=12, accelerator="cpu", gradient_clip_val=1.0)
    assert outcome.steps == 12 and outcome.seconds > 0
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), quiet.state_dict().values()))


def test_quiet_fit_restores_loggers_and_warning_filters(tiny):
    model_cls, data = tiny
    log = logging.getLogger("lightning.pytorch")
    log.setLevel(logging.INFO)
    filters = list(warnings.filters)
    quiet_fit(model_cls(), train_dataloaders=data(), max_steps=2, accelerator="cpu", progress=True)
    assert log.level == logging.INFO and warnings.filters == filters
