"""Checkers for the exercises of the NVLM notebooks. Each prints whether the answer holds and why and
returns a :class:`~nvrepro.core.tooling.verdicts.Check` (``ok`` ``None`` when not attempted). The truths
come from the code (:mod:`nvrepro.core.vision.tiling`, :mod:`nvrepro.nvlm.tile_tags`) and from the
notebook's own run."""

from __future__ import annotations

import random
from typing import Any, Callable, Mapping

from nvrepro.core.tooling.verdicts import Check, as_number, call_student, report

# --- notebook 01 ---------------------------------------------------------------------------------


def check_choose_grid(fn: Callable, *, trials: int = 300, seed: int = 0, verbose: bool = True) -> Check:
    """Exercise 01(a): ``fn(width, height, tile_size, max_tiles) -> (cols, rows)``, compared with
    :func:`nvrepro.core.vision.tiling.choose_grid` (InternVL's rule) on random image sizes."""
    from nvrepro.core.vision.tiling import choose_grid

    rng = random.Random(seed)
    for _ in range(trials):
        tile = rng.choice([32, 448])
        width, height = rng.randint(tile, 7 * tile), rng.randint(tile // 4, 7 * tile)
        if rng.random() < 0.5:
            width, height = height, width
        if rng.random() < 0.2:  # exact multiples exercise the tie rule
            width, height = tile * rng.randint(1, 3), tile * rng.randint(1, 3)
        max_tiles = rng.randint(1, 12)
        got, failed = call_student(fn, width, height, tile, max_tiles, name="choose")
        if failed is not None:
            return report(failed, verbose)
        want = choose_grid(width, height, tile, max_tiles)
        try:
            got = tuple(int(v) for v in got)
        except (TypeError, ValueError):
            return report(Check(False, f"expected a (cols, rows) pair, got {got!r}."), verbose)
        if got != want:
            if got[0] * got[1] > max_tiles:
                hint = f"{got[0]} x {got[1]} has more than max_tiles = {max_tiles} tiles"
            elif got == (want[1], want[0]):
                hint = "columns run along the width: aspect = width / height, compared with cols / rows"
            elif got[0] * want[1] == got[1] * want[0]:
                hint = ("same aspect ratio, different size: on a tie the larger grid wins only if the image's area "
                        "exceeds half of that grid's pixels (area > 0.5 * tile^2 * cols * rows)")
            else:
                hint = "pick the grid whose cols / rows is closest to width / height"
            return report(Check(False, f"{width} x {height}, tiles of {tile}, at most {max_tiles}: you chose {got}, "
                                       f"the rule gives {want}; {hint}."), verbose)
    return report(Check(True, f"matches choose_grid on {trials} image sizes, ties included: the grid of at most "
                              "max_tiles tiles whose aspect ratio is closest to the image's."), verbose)


def check_decoder_tokens(answer, *, width: int = 1000, height: int = 250, max_tiles: int = 6, verbose: bool = True
                         ) -> Check:
    """Exercise 01(b): the image tokens NVLM-D puts in the decoder for a ``width x height`` image at the
    paper's settings (448-pixel tiles, 256 tokens each, a thumbnail when there is more than one tile)."""
    from nvrepro.core.vision.tiling import choose_grid
    from nvrepro.nvlm.tile_tags import image_token_counts

    value, missing = as_number(answer, "the number of image tokens in NVLM-D's decoder")
    if missing is not None:
        return report(missing, verbose)
    grid = choose_grid(width, height, 448, max_tiles)
    want = image_token_counts(grid, 256)["D"]["decoder"]
    tiles = grid[0] * grid[1]
    if value == want:
        return report(Check(True, f"{width} x {height} has aspect {width / height:.1f}: grid {grid[0]} x {grid[1]}, "
                                  f"{tiles} tiles + thumbnail = {tiles + 1} x 256 = {want} tokens."), verbose)
    hint = ("you left out the thumbnail" if value == tiles * 256 else
            f"the grid is {grid[0]} x {grid[1]} (closest aspect ratio to {width / height:.1f} within {max_tiles} tiles)")
    return report(Check(False, f"{value:g} is not it; {hint}."), verbose)


def check_best_2d_variant(prediction, metrics: Mapping[str, Any], verbose: bool = True) -> Check:
    """Exercise 01(c): which 2-D tag style, ``"2d_grid"`` or ``"2d_bbox"``, scored higher in this run
    (seed-averaged exact match; the paper: bbox 791 > grid 787 on OCRBench, both below 1-D's 806)."""
    from nvrepro.nvlm.tile_tag_experiment import accuracy

    if prediction is None:
        return report(Check(None, 'set `prediction` to "2d_grid" or "2d_bbox".'), verbose)
    if prediction not in ("2d_grid", "2d_bbox"):
        return report(Check(False, f'expected "2d_grid" or "2d_bbox", got {prediction!r}.'), verbose)
    scores = {arm: accuracy(metrics, arm) for arm in ("2d_grid", "2d_bbox")}
    best = max(scores, key=lambda a: scores[a].value)
    text = ", ".join(f"{a} {scores[a].value:.3f}" for a in scores)
    overlap = scores["2d_grid"].low <= scores["2d_bbox"].high and scores["2d_bbox"].low <= scores["2d_grid"].high
    caveat = " The intervals overlap: another seed could reverse it." if overlap else ""
    if prediction == best:
        return report(Check(True, f"{text}.{caveat}"), verbose)
    return report(Check(False, f"{text}: {best} scored higher here.{caveat}"), verbose)


# --- notebook 02 ---------------------------------------------------------------------------------

def check_hybrid_sequence(answer, *, text_tokens: int = 1024, verbose: bool = True) -> Check:
    """Exercise 02(a): NVLM-H's decoder length with 6 tiles + thumbnail and ``text_tokens`` of text."""
    from nvrepro.nvlm.tile_tags import image_token_counts

    value, missing = as_number(answer, "the number of tokens in NVLM-H's decoder")
    if missing is not None:
        return report(missing, verbose)
    want = text_tokens + image_token_counts((3, 2), 256)["H"]["decoder"]
    if value == want:
        return report(Check(True, f"{text_tokens} text + 256 thumbnail tokens = {want}, Table 3's NVLM-H length; "
                                  "the 6 regular tiles (1,536 tokens) go through cross-attention."), verbose)
    hint = ("that is NVLM-D's: H keeps only the thumbnail in the decoder" if value == text_tokens + 7 * 256 else
            "that is NVLM-X's: H keeps the thumbnail's tokens in the decoder" if value == text_tokens else
            "text tokens plus the thumbnail's 256")
    return report(Check(False, f"{value:g} is not it; {hint}."), verbose)


def check_hybrid_speed(prediction, metrics: Mapping[str, Any], verbose: bool = True) -> Check:
    """Exercise 02(b): is NVLM-H's median throughput closer to NVLM-X's or to NVLM-D's in this run?"""
    import statistics

    if prediction is None:
        return report(Check(None, 'set `prediction` to "X" or "D".'), verbose)
    if prediction not in ("X", "D"):
        return report(Check(False, f'expected "X" or "D", got {prediction!r}.'), verbose)
    med = {a: statistics.median(metrics["samples_per_s"][a]) for a in ("D", "X", "H")}
    closer = "X" if abs(med["H"] - med["X"]) <= abs(med["H"] - med["D"]) else "D"
    text = f"samples/s: D {med['D']:.1f}, H {med['H']:.1f}, X {med['X']:.1f}"
    why = ("H's decoder holds one image's tokens instead of seven, so it is priced like X plus a little"
           if closer == "X" else "H's cross-attention over 6 tiles costs more here than the shorter decoder saves")
    return report(Check(prediction == closer, f"{text}: closer to {closer}; {why} (paper: D 28.8, H 36.2, X 50.6)."),
                  verbose)


# --- notebook 03 ---------------------------------------------------------------------------------

def check_most_forgotten(prediction, metrics: Mapping[str, Any], verbose: bool = True) -> Check:
    """Exercise 03(a): the text skill with the largest drop from ``before`` to ``forms_only`` (seed means)."""
    from nvrepro.nvlm.text_tasks import TEXT_TASKS

    if prediction is None:
        return report(Check(None, f"set `prediction` to one of {list(TEXT_TASKS)}."), verbose)
    if prediction not in TEXT_TASKS:
        return report(Check(False, f"expected one of {list(TEXT_TASKS)}, got {prediction!r}."), verbose)

    def mean(stage: str, kind: str) -> float:
        runs = metrics["text_by_kind"][stage]
        values = [run.get(f"text:{kind}") for run in runs if f"text:{kind}" in run]
        return sum(values) / len(values) if values else float("nan")

    drops = {k: mean("before", k) - mean("forms_only", k) for k in TEXT_TASKS}
    finite = {k: d for k, d in drops.items() if d == d}
    largest = max(finite.values(), default=float("nan"))
    worst = [k for k, d in finite.items() if d == largest]
    text = ", ".join(f"{k} {d:+.2f}" for k, d in drops.items())
    return report(Check(prediction in worst, f"drops in exact match (before - forms only): {text}; the largest: "
                                             f"{' = '.join(worst) or 'none measured'}."), verbose)


def check_exact_match(fn: Callable, *, trials: int = 50, seed: int = 0, verbose: bool = True) -> Check:
    """Exercise 03(b): ``fn(logits (b, l, V), labels (b, l)) -> (b,) bool``, compared with
    :func:`nvrepro.nvlm.evaluation.exact_match` on random rows (all-unsupervised rows included)."""
    import torch

    from nvrepro.nvlm.evaluation import exact_match

    gen = torch.Generator().manual_seed(seed)
    for t in range(trials):
        b, l, v = 6, 7, 5
        logits = torch.randn(b, l, v, generator=gen)
        labels = logits.argmax(-1)
        flip = torch.rand(b, l, generator=gen) < 0.08
        labels = torch.where(flip, (labels + 1) % v, labels)
        labels[torch.rand(b, l, generator=gen) < 0.5] = -100
        labels[0] = -100
        got, failed = call_student(fn, logits.clone(), labels.clone(), name="exact")
        if failed is not None:
            return report(failed, verbose)
        want = exact_match(logits, labels)
        try:
            got = torch.as_tensor(got).bool().reshape(-1)
        except (TypeError, ValueError, RuntimeError):
            return report(Check(False, f"expected a bool tensor of shape ({b},), got {got!r}."), verbose)
        if got.shape != want.shape or not torch.equal(got, want):
            hint = ("a row with no supervised position is not a right answer" if bool(got[0]) else
                    "ignore positions whose label is -100, and require ALL the others to be right")
            return report(Check(False, f"rows {want.tolist()} expected, got {got.tolist()}; {hint}."), verbose)
    return report(Check(True, f"matches exact_match on {trials} random batches: one forward pass scores greedy "
                              "decoding without decoding."), verbose)
