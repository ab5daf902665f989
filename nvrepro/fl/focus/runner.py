"""FOCUS and its baselines on Flower's simulation engine: settings, server-side evaluation (FAA per
round) and a ``ServerApp`` that runs several methods and seeds one after the other on the same nodes.

Evaluation is centralized: the server rebuilds each agent's data from the task's seed (synthetic or
packaged data), serves each agent a model (the global one, or the cluster with the largest
responsibility on the agent's *training* data) and scores it on the agent's *test* data. In a
deployment the same numbers would come back from the agents as evaluation replies; here it keeps the
per-round curves cheap and exactly reproducible.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp

from nvrepro.core.tooling.validation import ConfigError, require, require_positive_int
from nvrepro.fl.focus.em import check_clusters, serve
from nvrepro.fl.focus.faa import excess_losses, faa
from nvrepro.fl.focus.local import mean_loss, models_of, pack
from nvrepro.fl.focus.strategies import FOCUS, IFCA, AgentFedAvg, AgentQFedAvg, ClusteredFedAvg
from nvrepro.fl.focus.tasks import FocusTask
from nvrepro.fl.task import derived_seed

METHODS = ("focus", "ifca", "fedavg", "qffl")
METHOD_LABELS = {"focus": "FOCUS", "ifca": "IFCA", "fedavg": "FedAvg", "qffl": "q-FFL"}


@dataclass
class FocusSettings:
    """One federated run: ``method`` (:data:`METHODS`), ``num_clusters`` K (1 for FedAvg and q-FFL),
    ``rounds``; local SGD (``local_steps``, ``lr``, ``batch_size``; ``None`` takes the task's defaults,
    ``batch_size`` 0 is full batch); the E-step's ``temperature``; q-FFL's ``q``; ``seed`` (initial
    models and local batches); evaluation every ``eval_every`` rounds (and at the last)."""

    method: str = "focus"
    num_clusters: int = 1
    rounds: int = 20
    local_steps: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    temperature: float = 1.0
    q: float = 1.0
    seed: int = 0
    eval_every: int = 1

    def __post_init__(self) -> None:
        require(self.method in METHODS, "method", f"must be one of {METHODS}, got {self.method!r}")
        check_clusters(self.num_clusters)
        if self.method in ("fedavg", "qffl"):
            require(self.num_clusters == 1, "num_clusters", f"{self.method} trains one model, got {self.num_clusters}")
        for name in ("rounds", "eval_every"):
            require_positive_int(getattr(self, name), name)
        if self.local_steps is not None:
            require_positive_int(self.local_steps, "local_steps")
        require(self.lr is None or self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        require(self.batch_size is None or (isinstance(self.batch_size, int) and self.batch_size >= 0),
                "batch_size", f"must be an integer >= 0 (0: full batch), got {self.batch_size!r}")
        require(self.temperature > 0, "temperature", f"must be > 0, got {self.temperature}")
        require(self.q >= 0, "q", f"must be >= 0, got {self.q}")
        require(isinstance(self.seed, int) and self.seed >= 0, "seed", f"must be a non-negative integer, got {self.seed!r}")

    def resolved(self, task: FocusTask) -> dict[str, Any]:
        """Local SGD settings with the task's defaults filled in."""
        d = task.training
        return {"local_steps": self.local_steps or d["local_steps"], "lr": self.lr or d["lr"],
                "batch_size": d["batch_size"] if self.batch_size is None else self.batch_size}


@dataclass
class FocusRun:
    """A named run: a task and the settings of one method on it."""

    name: str
    task: FocusTask
    settings: FocusSettings = field(default_factory=FocusSettings)


def build_strategy(settings: FocusSettings, task: FocusTask):
    """The method's Flower strategy for ``task``'s agents (all of them train every round)."""
    s, num_agents = settings, task.num_agents
    check_clusters(s.num_clusters, num_agents)
    if s.method == "fedavg":
        return AgentFedAvg(fraction_evaluate=0.0, min_train_nodes=num_agents, min_available_nodes=num_agents)
    if s.method == "qffl":
        return AgentQFedAvg(client_learning_rate=s.resolved(task)["lr"], q=s.q, fraction_evaluate=0.0, min_train_nodes=num_agents,
                            min_available_nodes=num_agents)
    cls = FOCUS if s.method == "focus" else IFCA
    return cls(s.num_clusters, temperature=s.temperature, min_available_nodes=num_agents)


def train_config(run: FocusRun) -> ConfigRecord:
    """What every client receives (keys :data:`nvrepro.fl.focus.client.TRAIN_KEYS`; FedAvg adds
    ``server-round``; the clustered strategies add the prior and temperature)."""
    local = run.settings.resolved(run.task)
    assignment = "none" if run.settings.method in ("fedavg", "qffl") else (
        "soft" if run.settings.method == "focus" else "hard")
    return ConfigRecord({"task": run.task.to_json(), "assignment": assignment, "local-steps": local["local_steps"],
                         "lr": float(local["lr"]), "batch-size": local["batch_size"], "seed": run.settings.seed})


def initial_arrays(run: FocusRun) -> ArrayRecord:
    """K freshly initialized models (each from its own seed, so clusters start apart), packed."""
    s = run.settings
    return pack([run.task.build_model(derived_seed(s.seed, 17, k)).state_dict() for k in range(s.num_clusters)])


def evaluate(task: FocusTask, arrays: ArrayRecord, log_prior: np.ndarray | None = None) -> dict[str, Any]:
    """Serve every agent and score it: ``served`` (cluster per agent), ``test_loss``, ``optimal_loss``,
    ``excess`` (all ``(N,)`` lists), ``accuracy`` (per agent, or ``None`` for regression), ``faa``,
    ``mean_test_loss``, ``benign_excess`` and ``benign_accuracy`` (means over benign agents)."""
    torch.set_num_threads(1)
    models = models_of(task, arrays)
    n = task.num_agents
    train_losses = np.array([[mean_loss(task, m, *task.data(a, "train")) * len(task.data(a, "train")[0])
                              for m in models] for a in range(n)])
    served = serve(train_losses, log_prior) if len(models) > 1 else np.zeros(n, dtype=int)
    test = [task.test_loss(models[served[a]], a) for a in range(n)]
    optimal = [task.optimal_loss(a) for a in range(n)]
    excess = excess_losses(test, optimal)
    acc = [task.accuracy(models[served[a]], *task.data(a, "test")) for a in range(n)]
    benign = [a for a in range(n) if not task.is_noisy(a)]
    has_acc = acc[0] is not None
    return {"served": served.tolist(), "test_loss": test, "optimal_loss": optimal, "excess": excess.tolist(),
            "accuracy": acc if has_acc else None, "faa": faa(excess), "mean_test_loss": float(np.mean(test)),
            "benign_excess": float(np.mean(excess[benign])),
            "benign_accuracy": float(np.mean([acc[a] for a in benign])) if has_acc else None,
            "groups": [task.group(a) for a in range(n)]}


def run_rounds(grid: Grid, run: FocusRun) -> dict[str, Any]:
    """Run one :class:`FocusRun` on ``grid``: ``{"curve": [{round, faa, mean_test_loss,
    benign_accuracy, benign_excess}], "final": evaluate(...) of the last round, "responsibilities":
    the last round's (N, K) list, "settings", "seconds"}``."""
    s, task = run.settings, run.task
    strategy = build_strategy(s, task)
    curve: list[dict[str, Any]] = []
    last: dict[str, Any] = {}

    def evaluate_fn(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        if server_round % s.eval_every and server_round not in (0, s.rounds):
            return None
        prior = np.log(strategy.prior) if isinstance(strategy, FOCUS) else None
        ev = evaluate(task, arrays, prior)
        last.clear()
        last.update(ev)
        curve.append({"round": server_round, "faa": ev["faa"], "mean_test_loss": ev["mean_test_loss"],
                      "benign_accuracy": ev["benign_accuracy"], "benign_excess": ev["benign_excess"]})
        return MetricRecord({"faa": ev["faa"]})

    t0 = time.perf_counter()
    strategy.start(grid, initial_arrays(run), num_rounds=s.rounds, train_config=train_config(run),
                   evaluate_fn=evaluate_fn)
    resp = None
    if isinstance(strategy, ClusteredFedAvg) and strategy.responsibilities:
        r = strategy.responsibilities[max(strategy.responsibilities)]
        order = np.argsort(strategy.agents[max(strategy.agents)])
        resp = r[order].tolist()
    return {"curve": curve, "final": dict(last), "responsibilities": resp, "settings": asdict(s),
            "task": task.to_json(), "seconds": time.perf_counter() - t0}


def make_server_app(runs: list[FocusRun], sink: dict) -> ServerApp:
    """A ``ServerApp`` running ``runs`` in turn on the same nodes; ``sink[name]`` gets each result."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        for run in runs:
            sink[run.name] = run_rounds(grid, run)

    return app


def run_focus(runs: list[FocusRun], backend_config: dict[str, Any] | None = None,
              verbose: bool = False) -> dict[str, dict[str, Any]]:
    """Run ``runs`` one after the other in ONE Flower simulation (one node per agent; every run needs
    the same number of agents); ``{name: result}`` as :func:`run_rounds` returns it."""
    from nvrepro.fl.focus.client import app as focus_client_app
    from nvrepro.fl.simulation import simulate

    require(len(runs) > 0, "runs", "needs at least one run")
    names = [r.name for r in runs]
    require(len(set(names)) == len(names), "runs", f"names must be unique, got {names}")
    agents = {r.task.num_agents for r in runs}
    if len(agents) != 1:
        raise ConfigError(f"num_agents: every run of one simulation needs the same number of agents, got {sorted(agents)}")
    for r in runs:
        check_clusters(r.settings.num_clusters, r.task.num_agents)
    out: dict[str, dict[str, Any]] = {}
    simulate(make_server_app(runs, out), agents.pop(), backend_config, verbose, client_app=focus_client_app)
    missing = [n for n in names if n not in out]
    if missing:
        raise RuntimeError(f"the simulation returned no result for runs {missing}; see Flower's log above")
    return out
