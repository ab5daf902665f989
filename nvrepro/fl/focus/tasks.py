"""The agents of a FOCUS experiment: who holds which data, the model they train, its loss, and each
agent's own optimal loss (the reference point of FAA, :mod:`nvrepro.fl.focus.faa`).

A task is a small frozen dataclass: everything an agent's data depends on is in its fields, so the task
travels to the clients as JSON in the train config (:meth:`FocusTask.to_json`; read back by
:func:`nvrepro.fl.focus.registry.task_from_json`) and every node rebuilds the same data from it. Agents ``0 .. N - noisy - 1`` are benign and belong to the task's clean groups;
the last ``noisy_agents`` are low-quality agents (the paper's "noisy agents") in a group of their own.

Tasks (each in its own module): :class:`~nvrepro.fl.focus.linear.LinearTask` (closed-form optima),
:class:`~nvrepro.fl.focus.digits.DigitsTask` (scikit-learn's digits, label-noise agents) and
:class:`~nvrepro.fl.focus.text.TextTask` (two writing styles of the project's corpora, corrupted-text
agents).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from nvrepro.core.tooling.validation import require, require_positive_int

SPLITS = ("train", "test")


@dataclass(frozen=True)
class FocusTask:
    """Base of the FOCUS tasks: ``num_agents`` agents, the last ``noisy_agents`` of them low-quality,
    data drawn from ``seed``. Subclasses set :attr:`name`, :attr:`group_names` (clean groups first, then
    ``"noisy"``), implement :meth:`_make_data`, :meth:`build_model` and :meth:`loss`, and may override
    :meth:`accuracy`, :meth:`test_loss` and :meth:`optimal_loss`."""

    num_agents: int = 20
    noisy_agents: int = 4
    seed: int = 0

    name: ClassVar[str] = ""
    # Local SGD defaults for this task's model (fields of FocusSettings may override them).
    training: ClassVar[dict[str, Any]] = {}

    def __post_init__(self) -> None:
        require_positive_int(self.num_agents, "num_agents")
        require(isinstance(self.noisy_agents, int) and 0 <= self.noisy_agents < self.num_agents, "noisy_agents",
                f"must be an integer in [0, num_agents={self.num_agents}), got {self.noisy_agents!r}")
        require(isinstance(self.seed, int) and self.seed >= 0, "seed", f"must be a non-negative integer, got {self.seed!r}")

    # --- groups -------------------------------------------------------------------------------------
    @property
    def num_clean(self) -> int:
        return self.num_agents - self.noisy_agents

    @property
    def clean_groups(self) -> int:
        """How many groups the benign agents form (round-robin over agents)."""
        raise NotImplementedError

    @property
    def group_names(self) -> list[str]:
        raise NotImplementedError

    @property
    def num_groups(self) -> int:
        """Clean groups, plus one for the noisy agents when there are any."""
        return self.clean_groups + (1 if self.noisy_agents else 0)

    def is_noisy(self, agent: int) -> bool:
        return agent >= self.num_clean

    def group(self, agent: int) -> int:
        """Agent ``agent``'s group: ``agent % clean_groups`` for benign agents, ``clean_groups`` for noisy ones."""
        self._check_agent(agent)
        return self.clean_groups if self.is_noisy(agent) else agent % self.clean_groups

    def _check_agent(self, agent: int) -> None:
        if not 0 <= int(agent) < self.num_agents:
            raise ValueError(f"agent: must be in [0, {self.num_agents}), got {agent}")

    # --- data and model -----------------------------------------------------------------------------
    def data(self, agent: int, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
        """Agent ``agent``'s ``(inputs, targets)`` for ``split`` (``"train"`` or ``"test"``); the same
        tensors for the same task, agent and split."""
        self._check_agent(agent)
        if split not in SPLITS:
            raise ValueError(f"split: must be one of {SPLITS}, got {split!r}")
        return _cached_data(self, int(agent), split)

    def _make_data(self, agent: int, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def build_model(self, seed: int = 0) -> nn.Module:
        raise NotImplementedError

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean per-sample loss (a scalar tensor)."""
        raise NotImplementedError

    def accuracy(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float | None:
        """Share of correct predictions, or ``None`` for a task without classes (regression)."""
        return None

    def test_loss(self, model: nn.Module, agent: int) -> float:
        """Agent ``agent``'s expected loss under ``model``, estimated on its test split."""
        x, y = self.data(agent, "test")
        with torch.no_grad():
            return float(self.loss(model, x, y))

    def optimal_loss(self, agent: int) -> float:
        """Agent ``agent``'s own optimal loss ``L_i(theta_i*)``, estimated: the model
        :meth:`fit_optimum` fits centrally to the pooled training data of every agent in ``agent``'s
        group (the same distribution, several times the agent's own data), scored on the agent's test
        split. Cached per task and group."""
        return _cached_optimum(self, self.group(agent))(self, agent)

    def fit_optimum(self, x: torch.Tensor, y: torch.Tensor) -> nn.Module:
        """The reference model for :meth:`optimal_loss`, fitted to pooled data by a method independent
        of federated training (a closed form or a dedicated library)."""
        raise NotImplementedError

    # --- serialization ------------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps({"name": self.name, **asdict(self)}, sort_keys=True)


class ClassificationTask(FocusTask):
    """A task whose model outputs class logits ``(B, C)``: cross-entropy loss, top-1 accuracy."""

    def loss(self, model, x, y):
        return nn.functional.cross_entropy(model(x), y)

    def accuracy(self, model, x, y) -> float:
        with torch.no_grad():
            return float((model(x).argmax(-1) == y).float().mean())


@lru_cache(maxsize=512)
def _cached_data(task: FocusTask, agent: int, split: str):
    return task._make_data(agent, split)


class _GroupOptimum:
    """The model :meth:`FocusTask.fit_optimum` fits to one group's pooled training data; called per
    agent for its test loss."""

    def __init__(self, task: FocusTask, group: int) -> None:
        agents = [a for a in range(task.num_agents) if task.group(a) == group]
        xs, ys = zip(*(task.data(a, "train") for a in agents))
        self.model = task.fit_optimum(torch.cat(xs), torch.cat(ys))

    def __call__(self, task: FocusTask, agent: int) -> float:
        return task.test_loss(self.model, agent)


@lru_cache(maxsize=64)
def _cached_optimum(task: FocusTask, group: int) -> _GroupOptimum:
    return _GroupOptimum(task, group)


def rng_for(task: FocusTask, *parts: int) -> np.random.Generator:
    """A generator keyed by the task's seed and ``parts`` (e.g. agent, split), independent of call order."""
    return np.random.default_rng([task.seed, *parts])


def split_id(split: str) -> int:
    return SPLITS.index(split)
