"""The house progress bar for training inside notebooks: one bar per fit, redrawn sparingly.

Lightning's default bars redraw on every step. In a notebook each redraw is a few messages to
the front end (about 8 per step for the rich bar: 32,000 messages for a 4,000-step toy fit), and
under papermill on a busy CPU the client falls minutes behind the kernel, which fails the run
with "Timeout waiting for IOPub output". :class:`StepProgressBar` draws one tqdm bar over the
optimizer steps and lets tqdm's ``mininterval`` decide when to redraw, so a fit of any length
sends a few messages a second at most.

    trainer = L.Trainer(..., enable_progress_bar=progress, callbacks=progress_callbacks(progress))
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import ProgressBar
from tqdm.auto import tqdm


class StepProgressBar(ProgressBar):
    """A tqdm bar over a fit's optimizer steps (``trainer.max_steps``, else the estimated
    total), with the last logged ``loss`` as postfix; redrawn at most every ``min_interval``
    seconds. Validation and test loops draw nothing."""

    def __init__(self, min_interval: float = 1.0, desc: str = "train"):
        super().__init__()
        if min_interval < 0:
            raise ValueError(f"min_interval: must be >= 0 seconds, got {min_interval}")
        self.min_interval = float(min_interval)
        self.desc = desc
        self._enabled = True
        self.bar: tqdm | None = None

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        total = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None
        if total is None:
            estimated = trainer.estimated_stepping_batches
            total = int(estimated) if estimated != float("inf") else None
        self.bar = tqdm(total=total, initial=trainer.global_step, desc=self.desc, unit="step",
                        mininterval=self.min_interval, disable=not (self._enabled and trainer.is_global_zero))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.bar is None:
            return
        loss = trainer.callback_metrics.get("loss", trainer.callback_metrics.get("train/loss"))
        if loss is not None:
            self.bar.set_postfix(loss=f"{float(loss):.3f}", refresh=False)  # drawn with the next update
        self.bar.update(trainer.global_step - self.bar.n)  # tqdm redraws only past mininterval

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def progress_callbacks(progress: bool, min_interval: float = 1.0) -> list[L.Callback]:
    """``[StepProgressBar(min_interval)]`` when ``progress``, else ``[]``; pair it with
    ``Trainer(enable_progress_bar=progress)``."""
    return [StepProgressBar(min_interval)] if progress else []
