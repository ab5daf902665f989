"""Checkers for the exercises of notebook 02 (the RETRO study). Each prints whether the answer
holds and why, and returns a :class:`~nvrepro.core.tooling.verdicts.Check` (``ok`` ``None`` when
nothing was answered yet).

The truth comes from the model, not from a formula restated here: the checkers build a small
:class:`~nvrepro.retro.model.RetroLM`, perturb the neighbours of one chunk and see which logits move.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch

from nvrepro.core.tooling.verdicts import Check, call_student, check_claim_prediction, check_number, report
from nvrepro.retro.model import RetroConfig, RetroLM, retro_pattern


def _probe_model(chunk_len: int, seed: int = 0) -> RetroLM:
    torch.manual_seed(seed)
    cfg = RetroConfig(pattern=retro_pattern(6), d_model=16, vocab_size=32, max_seq_len=8 * chunk_len,
                      chunk_len=chunk_len, attention=dict(n_heads=2, n_kv_heads=2, head_dim=8, rope=True),
                      ffn=dict(hidden=32))
    return RetroLM(cfg).eval()


@torch.no_grad()
def first_position_seeing(chunk: int, chunk_len: int, chunks: int = 6, seed: int = 0) -> int:
    """Measured on a random Retro: the first position whose logits change when the neighbours of
    ``chunk`` are replaced (``-1`` if none does)."""
    model = _probe_model(chunk_len, seed)
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 32, (1, chunks * chunk_len), generator=g)
    neighbours = torch.randint(0, 32, (1, chunks, 2, 2 * chunk_len), generator=g)
    changed = neighbours.clone()
    changed[:, chunk] = torch.randint(0, 32, changed[:, chunk].shape, generator=g)
    moved = (model(ids, neighbours=neighbours) - model(ids, neighbours=changed)).abs().amax(-1)[0] > 0
    hits = torch.nonzero(moved)
    return int(hits[0]) if len(hits) else -1


def check_first_position(answer: int | None, chunk: int = 2, chunk_len: int = 64, *, verbose: bool = True) -> Check:
    """Exercise (a): the first position (0-based) that can use the neighbours retrieved for
    ``chunk`` when chunks have ``chunk_len`` tokens."""
    truth = first_position_seeing(chunk, chunk_len)
    return check_number(answer, truth, what="a position", verbose=verbose,
                        slips=((chunk * chunk_len, "that is the chunk's first token, which has not read the chunk yet"),
                               ((chunk + 1) * chunk_len, "one too late: the chunk's last token already may")),
                        why=f"perturbing the neighbours of chunk {chunk} (m = {chunk_len}) first moves the logits at "
                            f"position {truth}: the chunk's last token, the first that has read all of it.")


def check_shift(fn: Callable[[int, int], int] | None, chunk_len: int = 4, positions: int = 24, *,
                verbose: bool = True) -> Check:
    """Exercise (b): ``fn(position, chunk_len) -> chunk`` whose neighbours that position attends to
    (``-1`` for none), compared with what a random Retro's logits show for every position."""
    chunks = positions // chunk_len
    truth = [-1] * positions
    # A chunk's perturbation moves every later position too (through self-attention), so the chunk a
    # position attends to directly is the latest one whose perturbation reaches it.
    for chunk in range(chunks):
        for p in range(max(first_position_seeing(chunk, chunk_len, chunks), 0), positions):
            truth[p] = chunk
    got = []
    for p in range(positions):
        value, failed = call_student(fn, p, chunk_len, name="shifted_chunk")
        if failed is not None:
            return report(failed, verbose)
        got.append(value)
    wrong = [(p, g, t) for p, (g, t) in enumerate(zip(got, truth)) if g != t]
    return report(Check(not wrong, "every position matches the shift measured on the model." if not wrong else
                        f"{len(wrong)} of {positions} positions differ, e.g. position {wrong[0][0]}: yours "
                        f"{wrong[0][1]}, measured {wrong[0][2]}."), verbose)


def check_overlap_prediction(prediction: bool | None, result: Mapping[str, Any], *, verbose: bool = True) -> Check:
    """Exercise (c): predicted whether Retro's gain is larger on held-out documents with
    near-duplicate passages in the database; checked against this run's claim."""
    from nvrepro.retro.study import OVERLAP

    return check_claim_prediction(prediction, OVERLAP, result, verbose=verbose)
