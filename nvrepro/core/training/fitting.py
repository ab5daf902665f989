"""One way to run a Lightning fit inside a notebook, an experiment or a test: quietly.

Every experiment trains several arms, and a plain ``Trainer`` prints its banners ("GPU
available: ...") and the same harmless warnings once per arm. :func:`quiet_fit` builds the
``Trainer`` with no logger files, no checkpoints and no model summary, shows the house progress
bar when asked (:mod:`nvrepro.core.training.progress`), silences those banners and warnings only while it
runs (:func:`quiet_lightning`), and returns the wall-clock seconds of ``fit`` and the steps taken.
Everything else is an ordinary ``Trainer`` keyword: the numbers are those of that ``Trainer``.

    outcome = quiet_fit(module, datamodule=dm, max_steps=200, gradient_clip_val=1.0, progress=True)
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import lightning as L

from nvrepro.core.training.progress import progress_callbacks

# Warnings that every toy fit would repeat and that say nothing about the run:
QUIET_WARNINGS = (
    r".*does not have many workers.*",  # toy data loads in the main process on purpose
    r".*smaller than the logging interval.*",  # short toy runs
    r".*LeafSpec.*",  # a deprecation inside Lightning itself
    r".*litlogger.*",  # an advertisement
    r".*module\(s\) in eval mode.*",  # frozen teachers (distillation) are in eval mode on purpose
    r".*no `val_dataloader`.*",  # arms evaluated by their own callbacks
)


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Lightning's loggers at WARNING and :data:`QUIET_WARNINGS` ignored, restored on exit."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for pattern in QUIET_WARNINGS:
                warnings.filterwarnings("ignore", message=pattern)
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


@dataclass
class FitOutcome:
    """What :func:`quiet_fit` returns: seconds spent in ``fit``, optimizer steps, the trainer."""

    seconds: float
    steps: int
    trainer: L.Trainer


def quiet_fit(module: L.LightningModule, *, datamodule: Any = None, train_dataloaders: Any = None,
              progress: bool = False, callbacks: Sequence[L.Callback] = (), **trainer_kwargs: Any) -> FitOutcome:
    """Fit ``module`` on ``datamodule`` (or ``train_dataloaders``) with a quiet ``Trainer``.

    ``trainer_kwargs`` go to ``L.Trainer`` (``max_steps``, ``precision``, ``accelerator``, ...);
    ``logger``, ``enable_checkpointing`` and ``enable_model_summary`` default to off.
    ``progress`` shows one :class:`~nvrepro.core.training.progress.StepProgressBar`.
    """
    kwargs = dict(logger=False, enable_checkpointing=False, enable_model_summary=False)
    kwargs.update(trainer_kwargs)
    kwargs["enable_progress_bar"] = progress
    kwargs["callbacks"] = list(callbacks) + progress_callbacks(progress)
    with quiet_lightning():
        trainer = L.Trainer(**kwargs)
        start = time.perf_counter()
        trainer.fit(module, train_dataloaders=train_dataloaders, datamodule=datamodule)
        seconds = time.perf_counter() - start
    return FitOutcome(seconds, int(trainer.global_step), trainer)
