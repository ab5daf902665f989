"""The two halves of FOCUS's EM round (arXiv 2207.10265, Alg. 1), as plain functions shared by the
client, the strategy, the evaluation and the tests.

E-step: agent ``i``'s responsibility for cluster ``k`` is the posterior of "``i``'s data came from
model ``k``" under the prior ``pi``, with the agent's summed loss over its ``n_i`` samples as the negative
log-likelihood:

    r_ik = pi_k exp(-L_ik / T) / sum_k' pi_k' exp(-L_ik' / T),   L_ik = sum_{(x, y) in D_i} loss(theta_k; x, y)

(``T`` = 1 is EM for a likelihood ``exp(-loss)``; a larger ``T`` softens the assignment). The prior is
the mean responsibility, ``pi_k = (1 / N) sum_i r_ik``.

M-step: each cluster model is the average of the agents' locally trained copies weighted by
``r_ik n_i``: ``theta_k = sum_i r_ik n_i theta_k^i / sum_i r_ik n_i``. IFCA (Ghosh et al. 2020) is the
hard version: ``r_ik`` is 1 for the agent's lowest-loss cluster and 0 elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nvrepro.core.tooling.validation import ConfigError

ASSIGNMENTS = ("soft", "hard", "none")


def check_clusters(num_clusters: int, num_agents: int | None = None) -> None:
    """A clear error for fewer than one cluster, or more clusters than agents (a cluster nobody can fill)."""
    if isinstance(num_clusters, bool) or not isinstance(num_clusters, (int, np.integer)) or num_clusters < 1:
        raise ConfigError(f"num_clusters: must be an integer >= 1, got {num_clusters!r}")
    if num_agents is not None and num_clusters > num_agents:
        raise ConfigError(f"num_clusters: {num_clusters} clusters for {num_agents} agents; "
                          "at most one cluster per agent")


def e_step(summed_losses: np.ndarray, log_prior: Sequence[float], temperature: float = 1.0) -> np.ndarray:
    """Responsibilities ``(N, K)`` from each agent's summed loss under each cluster model
    (``summed_losses``: ``(N, K)`` or ``(K,)`` for one agent) and the log prior ``(K,)``; rows sum to 1."""
    losses = np.asarray(summed_losses, dtype=float)
    one = losses.ndim == 1
    losses = np.atleast_2d(losses)
    log_pi = np.asarray(log_prior, dtype=float)
    if losses.shape[1] != log_pi.shape[0]:
        raise ValueError(f"summed_losses, log_prior: {losses.shape[1]} clusters vs a prior over {log_pi.shape[0]}")
    if temperature <= 0:
        raise ValueError(f"temperature: must be > 0, got {temperature}")
    logits = log_pi[None, :] - losses / temperature
    logits -= logits.max(axis=1, keepdims=True)  # stable softmax
    r = np.exp(logits)
    r /= r.sum(axis=1, keepdims=True)
    return r[0] if one else r


def hard_assign(summed_losses: np.ndarray) -> np.ndarray:
    """IFCA's assignment: one-hot rows ``(N, K)`` (or ``(K,)``) at each agent's lowest loss (first on ties)."""
    losses = np.asarray(summed_losses, dtype=float)
    one = losses.ndim == 1
    losses = np.atleast_2d(losses)
    r = np.zeros_like(losses)
    r[np.arange(len(losses)), losses.argmin(axis=1)] = 1.0
    return r[0] if one else r


def prior_of(responsibilities: np.ndarray, floor: float = 1e-6) -> np.ndarray:
    """``pi_k``: the mean responsibility over agents ``(K,)``, floored so its log stays finite and
    renormalized."""
    pi = np.maximum(np.asarray(responsibilities, dtype=float).mean(axis=0), floor)
    return pi / pi.sum()


def m_step(cluster_arrays: Sequence[Sequence[np.ndarray]], weights: np.ndarray,
           current: Sequence[Sequence[np.ndarray]]) -> list[list[np.ndarray]]:
    """Weighted FedAvg per cluster. ``cluster_arrays[i][k]``: agent ``i``'s trained copy of cluster
    ``k`` (a list of arrays); ``weights`` ``(N, K)``: ``r_ik n_i`` (0 where the agent did not train the
    cluster); ``current[k]``: cluster ``k`` before the round, kept where no agent gave it weight."""
    w = np.asarray(weights, dtype=float)
    out = []
    for k, cur in enumerate(current):
        total = w[:, k].sum()
        if total <= 0:
            out.append([np.array(a, copy=True) for a in cur])
            continue
        acc = [np.zeros_like(a, dtype=np.float64) for a in cur]
        for i, arrays in enumerate(cluster_arrays):
            if w[i, k] > 0:
                for j, a in enumerate(arrays[k]):
                    acc[j] += (w[i, k] / total) * a.astype(np.float64)
        out.append([a.astype(c.dtype) for a, c in zip(acc, cur, strict=True)])
    return out


def serve(summed_losses: np.ndarray, log_prior: Sequence[float] | None = None) -> np.ndarray:
    """The cluster each agent is served ``(N,)``: its most responsible cluster, ``argmax_k log pi_k -
    L_ik`` (uniform prior: the lowest training loss)."""
    losses = np.atleast_2d(np.asarray(summed_losses, dtype=float))
    log_pi = np.zeros(losses.shape[1]) if log_prior is None else np.asarray(log_prior, dtype=float)
    return np.argmax(log_pi[None, :] - losses, axis=1)
