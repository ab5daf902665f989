"""What both DP-FL notebooks need around :func:`nvrepro.fl.simulation.run_arms`: settings calibrated to
a target epsilon, and the plain-data summary of a finished arm.

Every arm here samples clients by Poisson sampling at ``q = m / N`` and is accounted with
``dp_accounting``'s RDP accountant under add/remove-one user-level DP (:mod:`nvrepro.fl.accounting`):
the textbook DP-FedAvg guarantee, and exactly what :class:`nvrepro.fl.server.DPFedAvg` does with
``sampling="poisson"``. An epsilon of ``None`` means no noise (non-private FedAvg with clipping).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nvrepro.fl.accounting import epsilon as poisson_epsilon
from nvrepro.fl.accounting import noise_multiplier_for_epsilon
from nvrepro.fl.server import DPFedAvgSettings

ACCOUNTANT = "rdp"


def calibrated_settings(base: dict[str, Any], target_epsilon: float | None, delta: float,
                        **overrides: Any) -> DPFedAvgSettings:
    """``base`` (fields of :class:`~nvrepro.fl.server.DPFedAvgSettings`) with Poisson sampling and the
    smallest noise multiplier whose epsilon after ``rounds`` rounds is at most ``target_epsilon``
    (``None``: noise 0)."""
    fields = dict(base, **overrides, sampling="poisson")
    if target_epsilon is None or math.isinf(target_epsilon):
        fields["noise_multiplier"] = 0.0
    else:
        q = fields["clients_per_round"] / fields["num_users"]
        fields["noise_multiplier"] = noise_multiplier_for_epsilon(target_epsilon, q, fields["rounds"], delta,
                                                                  accountant=ACCOUNTANT)
    return DPFedAvgSettings(**fields)


def spent_epsilon(settings: DPFedAvgSettings, delta: float, runs: int = 1) -> float:
    """The epsilon ``settings`` spends over its rounds (``runs`` such runs composed); inf without noise."""
    if settings.noise_multiplier == 0:
        return math.inf
    return poisson_epsilon(settings.noise_multiplier, settings.sampling_rate, settings.rounds * runs, delta,
                           accountant=ACCOUNTANT)


def summarize(result: dict[str, Any], settings: DPFedAvgSettings, delta: float) -> dict[str, Any]:
    """A finished arm as plain data: the eval curve (rounds with an evaluation), the per-user final
    losses, epsilon spent, z, noise std on the mean, the largest clipped contribution's norm, the
    quantiles (5, 25, 50, 75, 95%) of update norms before clipping and the share clipped, client
    updates per second over the run and wall time."""
    rounds = result["rounds"]
    curve = [(r["round"], r["eval_loss"]) for r in rounds if r["eval_loss"] is not None]
    norms = [n for r in rounds[1:] for n in r["contribution_norms"]]
    raw = [n for r in rounds[1:] for n in r["update_norms"]]
    updates = sum(len(r["users"]) for r in rounds[1:])
    train_seconds = sum(r["round_seconds"] for r in rounds[1:])
    eps = spent_epsilon(settings, delta)
    return {"curve_rounds": [c[0] for c in curve], "curve_loss": [c[1] for c in curve],
            "user_loss": list(result["user_loss"]), "mean_loss": float(np.mean(result["user_loss"])),
            "epsilon": None if math.isinf(eps) else eps, "noise_multiplier": settings.noise_multiplier,
            "noise_std": settings.noise_multiplier * settings.clip_norm / settings.clients_per_round,
            "clip_norm": settings.clip_norm, "max_norm": max(norms) if norms else 0.0,
            "update_norm_quantiles": np.quantile(raw, [0.05, 0.25, 0.5, 0.75, 0.95]).tolist() if raw else [],
            "clipped_share": float(np.mean(np.asarray(raw) > settings.clip_norm)) if raw else 0.0,
            "client_updates": updates,
            "client_updates_per_second": updates / train_seconds if train_seconds else 0.0,
            "clients_per_round": settings.clients_per_round, "num_users": settings.num_users,
            "rounds": settings.rounds, "seconds": float(result.get("seconds", train_seconds))}
