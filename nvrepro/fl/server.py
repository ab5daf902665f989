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
4. Inspection: after aggregation the replies hold the clipped models (the wrapper writes them back
   into the messages), so the subclass records each contribution's norm ``||clipped - w||`` per round
   (``contribution_norms``) and the round's wall time (``round_times``).

Sampling: Flower samples nodes with ``random.sample`` over node ids that are random per run, so the
users in a round would not repeat. :class:`UserSampledFedAvg` (a FedAvg whose only change is
``configure_train``) samples exactly ``m`` users per round with ``np.random.default_rng([seed, round])``
from the node -> user map that :func:`discover_users` asks the nodes for (one ``query`` message
each) before round 1. Evaluation is server-side only (``fraction_evaluate = 0``): the next-token
loss of held-out users ``N .. N + eval_users - 1``, whom no client plays.
"""

from __future__ import annotations

import json
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
from nvrepro.fl.task import DEFAULT_MODEL_CONFIG, build_lm, mean_loss, model_config_json, token_rows
from nvrepro.fl.users import user_texts


@dataclass
class DPFedAvgSettings:
    """One DP-FedAvg run. In a deployment these come from the app's run config (the same names with
    dashes, ``model-config`` as a JSON string; :meth:`from_run_config`)."""

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
    seed: int = 0
    model_config: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_MODEL_CONFIG))

    def __post_init__(self) -> None:
        for name in ("num_users", "clients_per_round", "rounds", "local_steps", "batch_size",
                     "seq_len", "sentences_per_user", "eval_users"):
            require_positive_int(getattr(self, name), name)
        require(self.clients_per_round <= self.num_users, "clients_per_round",
                f"must be <= num_users={self.num_users}, got {self.clients_per_round}")
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

    def to_run_config(self) -> dict[str, Any]:
        """Flat run-config dict (dashed keys, ``model-config`` as JSON)."""
        out = {k.replace("_", "-"): v for k, v in asdict(self).items() if k != "model_config"}
        out["model-config"] = model_config_json(self.model_config)
        return out

    @classmethod
    def from_run_config(cls, run_config: dict[str, Any]) -> "DPFedAvgSettings":
        """Settings from a Flower run config; absent keys take the defaults, unknown ones are ignored."""
        kwargs: dict[str, Any] = {}
        for name, default in asdict(cls()).items():
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
                         "sentences-per-user": s.sentences_per_user, "seed": s.seed})


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


class UserSampledFedAvg(FedAvg):
    """FedAvg that trains exactly ``m`` users per round, drawn with ``default_rng([seed, round])``
    from ``node_users`` (``{node_id: user_id}``); with an empty map it samples like FedAvg."""

    def __init__(self, clients_per_round: int, num_users: int, seed: int,
                 node_users: dict[int, int] | None = None) -> None:
        super().__init__(fraction_train=clients_per_round / num_users, fraction_evaluate=0.0,
                         min_train_nodes=clients_per_round, min_available_nodes=num_users,
                         weighted_by_key="weight")
        self.clients_per_round = clients_per_round
        self.seed = seed
        self.node_users = dict(node_users or {})
        self.sampled_users: dict[int, list[int]] = {}

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                        grid: Grid) -> Iterable[Message]:
        if not self.node_users:
            return super().configure_train(server_round, arrays, config, grid)
        by_user = {user: node for node, user in self.node_users.items()}
        rng = np.random.default_rng([self.seed, server_round])
        users = sorted(int(u) for u in rng.choice(sorted(by_user), self.clients_per_round, replace=False))
        self.sampled_users[server_round] = users
        config["server-round"] = server_round
        record = RecordDict({self.arrayrecord_key: arrays, self.configrecord_key: config})
        return self._construct_messages(record, [by_user[u] for u in users], MessageType.TRAIN)


class DPFedAvg(DifferentialPrivacyServerSideFixedClipping):
    """Flower's server-side fixed-clipping DP wrapper plus a server learning rate, seeded noise,
    sorted replies and per-round records (see the module docstring for why each)."""

    def __init__(self, strategy: FedAvg, noise_multiplier: float, clipping_norm: float,
                 num_sampled_clients: int, *, server_lr: float = 1.0, seed: int = 0,
                 node_users: dict[int, int] | None = None) -> None:
        super().__init__(strategy, noise_multiplier, clipping_norm, num_sampled_clients)
        self.server_lr = server_lr
        self.seed = seed
        self.node_users = dict(node_users or {})
        self.contribution_norms: dict[int, list[float]] = {}
        self.noise_std: dict[int, float] = {}
        self.round_times: dict[int, float] = {}
        self._round = 0
        self._t0 = 0.0

    def configure_train(self, server_round, arrays, config, grid):
        self._t0 = time.perf_counter()
        return super().configure_train(server_round, arrays, config, grid)

    def aggregate_train(self, server_round: int, replies: Iterable[Message]):
        replies = sorted(replies, key=lambda m: (self.node_users.get(m.metadata.src_node_id, -1),
                                                 m.metadata.src_node_id))
        self._round = server_round
        current = self.current_arrays.to_numpy_ndarrays()
        arrays, metrics = super().aggregate_train(server_round, replies)
        self.contribution_norms[server_round] = [
            float(np.sqrt(sum(np.sum((r.astype(np.float64) - c) ** 2) for r, c in
                              zip(reply.content["arrays"].to_numpy_ndarrays(), current, strict=True))))
            for reply in replies if not reply.has_error()]
        if arrays is not None and self.server_lr != 1.0:
            arrays = ArrayRecord({k: Array(np.asarray(c + self.server_lr * (a - c), dtype=a.dtype))
                                  for k, a, c in zip(arrays.keys(), arrays.to_numpy_ndarrays(), current, strict=True)})
        self.round_times[server_round] = time.perf_counter() - self._t0
        return arrays, metrics

    def _add_noise_to_aggregated_arrays(self, aggregated_arrays: ArrayRecord) -> ArrayRecord:
        stdv = compute_stdv(self.noise_multiplier, self.clipping_norm, self.num_sampled_clients)
        self.noise_std[self._round] = stdv
        rng = np.random.default_rng([self.seed, self._round, 7])
        return ArrayRecord({k: Array(np.asarray(a + rng.normal(0.0, stdv, a.shape).astype(a.dtype)))
                            for k, a in zip(aggregated_arrays.keys(), aggregated_arrays.to_numpy_ndarrays(),
                                            strict=True)})


def build_strategy(settings: DPFedAvgSettings, node_users: dict[int, int] | None = None) -> DPFedAvg:
    """FedAvg (fixed ``m`` users per round, uniform weights) inside :class:`DPFedAvg`."""
    s = settings
    inner = UserSampledFedAvg(s.clients_per_round, s.num_users, s.seed, node_users)
    return DPFedAvg(inner, s.noise_multiplier, s.clip_norm, s.clients_per_round, server_lr=s.server_lr,
                    seed=s.seed, node_users=node_users)


def eval_rows(settings: DPFedAvgSettings):
    """The held-out users' rows (users ``num_users .. num_users + eval_users - 1``)."""
    s = settings
    texts = [t for u in range(s.num_users, s.num_users + s.eval_users)
             for t in user_texts(u, s.sentences_per_user, s.seed)]
    return token_rows(texts, s.seq_len)


def make_evaluate_fn(settings: DPFedAvgSettings):
    """Server-side evaluation: ``(round, arrays) -> MetricRecord({"eval-loss": ...})`` on held-out users."""
    rows = eval_rows(settings)
    model = build_lm(settings.model_config, settings.seed)

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        model.load_state_dict(arrays.to_torch_state_dict())
        return MetricRecord({"eval-loss": mean_loss(model, rows)})

    return evaluate


def run_rounds(grid: Grid, settings: DPFedAvgSettings) -> tuple[list[dict[str, Any]], DPFedAvg]:
    """Discover users, run ``settings.rounds`` DP-FedAvg rounds; per-round metrics and the strategy."""
    s = settings
    node_users = discover_users(grid, s.num_users)
    strategy = build_strategy(s, node_users)
    initial = ArrayRecord(build_lm(s.model_config, s.seed).state_dict())
    result = strategy.start(grid, initial, num_rounds=s.rounds, train_config=train_config(s),
                            evaluate_fn=make_evaluate_fn(s))
    evals = result.evaluate_metrics_serverapp
    rounds = [{"round": 0, "eval_loss": float(evals[0]["eval-loss"])}]
    for r in range(1, s.rounds + 1):
        seconds = strategy.round_times[r]
        train = result.train_metrics_clientapp.get(r)
        rounds.append({"round": r, "eval_loss": float(evals[r]["eval-loss"]), "round_seconds": seconds,
                       "client_updates_per_second": s.clients_per_round / seconds,
                       "train_loss": float(train["train-loss"]) if train else float("nan"),
                       "users": strategy.strategy.sampled_users.get(r, []),
                       "contribution_norms": strategy.contribution_norms.get(r, []),
                       "noise_std": strategy.noise_std.get(r, 0.0)})
    return rounds, strategy


def make_server_app(settings: DPFedAvgSettings | None = None, sink: list | None = None) -> ServerApp:
    """A ``ServerApp`` running :func:`run_rounds`. ``settings=None`` reads them from the run config;
    ``sink`` (same process: simulation) receives the per-round metrics, and a ``metrics-path`` in the
    run config gets them as JSON (any engine)."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        s = settings or DPFedAvgSettings.from_run_config(context.run_config)
        rounds, _ = run_rounds(grid, s)
        if sink is not None:
            sink.extend(rounds)
        path = context.run_config.get("metrics-path")
        if path:
            with open(str(path), "w") as f:
                json.dump(rounds, f)

    return app


app = make_server_app()
