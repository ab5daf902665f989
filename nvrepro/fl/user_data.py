"""Real users' text for full-scale runs: a Hugging Face dataset on local disk with one row per
sentence (or post) and a column naming its user, e.g. a federated Stack Overflow split converted
with ``datasets`` and written with ``Dataset.save_to_disk``. Nothing is downloaded.

Users are numbered ``0 .. U-1`` in the sorted order of their ids, so a client's ``partition-id``
(and the held-out users ``N .. N + eval_users - 1`` of the server) index the same list in every
process. A user's sentences keep the dataset's order; at most ``num_sentences`` are used.

Selected with ``user_data = "<dir>"`` in the run config (:class:`nvrepro.fl.server.DPFedAvgSettings`);
the default ``""`` keeps the synthetic users of :mod:`nvrepro.fl.users`.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from nvrepro.core.tooling.validation import ConfigError

USER_COLUMN = "user_id"
TEXT_COLUMN = "text"


@functools.lru_cache(maxsize=2)
def _index(path: str) -> tuple[object, np.ndarray, np.ndarray]:
    """(dataset, row order grouped by user, start offset of each user in that order + end)."""
    from datasets import load_from_disk

    if not Path(path).is_dir():
        raise ConfigError(f"user_data: no dataset directory at {path}")
    ds = load_from_disk(path)
    missing = [c for c in (USER_COLUMN, TEXT_COLUMN) if c not in ds.column_names]
    if missing:
        raise ConfigError(f"user_data: {path} lacks column(s) {missing} (has {ds.column_names})")
    users = np.asarray(ds[USER_COLUMN])
    order = np.argsort(users, kind="stable")
    sorted_users = users[order]
    starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    return ds, order, np.r_[starts, len(order)]


def num_users(path: str) -> int:
    """How many distinct users the dataset at ``path`` holds."""
    return len(_index(str(path))[2]) - 1


def user_texts_from_disk(path: str, user: int, num_sentences: int) -> list[str]:
    """The first ``num_sentences`` texts of user number ``user`` (0-based, in sorted id order)."""
    ds, order, bounds = _index(str(path))
    if not 0 <= user < len(bounds) - 1:
        raise ConfigError(f"user_data: user {user} is out of range; {path} holds {len(bounds) - 1} users")
    rows = order[bounds[user]:min(bounds[user + 1], bounds[user] + num_sentences)]
    return [ds[int(i)][TEXT_COLUMN] for i in rows]
