"""Row arrays on disk in fixed-size ``.npy`` shards: how a database bigger than memory is built.

A paper-size RETRO database has billions of chunks (1.2T tokens / 64 = 1.9e10 for InstructRetro),
and their embeddings alone (1024 float32 each) are tens of terabytes: no step of the build may hold
them all. :func:`write_shards` consumes batches of rows (any named arrays with the same first
dimension: vectors, tokens, document ids) and writes every ``shard_size`` rows as one ``.npy`` per
name, ``<name>_<shard:05d>.npy``; :class:`ShardedArray` memory-maps them back and walks them shard
by shard (filling an index, searching queries) or gathers a few rows (an index's training sample).

Shard boundaries depend only on ``shard_size`` and the order of rows, never on how the batches
were cut, so the same rows give the same shards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator, Mapping

import numpy as np

from nvrepro.core.tooling.validation import require_positive_int


def shard_path(directory: str | Path, name: str, shard: int) -> Path:
    """``<directory>/<name>_<shard:05d>.npy``."""
    return Path(directory) / f"{name}_{shard:05d}.npy"


def write_shards(directory: str | Path, batches: Iterable[Mapping[str, np.ndarray]], shard_size: int) -> list[int]:
    """Write the rows of ``batches`` (dicts of arrays ``(b, ...)``, the same names and ``b`` within
    a batch) as shards of ``shard_size`` rows (the last one shorter). Holds at most one shard plus
    one batch in memory. Returns the number of rows of each shard written."""
    require_positive_int(shard_size, "shard_size")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    pending: dict[str, list[np.ndarray]] = {}
    held, sizes = 0, []

    def flush(rows: int) -> None:
        nonlocal held
        for name, parts in pending.items():
            joined = np.concatenate(parts)
            np.save(shard_path(directory, name, len(sizes)), joined[:rows])
            pending[name] = [joined[rows:]]
        sizes.append(rows)
        held -= rows

    for batch in batches:
        lengths = {name: len(a) for name, a in batch.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"batch: arrays of different lengths {lengths}")
        if pending and set(batch) != set(pending):
            raise ValueError(f"batch: names {sorted(batch)} differ from the first batch's {sorted(pending)}")
        for name, a in batch.items():
            pending.setdefault(name, []).append(np.asarray(a))
        held += next(iter(lengths.values()), 0)
        while held >= shard_size:
            flush(shard_size)
    if held:
        flush(held)
    return sizes


class ShardedArray:
    """The shards ``<name>_*.npy`` of ``directory`` as one array of rows, memory-mapped:
    ``len``, ``shape``, :meth:`shards` (``(offset, rows)`` in order), :meth:`take` (rows by id)
    and :meth:`load` (everything, in memory)."""

    def __init__(self, directory: str | Path, name: str):
        self.paths = sorted(Path(directory).glob(f"{name}_[0-9][0-9][0-9][0-9][0-9].npy"))
        if not self.paths:
            raise FileNotFoundError(f"{Path(directory) / name}_*.npy: no shards")
        self.parts = [np.load(p, mmap_mode="r") for p in self.paths]
        self.offsets = np.cumsum([0] + [len(p) for p in self.parts])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.parts[0].shape[1:])

    def shards(self) -> Iterator[tuple[int, np.ndarray]]:
        """``(offset of its first row, rows (s, ...))`` for each shard, in order."""
        for offset, part in zip(self.offsets, self.parts):
            yield int(offset), part

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Rows ``(len(rows), ...)`` in the order given, read shard by shard."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"rows: ids must be in [0, {len(self)}), got {rows.min()}..{rows.max()}")
        out = np.empty((len(rows), *self.parts[0].shape[1:]), dtype=self.parts[0].dtype)
        shard = np.searchsorted(self.offsets, rows, side="right") - 1
        for s in np.unique(shard):
            where = np.nonzero(shard == s)[0]
            out[where] = self.parts[s][rows[where] - self.offsets[s]]
        return out

    def load(self) -> np.ndarray:
        """All rows in memory, ``(len, ...)``."""
        return np.concatenate([np.asarray(p) for p in self.parts])
