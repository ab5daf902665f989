"""DP-FedAvg rounds on Flower's simulation engine (Ray): :func:`run_dp_fedavg`.

One virtual SuperNode per user (``partition-id`` = user id), the ``ClientApp`` of
:mod:`nvrepro.fl.client`, the ``ServerApp`` of :mod:`nvrepro.fl.server` (run in a thread of this
process, which is how the per-round metrics come back).

What is deterministic for a given ``seed`` (and tested): the users (words, topics, sentences), the
initial weights, which users train in each round (the server's seeded sampler over the node ->
user map, not Flower's ``random.sample`` over random node ids), each client's batches and hence
its update (one torch thread per client, CPU), the order in which clipped updates are summed, the
DP noise, and so the eval losses: two runs with the same arguments give equal losses. Not
deterministic: node ids, message ids and the run id (Flower draws them at random), which Ray
worker runs which client and when, and every timing (``round_seconds``,
``client_updates_per_second``). On a GPU, or with several torch threads, the client updates may
differ in the last bits.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from flwr.simulation import run_simulation

from nvrepro.core.tooling.validation import require
from nvrepro.fl.client import app as dp_client_app
from nvrepro.fl.server import Arm, DPFedAvgSettings, make_server_app
from nvrepro.fl.task import DEFAULT_MODEL_CONFIG

# One CPU per virtual client, at most two clients at a time, no GPU; Ray kept small.
DEFAULT_BACKEND_CONFIG: dict[str, Any] = {
    "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
    "init_args": {"num_cpus": 2, "num_gpus": 0, "include_dashboard": False,
                  "logging_level": logging.ERROR, "log_to_driver": False},
}


def cluster_backend_config(address: str = "auto", cpus_per_client: float = 1.0,
                           gpus_per_client: float = 0.0) -> dict[str, Any]:
    """A ``backend_config`` that joins a running Ray cluster (``ray start --head`` on one machine,
    ``ray start --address=...`` on the others) instead of starting a local Ray: Flower's Ray backend
    passes ``init_args`` to ``ray.init``. Each virtual client gets ``cpus_per_client`` CPUs and
    ``gpus_per_client`` of a GPU, so as many clients train at once as the cluster holds."""
    return {"client_resources": {"num_cpus": cpus_per_client, "num_gpus": gpus_per_client},
            "init_args": {"address": address, "logging_level": logging.ERROR, "log_to_driver": False}}


def simulate(server_app, num_nodes: int, backend_config: dict[str, Any] | None = None, verbose: bool = False,
             client_app=None) -> None:
    """One Flower simulation of ``server_app`` against ``num_nodes`` virtual nodes running ``client_app``
    (default: the DP-FedAvg ``ClientApp``; FOCUS passes its own). Unless ``verbose``, Flower logs errors only: its per-round INFO lines
    (dozens a round), the note that federated evaluation is off (it is: evaluation is server-side)
    and the deprecation of ``run_simulation`` in favour of ``flwr run`` (which starts the apps in
    other processes; an in-process run is what lets the notebooks get per-round records and final
    weights back directly; README shows the ``flwr run`` commands)."""
    flwr_logger = logging.getLogger("flwr")
    level = flwr_logger.level
    if not verbose:
        flwr_logger.setLevel(logging.ERROR)
    # Ray >= 2.5x warns on every start that it will stop masking accelerators for num_gpus=0; opt in now.
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    try:
        run_simulation(server_app=server_app, client_app=client_app or dp_client_app, num_supernodes=num_nodes,
                       backend_name="ray", backend_config=backend_config or DEFAULT_BACKEND_CONFIG,
                       verbose_logging=verbose)
    except SystemExit as e:  # Flower exits the process on a failed run; make it an error instead
        raise RuntimeError(f"Flower simulation failed (exit code {e.code}); see its log above") from None
    finally:
        flwr_logger.setLevel(level)


def run_arms(arms: list[Arm], backend_config: dict[str, Any] | None = None,
             verbose: bool = False) -> dict[str, dict[str, Any]]:
    """Run several DP-FedAvg arms one after the other in ONE Flower simulation (one Ray start, one
    virtual node per user of the largest arm); ``{arm name: {"rounds": [...], "user_loss": [...],
    "seconds": wall time}}`` as :func:`nvrepro.fl.server.run_rounds` returns them."""
    require(len(arms) > 0, "arms", "needs at least one arm")
    names = [a.name for a in arms]
    require(len(set(names)) == len(names), "arms", f"names must be unique, got {names}")
    out: dict[str, dict[str, Any]] = {}
    simulate(make_server_app(arms=arms, arm_sink=out), max(a.settings.num_users for a in arms), backend_config,
              verbose)
    missing = [n for n in names if n not in out]
    if missing:
        raise RuntimeError(f"the simulation returned no result for arms {missing}; see Flower's log above")
    return out


def run_dp_fedavg(num_users: int = 4, clients_per_round: int = 2, rounds: int = 2, clip_norm: float = 1.0,
                  noise_multiplier: float = 0.0, local_steps: int = 2,
                  model_config: dict[str, Any] | None = None, seed: int = 0,
                  backend_config: dict[str, Any] | None = None, **settings: Any) -> list[dict[str, Any]]:
    """Run user-level DP-FedAvg on Flower's Ray simulation; one dict per round.

    Round 0 holds the initial model's ``eval_loss``; rounds ``1..rounds`` add ``round_seconds``
    (configure -> aggregate, evaluation excluded), ``client_updates_per_second``
    (``clients_per_round / round_seconds``), ``train_loss`` (mean over the round's clients),
    ``users`` (who trained), ``contribution_norms`` (each clipped update's L2 norm, <= ``clip_norm``)
    and ``noise_std`` (Flower's ``z C / m`` on the mean). Further keyword ``settings`` are fields of
    :class:`~nvrepro.fl.server.DPFedAvgSettings` (``server_lr``, ``client_lr``, ``batch_size``,
    ``seq_len``, ``sentences_per_user``, ``eval_users``).
    """
    s = DPFedAvgSettings(num_users=num_users, clients_per_round=clients_per_round, rounds=rounds,
                         clip_norm=clip_norm, noise_multiplier=noise_multiplier, local_steps=local_steps,
                         model_config=dict(model_config or DEFAULT_MODEL_CONFIG), seed=seed, **settings)
    rounds_out: list[dict[str, Any]] = []
    simulate(make_server_app(s, sink=rounds_out), num_users, backend_config)
    if len(rounds_out) != rounds + 1:
        raise RuntimeError(f"the simulation returned {len(rounds_out)} of {rounds + 1} round records; "
                           "see Flower's log above")
    return rounds_out
