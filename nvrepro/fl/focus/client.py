"""The FOCUS ``ClientApp``: one node = one agent (its ``partition-id``), serving all four methods.

``train`` receives the K cluster models packed in one ``ArrayRecord`` (K = 1 for FedAvg and q-FFL) and a
``ConfigRecord`` with the task (JSON), the local SGD settings and the method's ``assignment``:

* ``"soft"`` (FOCUS): the E-step on the agent's own data, :func:`nvrepro.fl.focus.em.e_step` with the
  server's ``log-prior`` and ``temperature``; every cluster with responsibility >= ``min-responsibility``
  is trained locally (the M-step's local half);
* ``"hard"`` (IFCA): only the cluster with the lowest loss is trained;
* ``"none"`` (FedAvg, q-FFL): the single model is trained.

The reply holds the trained models (untrained clusters unchanged) and a ``MetricRecord``:
``num-examples``, ``train_loss`` (the first model's mean loss *before* training: q-FFL's ``F_i(w)``),
``agent``, and per cluster ``losses`` (summed over the agent's samples), ``responsibilities`` and
``trained`` (1 or 0).
"""

from __future__ import annotations

import numpy as np
import torch
from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from nvrepro.fl.client import node_user
from nvrepro.fl.focus.em import ASSIGNMENTS, e_step, hard_assign
from nvrepro.fl.focus.local import local_sgd, mean_loss, models_of, pack
from nvrepro.fl.focus.registry import task_from_json
from nvrepro.fl.task import derived_seed

TRAIN_KEYS = ("task", "assignment", "local-steps", "lr", "batch-size", "seed", "server-round")

app = ClientApp()


def train_agent(arrays, config: ConfigRecord, agent: int) -> tuple:
    """One agent's round: ``(trained packed arrays, metrics)`` per the module docstring."""
    missing = [k for k in TRAIN_KEYS if k not in config]
    if missing:
        raise KeyError(f"{missing[0]}: missing from the FOCUS train config (needs {', '.join(TRAIN_KEYS)})")
    assignment = str(config["assignment"])
    if assignment not in ASSIGNMENTS:
        raise ValueError(f"assignment: must be one of {ASSIGNMENTS}, got {assignment!r}")
    torch.set_num_threads(1)  # one core per client, reproducible reductions
    task = task_from_json(str(config["task"]))
    models = models_of(task, arrays)
    x, y = task.data(agent, "train")
    losses = np.array([mean_loss(task, m, x, y) for m in models]) * len(x)
    if assignment == "soft":
        r = e_step(losses, list(config["log-prior"]), float(config["temperature"]))
        trained = r >= float(config["min-responsibility"])
    elif assignment == "hard":
        r = hard_assign(losses)
        trained = r > 0
    else:
        if len(models) != 1:
            raise ValueError(f"assignment 'none' trains one model, got {len(models)}")
        r, trained = np.ones(1), np.ones(1, dtype=bool)
    seed, rnd = int(config["seed"]), int(config["server-round"])
    for k, model in enumerate(models):
        if trained[k]:
            local_sgd(task, model, x, y, steps=int(config["local-steps"]), lr=float(config["lr"]),
                      batch_size=int(config["batch-size"]), seed=derived_seed(seed, rnd, agent, k))
    metrics = MetricRecord({"num-examples": len(x), "train_loss": float(losses[0] / len(x)), "agent": agent,
                            "losses": [float(v) for v in losses], "responsibilities": [float(v) for v in r],
                            "trained": [int(t) for t in trained]})
    return pack([m.state_dict() for m in models]), metrics


@app.train()
def train(msg: Message, context: Context) -> Message:
    arrays, metrics = train_agent(msg.content["arrays"], msg.content["config"], node_user(context))
    return Message(content=RecordDict({"arrays": arrays, "metrics": metrics}), reply_to=msg)
