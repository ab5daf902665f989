"""The server side of one DP-FedAvg round: clip each client's update, sum, add Gaussian noise, average.

DP-FedAvg (McMahan et al. 2018; arXiv 2305.12132 Sec. 2, App. A) bounds each user's influence on a
round by clipping the client's model update (all its tensors together, one flat vector) to L2 norm
``C``; the sum of clipped updates then moves by at most ``C`` when a user is added or removed, so
Gaussian noise of std ``z C`` on the sum makes the round a Gaussian mechanism with noise multiplier
``z`` (accounted in :mod:`nvrepro.fl.accounting`). The server divides by the number of sampled
clients ``m``, so the mean update carries noise of std ``z C / m`` per coordinate: more clients a
round buy the same privacy with less noise on the model, which is the paper's lever.

Framework-free on purpose: an update is a list of numpy arrays (Flower's ``NDArrays``, one array
per parameter tensor, any shapes) or a ``{name: tensor}`` dict (a torch ``state_dict`` delta);
another helper wires these into a Flower strategy.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from nvrepro.core.tooling.validation import require, require_positive_int

NDArrays = list[np.ndarray]  # Flower's parameter format: one array per tensor


def _squared_norm(x) -> float:
    """Sum of squares of one array or tensor, in float64 (float16 updates would overflow)."""
    if isinstance(x, np.ndarray):
        return float(np.sum(np.square(x, dtype=np.float64)))
    return float(x.detach().double().square().sum())  # a torch tensor


def _values(update) -> list:
    return list(update.values()) if isinstance(update, Mapping) else list(update)


def update_norm(update: Mapping[str, object] | Sequence[np.ndarray]) -> float:
    """The L2 norm of the whole update, all tensors flattened into one vector."""
    return math.sqrt(sum(_squared_norm(x) for x in _values(update)))


def clip_update(update: Mapping[str, object] | Sequence[np.ndarray],
                clip_norm: float) -> tuple[Mapping[str, object] | NDArrays, float]:
    """``(update * min(1, C / ||update||), ||update||)``: the update scaled into the L2 ball of
    radius ``clip_norm`` (flat norm over all tensors), and its norm before clipping.

    A dict stays a dict (same keys), a list of arrays a list; shapes and dtypes are kept and the
    input is not modified. An update inside the ball (the zero update included) comes back equal."""
    require(isinstance(clip_norm, (int, float)) and math.isfinite(clip_norm) and clip_norm > 0,
            "clip_norm", f"must be a positive finite number, got {clip_norm!r}")
    norm = update_norm(update)
    scale = min(1.0, clip_norm / norm) if norm > 0 else 1.0
    if isinstance(update, Mapping):
        return {name: x * scale for name, x in update.items()}, norm
    return [np.asarray(x * scale, dtype=x.dtype) for x in update], norm


def dp_fedavg_aggregate(updates: Sequence[Sequence[np.ndarray]], clip_norm: float, noise_multiplier: float, *,
                        num_clients: int | None = None,
                        rng: np.random.Generator | int | None = None) -> NDArrays:
    """The DP-FedAvg mean of one round: ``(sum_i clip(u_i, C) + N(0, (z C)^2 I)) / m``.

    ``updates``: ``m`` client updates, each a list of arrays with the same shapes across clients
    (Flower ``NDArrays``). Returns one list of arrays of those shapes (dtype of the first update).
    ``noise_multiplier`` 0 gives the plain mean of clipped updates (no privacy). ``num_clients``
    is the divisor ``m``: by default ``len(updates)``, right for fixed-size sampling without
    dropouts; with Poisson sampling pass the expected number ``q N``, since the divisor must not
    depend on who took part. ``rng``: a ``numpy`` Generator or a seed (None: fresh entropy)."""
    require(len(updates) > 0, "updates", "needs at least one client update")
    require(isinstance(noise_multiplier, (int, float)) and math.isfinite(noise_multiplier)
            and noise_multiplier >= 0, "noise_multiplier",
            f"must be a non-negative finite number, got {noise_multiplier!r}")
    divisor = len(updates) if num_clients is None else num_clients
    require_positive_int(divisor, "num_clients")
    shapes = [np.shape(x) for x in updates[0]]
    for i, update in enumerate(updates):
        require([np.shape(x) for x in update] == shapes, f"updates[{i}]",
                f"shapes {[np.shape(x) for x in update]} differ from updates[0]'s {shapes}")

    total = [np.zeros(shape, dtype=np.float64) for shape in shapes]
    for update in updates:
        clipped, _ = clip_update(update, clip_norm)
        for acc, x in zip(total, clipped):
            acc += x
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    std = noise_multiplier * clip_norm  # on the SUM: one user moves it by at most C
    dtypes = [np.asarray(x).dtype for x in updates[0]]
    return [((acc + generator.normal(0.0, std, size=acc.shape)) / divisor).astype(dtype)
            for acc, dtype in zip(total, dtypes)]
