"""Multi-query associative recall over a grid of key-value counts and lengths (Zoology's mix).

Zoology (Arora et al. 2023, arXiv:2312.04927, Sec. 3) trains one model on MQAR examples of several
sequence lengths and key-value counts at once and reports recall per (pairs, length) cell.
:class:`MQARMixtureDataModule` does the same with :func:`~nvrepro.core.data.synthetic.make_mqar`:
for every ``(n, l)`` with ``n`` in ``num_kv_pairs``, ``l`` in ``lengths`` and ``l >= 4 n`` (room for
``n`` pairs and ``n`` queries), it draws examples of length ``l`` and pads them to ``seq_len`` with
the filler token ``0`` and label ``-100``. Padding at the end changes nothing for a causal model:
every prediction at a position ``t < l`` sees exactly the unpadded example.

Batches come from one cell at a time (:class:`CellBatchSampler`) and are cut to that cell's
length, so a 32-token cell costs a quarter of a 128-token one instead of paying for padding:
``{"input_ids": (batch_size, l), "labels": (batch_size, l)}`` in the shifted-label convention of
:mod:`nvrepro.core.data.synthetic`. Seeds: train ``(seed, 0, i)``, val ``(seed, 1, i)``,
:meth:`MQARMixtureDataModule.test_sets` ``(seed, 2, i)`` for grid cell ``i``; batch order from
``seed`` and the epoch. (On one device; a distributed run would need a distributed version of the
batch sampler.)
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Sampler

from nvrepro.core.tooling.validation import ConfigError
from nvrepro.core.data.datamodules import _pos_int, _TrainValDataModule
from nvrepro.core.data.synthetic import IGNORE_INDEX, MQAR_FILLER, SyntheticDataset, make_mqar


def pad_examples(ds: SyntheticDataset, seq_len: int) -> SyntheticDataset:
    """Right-pad every example of ``ds`` (N, l) to (N, seq_len): filler 0, label -100."""
    n, l = ds.input_ids.shape
    if l > seq_len:
        raise ValueError(f"seq_len: examples of length {l} do not fit in seq_len={seq_len}")
    ids = torch.full((n, seq_len), MQAR_FILLER, dtype=torch.long)
    labels = torch.full((n, seq_len), IGNORE_INDEX, dtype=torch.long)
    ids[:, :l], labels[:, :l] = ds.input_ids, ds.labels
    return SyntheticDataset(ids, labels)


def mqar_grid(num_kv_pairs: list[int], lengths: list[int]) -> list[tuple[int, int]]:
    """The ``(pairs, length)`` cells with ``length >= 4 * pairs``, by length then pairs."""
    return [(n, l) for l in sorted(set(lengths)) for n in sorted(set(num_kv_pairs)) if l >= 4 * n]


class CellBatchSampler(Sampler[list[int]]):
    """Batches of example indices that all share one cell (one length).

    ``cells`` (N,) holds each example's cell id. With ``shuffle``, every pass shuffles the
    examples within each cell and then the order of all batches, from a generator seeded with
    ``(seed, pass number)``: the same sequence of batches on every run. The last batch of a cell
    may be smaller.
    """

    def __init__(self, cells: torch.Tensor, batch_size: int, shuffle: bool, seed: int):
        self.cells, self.batch_size, self.shuffle, self.seed = cells, batch_size, shuffle, seed
        self._passes = 0

    def _batches(self, gen: torch.Generator | None) -> list[list[int]]:
        batches = []
        for c in torch.unique(self.cells).tolist():
            idx = torch.nonzero(self.cells == c).flatten()
            if gen is not None:
                idx = idx[torch.randperm(len(idx), generator=gen)]
            batches += [idx[i:i + self.batch_size].tolist() for i in range(0, len(idx), self.batch_size)]
        if gen is not None:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]
        return batches

    def __iter__(self):
        gen = None
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self._passes)
            self._passes += 1
        return iter(self._batches(gen))

    def __len__(self) -> int:
        counts = torch.unique(self.cells, return_counts=True)[1]
        return int(sum((int(n) + self.batch_size - 1) // self.batch_size for n in counts))


def _collate_cell(examples: list[dict]) -> dict[str, torch.Tensor]:
    """Stack one cell's examples and cut the padding: ``(b, l)`` with ``l`` the cell's length."""
    l = max(int(e["length"]) for e in examples)
    return {"input_ids": torch.stack([e["input_ids"][:l] for e in examples]),
            "labels": torch.stack([e["labels"][:l] for e in examples])}


class _CellDataset(SyntheticDataset):
    """Padded examples plus each one's cell id and true length."""

    def __init__(self, input_ids, labels, cells: torch.Tensor, lengths: torch.Tensor):
        super().__init__(input_ids, labels)
        self.cells, self.lengths = cells, lengths

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {**super().__getitem__(i), "length": self.lengths[i]}


class MQARMixtureDataModule(_TrainValDataModule):
    """MQAR examples from every ``(pairs, length)`` cell, padded to ``seq_len``, shuffled together.

    ``num_train`` and ``num_val`` are examples *per cell*. ``lengths`` defaults to ``[seq_len]``.
    """

    def __init__(self, vocab_size: int = 260, seq_len: int = 128,
                 num_kv_pairs: list[int] | None = None, lengths: list[int] | None = None,
                 num_train: int = 2000, num_val: int = 100, batch_size: int = 32, seed: int = 0,
                 num_workers: int = 0):
        super().__init__()
        num_kv_pairs = [4, 8, 16] if num_kv_pairs is None else list(num_kv_pairs)
        lengths = [seq_len] if lengths is None else list(lengths)
        for v, f in ((vocab_size, "vocab_size"), (seq_len, "seq_len"), (num_train, "num_train"),
                     (num_val, "num_val"), (batch_size, "batch_size")):
            _pos_int(v, f)
        for v in num_kv_pairs:
            _pos_int(v, "num_kv_pairs")
        for v in lengths:
            _pos_int(v, "lengths")
        if max(lengths) > seq_len:
            raise ConfigError(f"lengths: {max(lengths)} is longer than seq_len={seq_len}; "
                              "seq_len is the padded length and must be >= every length")
        if vocab_size < 2 * max(num_kv_pairs) + 2:
            raise ConfigError(f"vocab_size: {vocab_size} has too few keys/values for "
                              f"{max(num_kv_pairs)} pairs; need >= {2 * max(num_kv_pairs) + 2}")
        self.cells = mqar_grid(num_kv_pairs, lengths)
        if not self.cells:
            raise ConfigError(f"lengths: no length in {lengths} fits any pair count in "
                              f"{num_kv_pairs} (need length >= 4 * pairs)")
        self.save_hyperparameters()
        self.vocab_size, self.seq_len = vocab_size, seq_len
        self.num_kv_pairs, self.lengths = num_kv_pairs, lengths
        self.num_train, self.num_val, self.batch_size = num_train, num_val, batch_size
        self.seed, self.num_workers = seed, num_workers
        self.train_dataset = self.val_dataset = None

    def _mixture(self, split: int, per_cell: int) -> _CellDataset:
        parts = [pad_examples(make_mqar(per_cell, self.vocab_size, l, n, seed=(self.seed, split, i)),
                              self.seq_len) for i, (n, l) in enumerate(self.cells)]
        cells = torch.arange(len(self.cells)).repeat_interleave(per_cell)
        lengths = torch.tensor([l for _, l in self.cells]).repeat_interleave(per_cell)
        return _CellDataset(torch.cat([p.input_ids for p in parts]),
                            torch.cat([p.labels for p in parts]), cells, lengths)

    def _cell_loader(self, ds: _CellDataset, shuffle: bool) -> DataLoader:
        sampler = CellBatchSampler(ds.cells, self.batch_size, shuffle, self.seed)
        return DataLoader(ds, batch_sampler=sampler, collate_fn=_collate_cell,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        self.setup("fit")
        return self._cell_loader(self.train_dataset, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        self.setup("validate")
        return self._cell_loader(self.val_dataset, shuffle=False)

    def setup(self, stage: str | None = None) -> None:
        if self.train_dataset is not None:
            return
        self.train_dataset = self._mixture(0, self.num_train)
        self.val_dataset = self._mixture(1, self.num_val)

    def test_sets(self, num_examples: int, seed: int | None = None) -> dict[tuple[int, int], SyntheticDataset]:
        """Held-out examples per cell, unpadded: ``{(pairs, length): dataset (N, length)}``, drawn
        from ``(seed, 2, i)`` for grid cell ``i`` (``seed`` defaults to the module's). A fixed
        ``seed`` gives every training seed the same test examples, so scores pair up across runs."""
        _pos_int(num_examples, "num_examples")
        seed = self.seed if seed is None else seed
        return {(n, l): make_mqar(num_examples, self.vocab_size, l, n, seed=(seed, 2, i))
                for i, (n, l) in enumerate(self.cells)}
