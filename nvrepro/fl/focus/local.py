"""What an agent does with a model on its own data: local SGD and losses, and the packing of K cluster
models into one Flower ``ArrayRecord`` (keys ``"<k>.<parameter>"``), so that Flower's ``Strategy.start``
loop, which carries one ``ArrayRecord`` from round to round, carries all K models."""

from __future__ import annotations

import numpy as np
import torch
from flwr.app import Array, ArrayRecord
from torch import nn

from nvrepro.fl.focus.tasks import FocusTask


def local_sgd(task: FocusTask, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, steps: int, lr: float,
              batch_size: int, seed: int) -> None:
    """``steps`` plain SGD steps on minibatches of ``batch_size`` rows of ``(x, y)`` drawn without
    replacement per step (``batch_size`` 0 or >= len(x): full batch) from ``torch.Generator(seed)``;
    updates ``model`` in place."""
    g = torch.Generator().manual_seed(int(seed))
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    n = len(x)
    full = batch_size <= 0 or batch_size >= n
    model.train()
    for _ in range(steps):
        if full:
            xb, yb = x, y
        else:
            idx = torch.randperm(n, generator=g)[:batch_size]
            xb, yb = x[idx], y[idx]
        opt.zero_grad()
        task.loss(model, xb, yb).backward()
        opt.step()
    model.eval()


def mean_loss(task: FocusTask, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float(task.loss(model, x, y))


def pack(states: list[dict[str, torch.Tensor]]) -> ArrayRecord:
    """K state dicts -> one ``ArrayRecord`` with keys ``"<k>.<name>"`` (cluster-major order)."""
    return ArrayRecord({f"{k}.{name}": Array(t.detach().cpu().numpy()) for k, sd in enumerate(states)
                        for name, t in sd.items()})


def unpack(record: ArrayRecord) -> list[dict[str, torch.Tensor]]:
    """The K state dicts :func:`pack` packed, in cluster order."""
    states: dict[int, dict[str, torch.Tensor]] = {}
    for key, array in record.items():
        k, _, name = key.partition(".")
        states.setdefault(int(k), {})[name] = torch.from_numpy(np.array(array.numpy(), copy=True))
    if sorted(states) != list(range(len(states))):
        raise ValueError(f"arrays: cluster indices must be 0..K-1, got {sorted(states)}")
    return [states[k] for k in range(len(states))]


def models_of(task: FocusTask, record: ArrayRecord) -> list[nn.Module]:
    """The task's models loaded with the K packed states."""
    models = []
    for state in unpack(record):
        m = task.build_model(0)
        m.load_state_dict(state)
        models.append(m.eval())
    return models
