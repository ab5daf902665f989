"""Fairness via agent-awareness (FAA), the fairness measure of FOCUS (arXiv 2207.10265, Def. 1).

The abstract defines FAA only in words: a fairness notion that "takes the heterogeneous data
contributions of local agents into account", so that agents with high-quality data are not held to
the performance of agents with low-quality data. The form used here (the paper's Definition 1) measures
each agent against *its own* best achievable loss rather than against the other agents' losses:

    excess_i = L_i(theta_served(i)) - L_i(theta_i*),   theta_i* = argmin_theta L_i(theta)
    FAA      = max_{i, j} | excess_i - excess_j |       (= max_i excess_i - min_i excess_i)

``L_i`` is agent ``i``'s expected loss on its own data distribution and ``theta_served(i)`` the model it
is served (the global model for FedAvg and q-FFL, its cluster's model for FOCUS and IFCA). Lower is
fairer: 0 when every agent is equally far from its own optimum. A noisy agent's high loss floor does
not count against the others, because its optimum ``L_i(theta_i*)`` carries the same floor.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def excess_losses(losses: Sequence[float], optimal_losses: Sequence[float]) -> np.ndarray:
    """``losses[i] - optimal_losses[i]`` per agent, shape ``(N,)``: how far each agent's served model is
    from the best model for that agent alone."""
    a, b = np.asarray(losses, dtype=float), np.asarray(optimal_losses, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"losses, optimal_losses: need two equal-length 1-D sequences, got {a.shape} and {b.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("losses, optimal_losses: must all be finite")
    return a - b


def faa(excess: Sequence[float]) -> float:
    """FAA of the agents' excess losses (``(N,)``): the largest absolute difference between two agents'
    excess losses, i.e. ``max - min``; 0 for a single agent."""
    e = np.asarray(excess, dtype=float)
    if e.ndim != 1 or e.size == 0:
        raise ValueError(f"excess: need a non-empty 1-D sequence, got shape {e.shape}")
    return float(e.max() - e.min())


def faa_of(losses: Sequence[float], optimal_losses: Sequence[float]) -> float:
    """FAA from served losses and optimal losses (both ``(N,)``)."""
    return faa(excess_losses(losses, optimal_losses))
