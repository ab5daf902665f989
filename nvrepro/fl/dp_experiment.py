"""Notebook 01 (``notebooks/fl/01_dp_fedavg.ipynb``): DP-FedAvg on Flower, and the paper's lever of
many clients per round.

User-level DP-FedAvg (arXiv 2305.12132 Sec. 2) adds noise of std ``z C`` to the SUM of the round's
clipped updates and divides by ``m``: at a fixed privacy budget the noise on the model is
``z C / m``, so more clients per round buy utility, which is why production DP-FL samples
hundreds to thousands of devices a round. The experiment runs three arms of the same number of
rounds on one Flower simulation:

* ``fedavg``: ``M`` clients a round, no noise (clipping only): the non-private reference;
* ``dp_many``: ``M`` clients a round, ``z`` calibrated to :data:`EPSILON`;
* ``dp_few``: ``M / FEW_FACTOR`` clients a round, ``z`` calibrated to the same epsilon (a smaller
  sampling rate needs less ``z`` for the same epsilon, but the noise on the mean ``z C / m`` grows).

:data:`MORE_CLIENTS` checks that ``dp_many`` reaches a lower held-out loss than ``dp_few`` (paired
over held-out users); the figure also shows the non-private arm and every clipped contribution's
norm (each at most ``C``, the premise of the accounting).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from nvrepro.core.tooling.claims import Claim, Judgement, all_parts, at_least_threshold, exact, not_applicable
from nvrepro.core.tooling.intervals import paired_gain
from nvrepro.core.tooling.profiles import profile_settings
from nvrepro.fl.arms import calibrated_settings, summarize
from nvrepro.fl.server import Arm

FEW_FACTOR = 3

# ``base``: DPFedAvgSettings fields shared by the arms (``clients_per_round`` is the many-clients arm's);
# ``epsilon`` and ``delta``: the privacy budget of both DP arms.
PROFILES = {
    "smoke": dict(base=dict(num_users=6, clients_per_round=3, rounds=2, eval_users=3, sentences_per_user=16,
                            local_steps=2, batch_size=4, seq_len=32, clip_norm=0.5, client_lr=0.5,
                            eval_every=1),
                  epsilon=8.0, delta=1e-3),
    "paper": dict(base=dict(num_users=300, clients_per_round=30, rounds=30, eval_users=50, sentences_per_user=64,
                            local_steps=4, batch_size=8, seq_len=32, clip_norm=0.5, client_lr=0.5,
                            eval_every=5),
                  epsilon=4.0, delta=1e-5),
}


def plan(profile: str) -> dict:
    """The settings of ``profile`` (:data:`PROFILES`); a clear error for an unknown one."""
    return profile_settings(PROFILES, profile)


def arm_settings(profile: str, seed: int = 0) -> dict:
    """``{arm name: DPFedAvgSettings}`` of the three arms."""
    p = plan(profile)
    base = dict(p["base"], seed=seed)
    few = max(1, base["clients_per_round"] // FEW_FACTOR)
    return {"fedavg": calibrated_settings(base, None, p["delta"]),
            "dp_many": calibrated_settings(base, p["epsilon"], p["delta"]),
            "dp_few": calibrated_settings(base, p["epsilon"], p["delta"], clients_per_round=few)}


def round_demo(num_clients: int = 8, clip_norm: float = 1.0, noise_multiplier: float = 1.0, draws: int = 300,
               seed: int = 0) -> dict:
    """One DP-FedAvg round on 2-D updates, by :func:`nvrepro.fl.clipping.dp_fedavg_aggregate`: the
    clients' raw updates ``(m, 2)`` (two of them far outside the ball), the clipped ones, their
    mean, and ``draws`` noisy means ``(draws, 2)`` (one per noise draw) whose spread is ``z C / m``."""
    from nvrepro.fl.clipping import clip_update, dp_fedavg_aggregate

    rng = np.random.default_rng(seed)
    raw = rng.normal([0.6, 0.3], 0.35, size=(num_clients, 2))
    raw[:2] *= 4.0  # two clients whose updates would dominate an unclipped mean
    clipped = np.stack([clip_update([u], clip_norm)[0][0] for u in raw])
    noisy = np.stack([dp_fedavg_aggregate([[u] for u in raw], clip_norm, noise_multiplier, rng=rng)[0]
                      for _ in range(draws)])
    return {"raw": raw, "clipped": clipped, "mean": clipped.mean(0), "noisy": noisy, "clip_norm": clip_norm,
            "noise_multiplier": noise_multiplier, "noise_std": noise_multiplier * clip_norm / num_clients}


def run(profile: str = "smoke", seed: int = 0) -> dict:
    """Run the three arms in one Flower simulation; returns each arm's summary
    (:func:`nvrepro.fl.arms.summarize`) with the plan."""
    from nvrepro.fl.simulation import run_arms

    p = plan(profile)
    settings = arm_settings(profile, seed)
    results = run_arms([Arm(name, s) for name, s in settings.items()])
    arms = {name: summarize(results[name], s, p["delta"]) for name, s in settings.items()}
    return {"arms": arms, "epsilon": p["epsilon"], "delta": p["delta"], "plan": p, "profile": profile, "seed": seed}


def judge_more_clients(metrics: Mapping[str, Any]) -> Judgement:
    arms = metrics["arms"]
    clipped = max(a["max_norm"] / a["clip_norm"] for a in arms.values())
    gain = paired_gain(arms["dp_many"]["user_loss"], arms["dp_few"]["user_loss"])
    if gain is None:
        return not_applicable("fewer than two held-out users")
    many, few = arms["dp_many"]["clients_per_round"], arms["dp_few"]["clients_per_round"]
    return all_parts({
        "clipped": exact(clipped <= 1 + 1e-5, f"largest clipped contribution / C = {clipped:.6f} (<= 1)"),
        "more_clients": at_least_threshold(
            gain, 0.0, f"held-out nats/byte, {few} - {many} clients a round at epsilon {metrics['epsilon']:g}")})


MORE_CLIENTS = Claim(
    "fl_more_clients",
    "At the same user-level epsilon and number of rounds, DP-FedAvg with three times more clients per round "
    "reaches a lower held-out loss (noise z C / m on the model shrinks with m); every clipped contribution's "
    "norm is at most C; paired bootstrap over held-out users.",
    judge_more_clients)


def summary_text(metrics: Mapping[str, Any]) -> str:
    """One line per arm: clients a round, z, noise std on the mean, epsilon, held-out loss, speed."""
    lines = [f"{'arm':<9}{'m':>5}{'z':>8}{'std':>9}{'epsilon':>9}{'nats/byte':>11}{'upd/s':>8}{'seconds':>9}"]
    for name, a in metrics["arms"].items():
        eps = "inf" if a["epsilon"] is None else f"{a['epsilon']:.2f}"
        lines.append(f"{name:<9}{a['clients_per_round']:>5}{a['noise_multiplier']:>8.3f}{a['noise_std']:>9.4f}"
                     f"{eps:>9}{a['mean_loss']:>11.3f}{a['client_updates_per_second']:>8.1f}{a['seconds']:>9.0f}")
    return "\n".join(lines)
