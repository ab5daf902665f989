"""The Flower ``ServerApp``: user-level DP-FedAvg (arXiv 2305.12132, Sec. 2) on Flower's own DP wrapper.

The paper's round: sample ``m`` of ``N`` users; each trains the global model locally and sends its
delta; the server clips every delta to L2 norm ``C``, sums, adds ``N(0, (z C)^2)`` per coordinate to
the sum, divides by ``m`` and applies the result with a server learning rate ``eta``:

    w <- w + eta * (sum_i clip(delta_i, C) + N(0, z^2 C^2 I)) / m

Flower 1.42's ``DifferentialPrivacyServerSideFixedClipping`` (``flwr/serverapp/strategy/
dp_fixed_clipping.py``) clips each reply's ``reply - current`` with
``flwr.supercore.differential_privacy.compute_clip_model_update`` (FlatClip: one scale
``min(1, C / ||delta||)`` over all arrays), lets the wrapped FedAvg average the clipped replies,
and then adds noise to that *average* with ``stdv = compute_stdv(z, C, m)``, which is
``float((noise_multiplier * clipping_norm) / num_sampled_clients)`` (``differential_privacy.py``,
``compute_stdv``). Noise of std ``z C / m`` on the mean is exactly noise of std ``z C`` on the sum
divided by ``m``: the paper's mechanism, **provided** the average is the uniform mean over the ``m``
replies. FedAvg weights by the metric ``weighted_by_key``; here every client reports ``weight = 1``
and FedAvg averages by it (weighting by ``num-examples`` would make one user's sensitivity larger
than ``C / m``).

Where the wrapper does not fit, and what :class:`DPFedAvg` (the smallest subclass) changes:

1. Server learning rate: the wrapper returns ``w + mean + noise`` (``eta = 1``); the subclass
   returns ``w + eta * (that - w)``. With ``eta = 1`` it is the wrapper's result unchanged.
2. Reproducible noise: the wrapper draws with ``np.random.normal`` (the global numpy RNG,
   ``add_gaussian_noise_inplace``); the subclass draws the same ``N(0, compute_stdv(z, C, m)^2)``
   from ``np.random.default_rng([seed, round])``.
3. Deterministic sums: replies are sorted by user before FedAvg adds them (the arrival order varies).
4. Inspection: the subclass records each reply's update norm ``||reply - w||`` before clipping
   (``update_norms``) and, since the wrapper writes the clipped models back into the messages, each
   contribution's norm ``||clipped - w||`` after it (``contribution_norms``), and the round's wall
   time (``round_times``).
5. Poisson sampling (``sampling="poisson"``): see :class:`DPFedAvg`.

Sampling: Flower samples nodes with ``random.sample`` over node ids that are random per run, so the
users in a round would not repeat. :class:`UserSampledFedAvg` (a FedAvg whose only change is
``configure_train``) draws the round's users with ``np.random.default_rng([seed, round])``
(:func:`sample_users`) from the node -> user map that :func:`discover_users` asks the nodes for (one
``query`` message each) before round 1: exactly ``m`` users (``sampling="fixed"``, Flower's own
scheme, replace-one DP) or each user with probability ``m / N`` (``sampling="poisson"``, the
add/remove-one DP that :mod:`nvrepro.fl.accounting` and the notebooks account for). Flower 1.42's
wrapper can also account privacy, but only without amplification by sampling, so accounting stays
in :mod:`nvrepro.fl.accounting`.

Evaluation is server-side only (``fraction_evaluate = 0``): next-token loss in nats per byte of
held-out users ``N .. N + eval_users - 1``, whom no client plays. A ``ServerApp`` can run several
:class:`Arm` s one after the other on the same nodes (:func:`make_server_app` with ``arms``), which
is how a notebook compares settings with one engine start.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping, FedAvg
from flwr.supercore.differential_privacy import compute_stdv

from nvrepro.core.lm.config import ModelConfig
from nvrepro.core.tooling.validation import ConfigError, require, require_positive_int
from nvrepro.fl.accounting import SAMPLINGS
from nvrepro.fl.task import (DEFAULT_MODEL_CONFIG, build_lm, model_config_json, nats_per_byte, texts_of,
                             tokenizer_from_json)


# Run-config keys the ServerApp reads besides the settings.
RUN_CONFIG_EXTRAS = {"metrics-path"}


@dataclass
class DPFedAvgSettings:
    """One DP-FedAvg run. In a deployment these come from the app's run config (the same names with
    dashes, ``model-config`` as a JSON string; :meth:`from_run_config`).

    ``num_users`` users train (``clients_per_round`` of them a round: exactly, or in expectation with
    ``sampling="poisson"``); ``clip_norm`` C and ``noise_multiplier`` z set the mechanism, ``server_lr``
    scales the noisy mean; each client runs ``local_steps`` SGD steps (``client_lr``, ``batch_size``
    rows of ``seq_len`` tokens) on its first ``sentences_per_user`` sentences; ``eval_users`` held-out
    users are scored every ``eval_every`` rounds. ``tokenizer``: ``""`` bytes, a BPE's JSON or a
    ``tokenizer.json`` path; ``user_data``: ``""`` synthetic users, else a dataset directory
    (:mod:`nvrepro.fl.user_data`); ``seed`` fixes users, initial weights, sampling, batches and noise."""

    num_users: int = 4
    clients_per_round: int = 2
    rounds: int = 2
    clip_norm: float = 1.0
    noise_multiplier: float = 0.0
    server_lr: float = 1.0
    local_steps: int = 2
    client_lr: float = 0.5
    batch_size: int = 4
    seq_len: int = 32
    sentences_per_user: int = 64
    eval_users: int = 2
    eval_every: int = 1
    sampling: str = "fixed"
    tokenizer: str = ""
    user_data: str = ""
    seed: int = 0
    model_config: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_MODEL_CONFIG))

    def __post_init__(self) -> None:
        for name in ("num_users", "clients_per_round", "rounds", "local_steps", "batch_size",
                     "seq_len", "sentences_per_user", "eval_users", "eval_every"):
            require_positive_int(getattr(self, name), name)
        require(self.clients_per_round <= self.num_users, "clients_per_round",
                f"must be <= num_users={self.num_users}, got {self.clients_per_round}")
        require(self.sampling in SAMPLINGS, "sampling", f"must be one of {SAMPLINGS}, got {self.sampling!r}")
        require(self.clip_norm > 0, "clip_norm", f"must be > 0, got {self.clip_norm}")
        require(self.noise_multiplier >= 0, "noise_multiplier", f"must be >= 0, got {self.noise_multiplier}")
        require(self.server_lr > 0, "server_lr", f"must be > 0, got {self.server_lr}")
        require(self.client_lr > 0, "client_lr", f"must be > 0, got {self.client_lr}")
        require(isinstance(self.seed, int) and self.seed >= 0, "seed", f"must be a non-negative integer, got {self.seed!r}")
        try:
            cfg = ModelConfig.from_dict(dict(self.model_config))
        except ConfigError as e:
            raise ConfigError(f"model_config.{e}") from None
        require(self.seq_len <= cfg.max_seq_len, "seq_len",
                f"must be <= model_config.max_seq_len={cfg.max_seq_len}, got {self.seq_len}")
        if self.user_data:
            from nvrepro.fl.user_data import num_users

            available = num_users(self.user_data)
            require(self.num_users + self.eval_users <= available, "num_users",
                    f"num_users + eval_users = {self.num_users + self.eval_users} exceeds the {available} users "
                    f"of user_data={self.user_data}")
        vocab = tokenizer_from_json(self.tokenizer).vocab_size
        require(vocab <= cfg.vocab_size, "model_config.vocab_size",
                f"must cover the tokenizer's {vocab} ids, got {cfg.vocab_size}")

    @property
    def sampling_rate(self) -> float:
        """``q = m / N``: each user's chance to train in a round (exact for both samplings)."""
        return self.clients_per_round / self.num_users

    def to_run_config(self) -> dict[str, Any]:
        """Flat run-config dict (dashed keys, ``model-config`` as JSON)."""
        out = {k.replace("_", "-"): v for k, v in asdict(self).items() if k != "model_config"}
        out["model-config"] = model_config_json(self.model_config)
        return out

    @classmethod
    def from_run_config(cls, run_config: dict[str, Any]) -> "DPFedAvgSettings":
        """Settings from a Flower run config; absent keys take the defaults, an unknown key (a typo
        would otherwise be ignored) raises :class:`ConfigError` naming it."""
        defaults = asdict(cls())
        known = {name.replace("_", "-") for name in defaults} | RUN_CONFIG_EXTRAS
        unknown = sorted(set(run_config) - known)
        if unknown:
            raise ConfigError(f"{unknown[0]}: not a setting of DPFedAvg (known: {', '.join(sorted(known))})")
        kwargs: dict[str, Any] = {}
        for name, default in defaults.items():
            key = name.replace("_", "-")
            if key in run_config:
                value = run_config[key]
                kwargs[name] = json.loads(value) if name == "model_config" else type(default)(value)
        return cls(**kwargs)


def train_config(settings: DPFedAvgSettings) -> ConfigRecord:
    """The ``ConfigRecord`` every client receives (keys :data:`nvrepro.fl.client.TRAIN_KEYS`; FedAvg adds
    ``server-round``)."""
    s = settings
    return ConfigRecord({"model-config": model_config_json(s.model_config), "local-steps": s.local_steps,
                         "client-lr": float(s.client_lr), "batch-size": s.batch_size, "seq-len": s.seq_len,
                         "sentences-per-user": s.sentences_per_user, "seed": s.seed,
                         "tokenizer": s.tokenizer, "user-data": s.user_data})


def discover_users(grid: Grid, num_nodes: int, timeout: float = 600.0) -> dict[int, int]:
    """Wait for ``num_nodes`` nodes, ask each for its ``partition-id`` (a ``query`` message) and
    return ``{node_id: user_id}``."""
    deadline = time.monotonic() + timeout
    while len(node_ids := sorted(grid.get_node_ids())) < num_nodes:
        if time.monotonic() > deadline:
            raise TimeoutError(f"num_users: only {len(node_ids)} of {num_nodes} nodes connected")
        time.sleep(0.2)
    messages = [Message(content=RecordDict({"config": ConfigRecord({})}), message_type=MessageType.QUERY,
                        dst_node_id=node_id) for node_id in node_ids]
    mapping = {}
    for reply in grid.send_and_receive(messages, timeout=timeout):
        if reply.has_error():
            raise RuntimeError(f"node {reply.metadata.src_node_id} failed the user query: {reply.error.reason}")
        mapping[reply.metadata.src_node_id] = int(reply.content["metrics"]["partition-id"])
    return mapping


def sample_users(users: list[int], clients_per_round: int, sampling: str, seed: int, server_round: int) -> list[int]:
    """The users who train in ``server_round``, sorted: exactly ``clients_per_round`` of ``users``
    without replacement (``"fixed"``), or each user independently with probability
    ``clients_per_round / len(users)`` (``"poisson"``); drawn from ``default_rng([seed, round])``."""
    rng = np.random.default_rng([seed, server_round])
    if sampling == "poisson":
        keep = rng.random(len(users)) < clients_per_round / len(users)
        return [u for u, k in zip(sorted(users), keep) if k]
    return sorted(int(u) for u in rng.choice(sorted(users), clients_per_round, replace=False))


class UserSampledFedAvg(FedAvg):
    """FedAvg that trains the users :func:`sample_users` draws each round from ``node_users``
    (``{node_id: user_id}``); with an empty map it samples like FedAvg."""

    def __init__(self, clients_per_round: int, num_users: int, seed: int,
                 node_users: dict[int, int] | None = None, sampling: str = "fixed") -> None:
        super().__init__(fraction_train=clients_per_round / num_users, fraction_evaluate=0.0,
                         min_train_nodes=clients_per_round, min_available_nodes=num_users,
                         weighted_by_key="weight")
        self.clients_per_round = clients_per_round
        self.sampling = sampling
        self.seed = seed
        self.node_users = dict(node_users or {})
        self.sampled_users: dict[int, list[int]] = {}

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                        grid: Grid) -> Iterable[Message]:
        if not self.node_users:
            return super().configure_train(server_round, arrays, config, grid)
        by_user = {user: node for node, user in self.node_users.items()}
        users = sample_users(list(by_user), self.clients_per_round, self.sampling, self.seed, server_round)
        self.sampled_users[server_round] = users
        config["server-round"] = server_round
        record = RecordDict({self.arrayrecord_key: arrays, self.configrecord_key: config})
        return self._construct_messages(record, [by_user[u] for u in users], MessageType.TRAIN)


class _PoissonCountNote(logging.Filter):
    """Drops the wrapper's warning that the replies outnumber or fall short of ``num_sampled_clients``:
    under Poisson sampling the count varies by design and the divisor is the expected count."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "differs from the number of sampled clients" not in record.getMessage()


class DPFedAvg(DifferentialPrivacyServerSideFixedClipping):
    """Flower's server-side fixed-clipping DP wrapper plus a server learning rate, seeded noise,
    sorted replies, per-round records and Poisson sampling (see the module docstring for why each).

    ``num_sampled_clients`` is the divisor ``m``: the number trained per round for fixed-size
    sampling, the expected number ``q N`` for Poisson sampling, where the round's ``k`` clipped
    updates are summed and divided by ``q N`` (not ``k``: the divisor must not depend on who took
    part) and a round nobody joined still releases ``w + eta * noise``."""

    def __init__(self, strategy: FedAvg, noise_multiplier: float, clipping_norm: float,
                 num_sampled_clients: int, *, server_lr: float = 1.0, seed: int = 0,
                 node_users: dict[int, int] | None = None, sampling: str = "fixed") -> None:
        super().__init__(strategy, noise_multiplier, clipping_norm, num_sampled_clients)
        self.server_lr = server_lr
        self.seed = seed
        self.sampling = sampling
        self.node_users = dict(node_users or {})
        self.contribution_norms: dict[int, list[float]] = {}
        self.update_norms: dict[int, list[float]] = {}
        self.noise_std: dict[int, float] = {}
        self.round_times: dict[int, float] = {}
        self._round = 0
        self._replies = 0
        self._t0 = 0.0

    def configure_train(self, server_round, arrays, config, grid):
        self._t0 = time.perf_counter()
        return super().configure_train(server_round, arrays, config, grid)

    def aggregate_train(self, server_round: int, replies: Iterable[Message]):
        replies = sorted(replies, key=lambda m: (self.node_users.get(m.metadata.src_node_id, -1),
                                                 m.metadata.src_node_id))
        self._round, self._replies = server_round, len(replies)
        current = self.current_arrays.to_numpy_ndarrays()
        self.update_norms[server_round] = self._norms(replies, current)  # before the wrapper clips them
        note = _PoissonCountNote()
        if self.sampling == "poisson":
            logging.getLogger("flwr").addFilter(note)
        try:
            if replies:
                arrays, metrics = super().aggregate_train(server_round, replies)
            else:  # Poisson sampling drew nobody: the mechanism still releases the noise
                arrays, metrics = self._add_noise_to_aggregated_arrays(self.current_arrays), None
        finally:
            logging.getLogger("flwr").removeFilter(note)
        self.contribution_norms[server_round] = self._norms(replies, current)
        if arrays is not None and self.server_lr != 1.0:
            arrays = ArrayRecord({k: Array(np.asarray(c + self.server_lr * (a - c), dtype=a.dtype))
                                  for k, a, c in zip(arrays.keys(), arrays.to_numpy_ndarrays(), current, strict=True)})
        self.round_times[server_round] = time.perf_counter() - self._t0
        return arrays, metrics

    @staticmethod
    def _norms(replies: list[Message], current: list[np.ndarray]) -> list[float]:
        """``||reply - current||`` (flat L2 over all arrays) of every reply without an error."""
        return [float(np.sqrt(sum(np.sum((r.astype(np.float64) - c) ** 2) for r, c in
                                  zip(reply.content["arrays"].to_numpy_ndarrays(), current, strict=True))))
                for reply in replies if not reply.has_error()]

    def _add_noise_to_aggregated_arrays(self, aggregated_arrays: ArrayRecord) -> ArrayRecord:
        """``aggregated_arrays`` is ``w + mean_k(clipped deltas)`` (FedAvg's uniform mean over the
        ``k`` replies). Fixed-size sampling: ``k = m``, add the noise. Poisson: rescale the mean to
        ``sum / (q N)`` first."""
        stdv = compute_stdv(self.noise_multiplier, self.clipping_norm, self.num_sampled_clients)
        self.noise_std[self._round] = stdv
        current = self.current_arrays.to_numpy_ndarrays()
        scale = self._replies / self.num_sampled_clients if self.sampling == "poisson" else 1.0
        rng = np.random.default_rng([self.seed, self._round, 7])
        out = {}
        for k, a, c in zip(aggregated_arrays.keys(), aggregated_arrays.to_numpy_ndarrays(), current, strict=True):
            mean = a if scale == 1.0 else c + scale * (a.astype(np.float64) - c)
            out[k] = Array(np.asarray(mean + rng.normal(0.0, stdv, a.shape), dtype=a.dtype))
        return ArrayRecord(out)


def build_strategy(settings: DPFedAvgSettings, node_users: dict[int, int] | None = None) -> DPFedAvg:
    """FedAvg (users drawn by :func:`sample_users`, uniform weights) inside :class:`DPFedAvg`."""
    s = settings
    inner = UserSampledFedAvg(s.clients_per_round, s.num_users, s.seed, node_users, s.sampling)
    return DPFedAvg(inner, s.noise_multiplier, s.clip_norm, s.clients_per_round, server_lr=s.server_lr,
                    seed=s.seed, node_users=node_users, sampling=s.sampling)


def eval_texts(settings: DPFedAvgSettings) -> list[list[str]]:
    """The held-out users' sentences, one list per user (users ``num_users .. num_users + eval_users - 1``,
    whom no client plays)."""
    s = settings
    return [texts_of(u, s.sentences_per_user, s.seed, s.user_data)
            for u in range(s.num_users, s.num_users + s.eval_users)]


def per_user_loss(settings: DPFedAvgSettings, arrays: ArrayRecord | dict) -> list[float]:
    """Nats per byte of the model ``arrays`` on each held-out user's text (:func:`eval_texts`)."""
    s = settings
    model = build_lm(s.model_config, s.seed)
    model.load_state_dict(arrays.to_torch_state_dict() if isinstance(arrays, ArrayRecord) else arrays)
    tok = tokenizer_from_json(s.tokenizer)
    return [nats_per_byte(model, texts, s.seq_len, tok) for texts in eval_texts(s)]


def make_evaluate_fn(settings: DPFedAvgSettings):
    """Server-side evaluation every ``eval_every`` rounds (and at the last): ``(round, arrays) ->
    MetricRecord({"eval-loss": nats per byte over all held-out users' text})``."""
    s = settings
    texts = [t for user in eval_texts(s) for t in user]
    model = build_lm(s.model_config, s.seed)
    tok = tokenizer_from_json(s.tokenizer)

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        if server_round % s.eval_every and server_round != s.rounds:
            return None
        model.load_state_dict(arrays.to_torch_state_dict())
        return MetricRecord({"eval-loss": nats_per_byte(model, texts, s.seq_len, tok)})

    return evaluate


@dataclass
class Arm:
    """One DP-FedAvg run among several on the same nodes: its settings, a name, and the initial
    weights (``None``: a fresh model from ``settings.seed``; e.g. a publicly pretrained state dict)."""

    name: str
    settings: DPFedAvgSettings
    initial_state: dict | None = None


def run_rounds(grid: Grid, settings: DPFedAvgSettings, node_users: dict[int, int] | None = None,
               initial_state: dict | None = None) -> tuple[dict[str, Any], DPFedAvg]:
    """Run ``settings.rounds`` DP-FedAvg rounds (users discovered first unless ``node_users`` is
    given); returns ``{"rounds": per-round metrics, "user_loss": per held-out user nats/byte of the
    final model, "state": its state dict}`` and the strategy."""
    s = settings
    node_users = discover_users(grid, s.num_users) if node_users is None else node_users
    node_users = {node: user for node, user in node_users.items() if user < s.num_users}
    require(len(node_users) == s.num_users, "num_users",
            f"{s.num_users} users need as many nodes, {len(node_users)} play users below {s.num_users}")
    strategy = build_strategy(s, node_users)
    initial = ArrayRecord(initial_state if initial_state is not None else build_lm(s.model_config, s.seed).state_dict())
    result = strategy.start(grid, initial, num_rounds=s.rounds, train_config=train_config(s),
                            evaluate_fn=make_evaluate_fn(s))
    evals = result.evaluate_metrics_serverapp
    rounds = [{"round": 0, "eval_loss": float(evals[0]["eval-loss"])}]
    for r in range(1, s.rounds + 1):
        seconds = strategy.round_times[r]
        train = result.train_metrics_clientapp.get(r)
        users = strategy.strategy.sampled_users.get(r, [])
        rounds.append({"round": r, "eval_loss": float(evals[r]["eval-loss"]) if r in evals else None,
                       "round_seconds": seconds, "client_updates_per_second": len(users) / seconds,
                       "train_loss": float(train["train-loss"]) if train else float("nan"),
                       "users": users, "contribution_norms": strategy.contribution_norms.get(r, []),
                       "update_norms": strategy.update_norms.get(r, []),
                       "noise_std": strategy.noise_std.get(r, 0.0)})
    final = result.arrays if result.arrays is not None else initial
    return {"rounds": rounds, "user_loss": per_user_loss(s, final), "state": final.to_torch_state_dict()}, strategy


def make_server_app(settings: DPFedAvgSettings | None = None, sink: list | None = None,
                    arms: list[Arm] | None = None, arm_sink: dict | None = None) -> ServerApp:
    """A ``ServerApp`` running :func:`run_rounds`. ``settings=None`` reads them from the run config;
    ``sink`` (same process: simulation) receives the per-round metrics, and a ``metrics-path`` in the
    run config gets them as JSON (any engine). With ``arms``, the app runs each arm in turn on the
    same nodes (one engine start for a whole experiment) and ``arm_sink[name]`` gets each result."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        if arms:
            node_users = discover_users(grid, max(a.settings.num_users for a in arms))
            for arm in arms:
                t0 = time.perf_counter()
                out, _ = run_rounds(grid, arm.settings, node_users, arm.initial_state)
                out["seconds"] = time.perf_counter() - t0
                if arm_sink is not None:
                    arm_sink[arm.name] = out
            return
        s = settings or DPFedAvgSettings.from_run_config(context.run_config)
        out, _ = run_rounds(grid, s)
        if sink is not None:
            sink.extend(out["rounds"])
        path = context.run_config.get("metrics-path")
        if path:
            with open(str(path), "w") as f:
                json.dump({k: v for k, v in out.items() if k != "state"}, f)

    return app


app = make_server_app()
