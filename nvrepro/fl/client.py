"""The Flower ``ClientApp``: one device = one synthetic user training the global LM locally.

The node's user is ``context.node_config["partition-id"]`` (set by the simulation engine for
virtual nodes, by ``flower-supernode --node-config 'partition-id=...'`` in a deployment), as in
Flower's examples. Everything else arrives in the message's ``ConfigRecord`` (keys in
:data:`TRAIN_KEYS`, filled by :func:`nvrepro.fl.server.train_config`), so the app itself has no
parameters and runs unchanged in simulation and deployment.

* ``train``: load the global weights (``ArrayRecord`` under ``"arrays"``), run ``local-steps`` SGD
  steps on the user's sentences (synthetic, or from the dataset directory ``user-data``; tokenized
  with the config's ``tokenizer``: ``""`` bytes, else a BPE's JSON) (:func:`nvrepro.fl.task.local_train`, seeded by run seed, round and
  user), reply with the updated weights (the server's DP wrapper takes the delta) and a
  ``MetricRecord`` with ``num-examples``, ``train-loss``, ``user-id`` and ``weight`` = 1 (the key
  FedAvg averages by: every user counts the same, as user-level DP-FedAvg needs).
* ``query``: reply with the node's ``partition-id``, so the server can map nodes to users and
  sample users with its own seeded rng (:func:`nvrepro.fl.server.discover_users`).
"""

from __future__ import annotations

import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from nvrepro.fl.task import build_lm, derived_seed, local_train, tokenizer_from_json, user_rows

TRAIN_KEYS = ("model-config", "local-steps", "client-lr", "batch-size", "seq-len",
              "sentences-per-user", "seed", "tokenizer", "user-data", "server-round")

app = ClientApp()


def node_user(context: Context) -> int:
    """The user a node plays: its ``partition-id``."""
    if "partition-id" not in context.node_config:
        raise KeyError("partition-id: this node has no 'partition-id' in its node config "
                       "(start flower-supernode with --node-config 'partition-id=<user>')")
    return int(context.node_config["partition-id"])


def train_user(arrays: ArrayRecord, config: ConfigRecord, user_id: int) -> tuple[ArrayRecord, MetricRecord]:
    """One client update: the global ``arrays`` trained on user ``user_id``'s data per ``config``."""
    missing = [k for k in TRAIN_KEYS if k not in config]
    if missing:
        raise KeyError(f"{missing[0]}: missing from the train config (needs {', '.join(TRAIN_KEYS)})")
    torch.set_num_threads(1)  # one core per client, and a reproducible reduction order
    seed = int(config["seed"])
    model = build_lm(str(config["model-config"]), seed)
    model.load_state_dict(arrays.to_torch_state_dict())
    tok = tokenizer_from_json(str(config["tokenizer"]))
    rows = user_rows(user_id, int(config["sentences-per-user"]), int(config["seq-len"]), seed, tok,
                     str(config["user-data"]))
    loss = local_train(model, rows, steps=int(config["local-steps"]), lr=float(config["client-lr"]),
                       batch_size=int(config["batch-size"]),
                       seed=derived_seed(seed, int(config["server-round"]), user_id), pad_id=tok.pad_id)
    metrics = MetricRecord({"num-examples": len(rows), "train-loss": loss, "user-id": user_id, "weight": 1.0})
    return ArrayRecord(model.state_dict()), metrics


@app.train()
def train(msg: Message, context: Context) -> Message:
    arrays, metrics = train_user(msg.content["arrays"], msg.content["config"], node_user(context))
    return Message(content=RecordDict({"arrays": arrays, "metrics": metrics}), reply_to=msg)


@app.query()
def query(msg: Message, context: Context) -> Message:
    return Message(content=RecordDict({"metrics": MetricRecord({"partition-id": node_user(context)})}),
                   reply_to=msg)
