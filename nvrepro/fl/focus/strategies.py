"""FOCUS and its baselines as Flower strategies (``flwr.serverapp.strategy``).

* :class:`FOCUS`: K cluster models; the clients run the E-step (soft responsibilities from their losses
  and the prior ``pi``) and train the clusters they belong to; :meth:`ClusteredFedAvg.aggregate_train`
  is the M-step, a per-cluster FedAvg weighted by ``r_ik n_i`` (:func:`nvrepro.fl.focus.em.m_step`), and
  updates ``pi``. With K = 1 every responsibility is 1 and the M-step is FedAvg weighted by ``n_i``.
* :class:`IFCA`: the same strategy with hard assignment (each agent trains and is served its
  lowest-loss cluster; Ghosh et al. 2020).
* :class:`AgentFedAvg` and :class:`AgentQFedAvg`: Flower's own ``FedAvg`` and ``QFedAvg`` (q-FFL, Li
  et al. 2020; Flower's implementation, ``L = 1 / client lr``) used as they are, except that replies are
  sorted by agent before aggregating, so the float sums (and the results) do not depend on arrival
  order.

Every strategy trains all connected agents each round by default (``fraction_train = 1``): the paper's
setting of a few tens of agents (cross-silo), where all take part.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg, QFedAvg

from nvrepro.core.tooling.validation import require
from nvrepro.fl.focus.em import check_clusters, m_step, prior_of


def _agent(msg: Message) -> int:
    return int(msg.content["metrics"]["agent"]) if not msg.has_error() else -1


class _SortedReplies:
    """Aggregate the replies in agent order (deterministic float sums).

    Flower's QFedAvg reads each reply with ``ArrayRecord.to_numpy_ndarrays(keep_input=False)``, which
    runs a full ``gc.collect()`` per reply (to free large models early); in a process that also holds
    Ray and torch that costs about 0.3 s a reply, most of a round's time for small models. The heap
    that exists before aggregating is frozen meanwhile (``gc.freeze``), so each collection scans only
    the objects the aggregation creates."""

    def aggregate_train(self, server_round: int, replies: Iterable[Message]):
        ordered = sorted(replies, key=lambda m: (_agent(m), m.metadata.src_node_id))
        gc.freeze()
        try:
            return super().aggregate_train(server_round, ordered)
        finally:
            gc.unfreeze()


class AgentFedAvg(_SortedReplies, FedAvg):
    """Flower's FedAvg (weighted by ``num-examples``), replies in agent order."""


class AgentQFedAvg(_SortedReplies, QFedAvg):
    """Flower's q-FedAvg (q-FFL), replies in agent order."""


class ClusteredFedAvg(FedAvg):
    """K cluster models carried in one packed ``ArrayRecord`` (:mod:`nvrepro.fl.focus.local`); the
    clients assign themselves (``assignment``: ``"soft"`` E-step or ``"hard"``) and train; this class
    runs the M-step and keeps the prior ``pi`` and each round's responsibilities ``{round: (N, K)}``."""

    assignment = "soft"

    def __init__(self, num_clusters: int, *, temperature: float = 1.0, min_responsibility: float = 1e-3,
                 fraction_train: float = 1.0, min_available_nodes: int = 2) -> None:
        check_clusters(num_clusters)
        require(temperature > 0, "temperature", f"must be > 0, got {temperature}")
        require(0 <= min_responsibility < 1, "min_responsibility", f"must be in [0, 1), got {min_responsibility}")
        super().__init__(fraction_train=fraction_train, fraction_evaluate=0.0,
                         min_train_nodes=min(num_clusters, min_available_nodes),
                         min_available_nodes=min_available_nodes)
        self.num_clusters = num_clusters
        self.temperature = temperature
        self.min_responsibility = min_responsibility
        self.prior = np.full(num_clusters, 1.0 / num_clusters)
        self.responsibilities: dict[int, np.ndarray] = {}
        self.agents: dict[int, list[int]] = {}
        self.current_arrays: ArrayRecord | None = None

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                        grid: Grid) -> Iterable[Message]:
        self.current_arrays = arrays
        config["assignment"] = self.assignment
        config["log-prior"] = [float(v) for v in np.log(self.prior)]
        config["temperature"] = float(self.temperature)
        config["min-responsibility"] = float(self.min_responsibility)
        # FedAvg's sampling waits until min_available_nodes have connected; counting the nodes before
        # it raced the simulation's start-up (0 nodes seen on a loaded machine).
        messages = list(super().configure_train(server_round, arrays, config, grid))
        check_clusters(self.num_clusters, len(list(grid.get_node_ids())))
        return messages

    def aggregate_train(self, server_round: int, replies: Iterable[Message]):
        valid, _ = self._check_and_log_replies(replies, is_train=True)
        if not valid or self.current_arrays is None:
            return None, None
        valid = sorted(valid, key=_agent)
        keys = list(self.current_arrays.keys())
        k_of = [int(key.partition(".")[0]) for key in keys]
        current = [[a for a, k in zip(self.current_arrays.to_numpy_ndarrays(), k_of) if k == c]
                   for c in range(self.num_clusters)]
        trained_arrays, weights, resp = [], [], []
        for msg in valid:
            m = msg.content["metrics"]
            arrays = msg.content["arrays"].to_numpy_ndarrays()
            trained_arrays.append([[a for a, k in zip(arrays, k_of) if k == c] for c in range(self.num_clusters)])
            r = np.asarray(m["responsibilities"], dtype=float)
            resp.append(r)
            weights.append(r * np.asarray(m["trained"], dtype=float) * float(m["num-examples"]))
        resp_arr = np.stack(resp)
        new = m_step(trained_arrays, np.stack(weights), current)
        self.prior = prior_of(resp_arr)
        self.responsibilities[server_round] = resp_arr
        self.agents[server_round] = [_agent(m) for m in valid]
        flat = [a for cluster in new for a in cluster]  # keys are cluster-major, as pack() writes them
        out = ArrayRecord({key: Array(np.asarray(a)) for key, a in zip(keys, flat, strict=True)})
        losses = np.array([float(m.content["metrics"]["train_loss"]) for m in valid])
        return out, MetricRecord({"train-loss": float(losses.mean())})


class FOCUS(ClusteredFedAvg):
    """FOCUS (arXiv 2207.10265, Alg. 1): soft EM over K cluster models."""

    assignment = "soft"


class IFCA(ClusteredFedAvg):
    """IFCA: hard cluster assignment by lowest loss (FOCUS's hard-EM counterpart)."""

    assignment = "hard"
