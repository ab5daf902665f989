"""Why a hybrid: equal-parameter Transformer, Mamba-2 and Nemotron-H-style hybrid, trained side by side.

Nemotron-H (arXiv:2504.03624, Sec. 1-2) rests on an observation of Waleffe et al. 2024
(arXiv:2406.07887): pure Mamba-2 models match Transformers on most language-modelling metrics
but fall behind on tasks that must *recall* a specific earlier token (in-context lookup, phone
book, MMLU's format following), while a hybrid with a few attention layers closes that gap. The
fixed-size state of a Mamba-2 layer has to compress every key-value association it may later be
asked about; an attention layer keeps them all (its KV cache) and looks them up.

This is the experiment module of ``notebooks/hybrid/02_why_hybrid.ipynb``: profiles
(:data:`PROFILES`), :func:`run` (both experiments below, plain data), the summary the notebook
prints (:func:`recall_summary`), and the claims of its two figures, :data:`RECALL` and
:data:`LM_CURVES`. The plots are in :mod:`nvrepro.hybrid.figures`.

Two experiments test this at toy scale, each arm trained from its YAML under ``configs/hybrid/``
(``why_hybrid_{arm}_{task}.yaml``) with :class:`~nvrepro.core.training.module.CausalLMModule` and a
Lightning ``Trainer`` (:func:`nvrepro.core.training.yaml_fit.fit_from_yaml`):

* :func:`mqar_recall`: multi-query associative recall (Zoology, arXiv:2312.04927) over a grid of
  key-value counts and sequence lengths (:class:`~nvrepro.hybrid.mqar_mixture.MQARMixtureDataModule`).
  Metric: **per-query accuracy**, the share of query positions whose argmax prediction is the
  right value (Zoology's metric), on held-out examples of every cell, with the counts behind it
  (queries scored and answered right) so that the claim is judged on Wilson intervals.
* :func:`lm_curves`: byte-level language modelling on the World English Bible; validation loss
  (nats per byte) against training steps, and each validation sequence's loss under the final
  weights (the claim's bootstrap runs over those sequences).

Profiles: ``"paper"`` trains the YAMLs as written (the figures); ``"smoke"`` overrides them to a
few steps on a few examples, for tests. Same seed and thread count -> the same numbers.

The paper profile caches each arm's trained weights, validation curve and training time under
``build/why_hybrid/`` (:mod:`nvrepro.core.tooling.weight_cache`), keyed by the parsed YAML (steps
included), the profile's overrides, the seed and the version of the training code; a rerun loads them (``weights_only=True``) and
only evaluates. The smoke profile never reads or writes the cache.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Mapping

import torch
from tqdm.auto import tqdm

from nvrepro.core.data.synthetic import IGNORE_INDEX
from nvrepro.core.evaluation import SupervisedScores, eval_mode, supervised_scores
from nvrepro.core.lm.config import ModelConfig, model_config_from_yaml
from nvrepro.core.tooling.claims import Claim, Judgement, all_parts, at_least_threshold, finite
from nvrepro.core.tooling.intervals import Estimate, bootstrap_mean, seed_average, wilson
from nvrepro.core.tooling.paths import CONFIGS_DIR
from nvrepro.core.tooling.profiles import profile_settings
from nvrepro.core.tooling.timing import num_threads
from nvrepro.core.tooling.weight_cache import cache_path, load_cached, save_cached, use_cache
from nvrepro.core.training.yaml_fit import (
    datamodule_from_yaml,
    fit_from_yaml,
    init_args_from_yaml,
    module_from_yaml,
    read_cli_yaml,
    trainer_kwargs_from_yaml,
)
from nvrepro.hybrid.arms import parameter_table

ARMS = ("transformer", "mamba2", "hybrid")
TASKS = ("mqar", "lm")
CONFIG_DIR = CONFIGS_DIR / "hybrid"
CACHE_DIR = "why_hybrid"  # under build/ (nvrepro.core.tooling.weight_cache)

# The claims' thresholds, fixed before any run (see RECALL and LM_CURVES at the end).
LM_MARGIN = 0.02  # the hybrid's final validation loss at most this much (relative) above the Transformer's
LOOKUP_LEARNED = 0.75  # the Transformer's accuracy at the smallest lookup cell that shows lookup formed
MIN_LOOKUP_PAIRS = 2  # one pair needs no lookup: the only value in context is the answer
HARD_PAIRS = 8  # "where the fixed state runs out": the cells with at least this many pairs (half the most)
FLAT_SHARE = 0.25  # an LM curve has flattened when its last quarter of evaluations ...
FLAT_TOLERANCE = 0.01  # ... lowers the validation loss by less than this (relative)
BOOTSTRAP_SEED = 0  # resampling seed of the claims' intervals (same metrics, same interval)
TEST_SEED = 10_000  # the held-out MQAR examples: one fixed set for every arm and training seed

# The code whose changes invalidate cached arms (nvrepro.core.tooling.weight_cache.code_version): what
# builds, feeds and trains them, not the plots or exercise checkers.
TRAINING_CODE = ("nvrepro.core", "nvrepro.hybrid.why_hybrid", "nvrepro.hybrid.mqar_mixture", "nvrepro.hybrid.arms")

# Smoke overrides (paper: the YAMLs as written, plus the size of the held-out recall test).
# Trained weights are cached under build/why_hybrid/ in the paper profile only (use_cache).
# ``seeds``: how many training seeds (seed, seed + 1, ...) each arm is trained with.
PROFILES: dict[str, dict] = {
    "smoke": dict(
        mqar=dict(trainer=dict(max_steps=3, val_check_interval=3, limit_val_batches=1),
                  data=dict(num_kv_pairs=[1, 2, 8], lengths=[16, 32], num_train=8, num_val=4, batch_size=4),
                  num_test=8, seeds=2),
        lm=dict(trainer=dict(max_steps=4, val_check_interval=2, limit_val_batches=1),
                data=dict(max_documents=40, batch_size=4, seq_len=64), seeds=2),
    ),
    "paper": dict(mqar=dict(trainer={}, data={}, num_test=256, seeds=3),
                  lm=dict(trainer={}, data={}, seeds=3)),
}


def config_path(arm: str, task: str) -> Path:
    """``configs/hybrid/why_hybrid_{arm}_{task}.yaml``; errors name the allowed values."""
    if arm not in ARMS:
        raise ValueError(f"arm: expected one of {ARMS}, got {arm!r}")
    if task not in TASKS:
        raise ValueError(f"task: expected one of {TASKS}, got {task!r}")
    return CONFIG_DIR / f"why_hybrid_{arm}_{task}.yaml"


def arm_configs(task: str = "lm") -> dict[str, ModelConfig]:
    """The model config of every arm, read from its YAML."""
    return {arm: model_config_from_yaml(config_path(arm, task)) for arm in ARMS}


def arm_table(task: str = "lm") -> dict[str, dict]:
    """Parameter counts, patterns and attention fractions of the arms (see :func:`parameter_table`)."""
    return parameter_table(arm_configs(task))


def _profile(profile: str, task: str) -> dict:
    return profile_settings(PROFILES, profile)[task]


def train_arm(path: Path, seed: int, prof: dict, *, cache: bool, metrics: tuple[str, ...] = ("val/loss",),
              datamodule=None) -> tuple[torch.nn.Module, object, dict]:
    """Train the arm of ``path`` as :func:`~nvrepro.core.training.yaml_fit.fit_from_yaml` does, or load it.

    ``prof`` holds the profile's ``trainer`` and ``data`` overrides. With ``cache``, the trained
    weights, curve, steps and seconds are saved under ``build/why_hybrid/`` keyed by the parsed YAML
    (model, data, trainer incl. ``max_steps``; comments do not count), the overrides, the seed and
    ``metrics``; a later call with the same inputs loads them instead of
    training. Returns ``(model, datamodule, run)`` with ``run = {"curve", "steps", "seconds",
    "cached"}`` (``seconds``: the original training time, also when loaded).
    """
    ckpt = cache_path(CACHE_DIR, path.stem, read_cli_yaml(path), prof["trainer"], prof["data"], seed, list(metrics),
                      code=TRAINING_CODE)
    payload = load_cached(ckpt) if cache else None
    if payload is None:
        fit = fit_from_yaml(path, seed, trainer=prof["trainer"], data=prof["data"], datamodule=datamodule,
                            metrics=metrics)
        run = {"curve": fit.curve, "steps": fit.steps, "seconds": fit.seconds}
        if cache:
            save_cached(ckpt, {"state_dict": fit.module.model.state_dict(), **run})
        return fit.module.model, fit.datamodule, {**run, "cached": False}
    module = module_from_yaml(path)
    module.model.load_state_dict(payload["state_dict"])
    if datamodule is None:
        datamodule = datamodule_from_yaml(path, **{"seed": seed, **prof["data"]})
    run = {k: payload[k] for k in ("curve", "steps", "seconds")}
    return module.model, datamodule, {**run, "cached": True}


def cell_scores(model, dataset, batch_size: int = 64) -> SupervisedScores:
    """Argmax accuracy over the query positions (labels != -100) of one MQAR cell, with its counts.

    ``dataset`` holds ``input_ids``/``labels`` (N, L); the model maps ``input_ids`` (b, L) to
    logits (b, L, V). :func:`~nvrepro.core.evaluation.supervised_scores` over batches of
    ``batch_size`` examples: ``correct`` of ``count`` queries (``accuracy``: Wilson interval).
    """
    batches = [{"input_ids": dataset.input_ids[i:i + batch_size], "labels": dataset.labels[i:i + batch_size]}
               for i in range(0, len(dataset), batch_size)]
    return supervised_scores(model, batches)


@torch.no_grad()
def example_scores(model, dataset, batch_size: int = 64) -> tuple[list[int], list[int]]:
    """Per example of one MQAR cell: ``(correct, queries)``, two lists of length N, the query
    positions (labels != -100) whose argmax prediction is the label, and how many there are.
    ``dataset``: ``input_ids``/``labels`` (N, L). Their sums are :func:`cell_scores`' counts."""
    correct, queries = [], []
    with eval_mode(model):
        for i in range(0, len(dataset), batch_size):
            ids, labels = dataset.input_ids[i:i + batch_size], dataset.labels[i:i + batch_size]
            mask = labels != IGNORE_INDEX
            hit = (model(ids).argmax(-1) == labels) & mask
            correct += hit.sum(1).tolist()
            queries += mask.sum(1).tolist()
    return correct, queries


def training_seeds(profile: str, task: str, seed: int = 0, seeds: int | None = None) -> list[int]:
    """``[seed, seed + 1, ...]``: the profile's number of training seeds for ``task`` (or ``seeds``)."""
    n = _profile(profile, task)["seeds"] if seeds is None else seeds
    if not (isinstance(n, int) and n >= 1):
        raise ValueError(f"seeds: a positive number of training seeds, got {n!r}")
    return [seed + k for k in range(n)]


def mqar_recall(profile: str = "smoke", seed: int = 0, arms: tuple[str, ...] = ARMS, *, seeds: int | None = None,
                threads: int | None = 1, progress: bool = True, cache: bool | None = None) -> dict:
    """Train each arm on the MQAR mixture of its YAML with every training seed; per-query accuracy
    on one fixed set of held-out examples per grid cell (:data:`TEST_SEED`).

    Training seed ``s`` draws the training examples, the initial weights and the batch order; the
    test examples are the same for every arm and seed, so per-example scores pair up. Returns
    ``{"profile", "seed", "seeds", "metric", "pairs", "lengths", "cells", "num_test", "threads", "arms": {arm:
    {"accuracy": {length: [accuracy pooled over seeds per pair count, None where the cell does not
    exist]}, "correct" / "queries": {length: [summed over seeds]}, "seed_accuracy": {length: [[per
    seed] per pair count]}, "examples": {"<pairs>x<length>": {"correct": [[per example] per seed],
    "queries": [per example]}}, "params", "pattern", "steps", "seconds", "cached" (lists, per seed),
    "curve" (the first seed's), "curves" (per seed)}}}``.
    ``threads`` intra-op threads (default 1: on a shared CPU one thread is steadier); ``cache``
    (paper profile only; default there: on) reuses weights trained before (:func:`train_arm`).
    """
    prof = _profile(profile, "mqar")
    cache = use_cache(profile, cache)
    run_seeds = training_seeds(profile, "mqar", seed, seeds)
    table = arm_table("mqar")
    out = {"profile": profile, "seed": seed, "seeds": run_seeds, "metric": "per-query accuracy", "arms": {}}
    with num_threads(threads) as used:
        for arm in tqdm(arms, desc="MQAR arms", disable=not progress):
            path = config_path(arm, "mqar")
            scored, runs = [], []
            for s in tqdm(run_seeds, desc=f"{arm} seeds", leave=False, disable=not progress):
                model, dm, run = train_arm(path, s, prof, cache=cache, metrics=("val/loss", "val/acc"))
                tests = dm.test_sets(prof["num_test"], seed=TEST_SEED)
                scored.append({cell: example_scores(model, ds) for cell, ds in tests.items()})
                runs.append(run)
            pairs, lengths = sorted(set(dm.num_kv_pairs)), sorted(set(dm.lengths))
            out["arms"][arm] = pool_seeds(scored, pairs, lengths) | {
                "params": table[arm]["params"], "pattern": table[arm]["pattern"],
                "steps": [r["steps"] for r in runs], "seconds": [r["seconds"] for r in runs],
                "cached": [r["cached"] for r in runs], "curve": runs[0]["curve"], "curves": [r["curve"] for r in runs]}
            out.update(pairs=pairs, lengths=lengths, cells=[list(c) for c in dm.cells],
                       vocab_size=dm.vocab_size, num_test=prof["num_test"], threads=used)
    return out


def pool_seeds(scored: list[dict], pairs: list[int], lengths: list[int]) -> dict:
    """One arm's per-seed example scores (``[{(pairs, length): (correct, queries)}]``) as
    :func:`mqar_recall` reports them: pooled, per seed and per example."""
    def table(value) -> dict[int, list]:
        return {l: [value((n, l)) if (n, l) in scored[0] else None for n in pairs] for l in lengths}

    correct = table(lambda c: sum(sum(run[c][0]) for run in scored))
    queries = table(lambda c: sum(sum(run[c][1]) for run in scored))
    return {"accuracy": {l: [None if q is None else c / q for c, q in zip(correct[l], queries[l])] for l in lengths},
            "correct": correct, "queries": queries,
            "seed_accuracy": table(lambda c: [sum(run[c][0]) / sum(run[c][1]) for run in scored]),
            "examples": {f"{n}x{l}": {"correct": [run[(n, l)][0] for run in scored], "queries": scored[0][(n, l)][1]}
                         for (n, l) in scored[0]}}


def lm_curves(profile: str = "smoke", seed: int = 0, arms: tuple[str, ...] = ARMS, *, seeds: int | None = None,
              threads: int | None = 1, progress: bool = True, cache: bool | None = None) -> dict:
    """Train each arm on the text corpus of its YAML with every training seed; validation loss
    against steps.

    All arms and seeds share one data module built with the YAML's data seed (one split of the
    corpus, one batch order, packed once); a training seed sets the initial weights. Returns
    ``{"profile", "seed", "seeds", "threads", "arms": {arm: {"step": [...], "val_loss": [...]
    (first seed), "curves": [[val loss per evaluation] per seed], "final_val_loss" (mean over seeds),
    "sequence_losses": [per validation sequence, averaged over seeds], "seed_sequence_losses": [[...]
    per seed], "flat": [relative drop over the last FLAT_SHARE of each seed's curve], "params",
    "pattern", "steps", "seconds", "cached" (lists, per seed)}}}`` (losses in nats per token; a token
    is a byte here). ``sequence_losses``: :func:`sequence_losses` of the validation batches the
    trainer evaluates. ``cache`` as in :func:`mqar_recall`.
    """
    prof = _profile(profile, "lm")
    cache = use_cache(profile, cache)
    run_seeds = training_seeds(profile, "lm", seed, seeds)
    table = arm_table("lm")
    out = {"profile": profile, "seed": seed, "seeds": run_seeds, "arms": {}}
    shared: dict[str, object] = {}
    with num_threads(threads) as used:
        for arm in tqdm(arms, desc="LM arms", disable=not progress):
            path = config_path(arm, "lm")
            key = repr(init_args_from_yaml(path, "data"))
            if key not in shared:
                shared[key] = datamodule_from_yaml(path, **prof["data"])
            limit = trainer_kwargs_from_yaml(path, **prof["trainer"]).get("limit_val_batches")
            runs, losses = [], []
            for s in tqdm(run_seeds, desc=f"{arm} seeds", leave=False, disable=not progress):
                model, dm, run = train_arm(path, s, prof, cache=cache, datamodule=shared[key])
                runs.append(run)
                losses.append(sequence_losses(model, dm.val_dataloader(), limit))
            curves = [r["curve"]["val/loss"] for r in runs]
            out["arms"][arm] = {"step": runs[0]["curve"]["step"], "val_loss": curves[0], "curves": curves,
                                "final_val_loss": sum(c[-1] if c else math.nan for c in curves) / len(curves),
                                "sequence_losses": seed_average(losses), "seed_sequence_losses": losses,
                                "flat": [late_improvement(c) for c in curves],
                                "params": table[arm]["params"], "pattern": table[arm]["pattern"],
                                "steps": [r["steps"] for r in runs], "seconds": [r["seconds"] for r in runs],
                                "cached": [r["cached"] for r in runs]}
        out["threads"] = used
    return out


def late_improvement(curve: list[float]) -> float:
    """``(loss at the start of the last FLAT_SHARE of the evaluations - final loss) / that loss``:
    how much a validation curve still fell at the end (``nan`` with fewer than 2 evaluations)."""
    if len(curve) < 2:
        return math.nan
    k = max(2, math.ceil(FLAT_SHARE * len(curve)))
    start = curve[-k]
    return (start - curve[-1]) / start


def sequence_losses(model, loader, max_batches: int | None = None) -> list[float]:
    """Mean next-token loss of each sequence (row) of the first ``max_batches`` batches of
    ``loader`` (all when ``None``): one float per row, in loader order. Each row is scored alone
    by :func:`~nvrepro.core.evaluation.supervised_scores` (batches of ``input_ids``/``labels``
    ``(b, l)``)."""
    if max_batches is not None and not isinstance(max_batches, int):
        raise ValueError(f"max_batches: a number of batches or None, got {max_batches!r}")
    return [supervised_scores(model, [{"input_ids": batch["input_ids"][i:i + 1],
                                       "labels": batch["labels"][i:i + 1]}]).loss
            for batch in itertools.islice(loader, max_batches) for i in range(len(batch["input_ids"]))]


def run(profile: str = "smoke", seed: int = 0, **kwargs) -> dict:
    """Both experiments of the notebook: ``{"mqar": mqar_recall(...), "lm": lm_curves(...)}``
    (``kwargs`` go to both). The notebook calls the two in its two sections."""
    return {"mqar": mqar_recall(profile, seed, **kwargs), "lm": lm_curves(profile, seed, **kwargs)}


# --- the claims of the why_hybrid_recall and why_hybrid_lm_curves figures ----------------------
def _cells(mqar: Mapping) -> list[tuple[int, str, int]]:
    """``(pairs, length key, index)`` of every cell of ``mqar_recall``'s grid; length keys as
    the sidecar holds them (strings), so the predicates read in-memory and saved results alike."""
    return [(n, str(l), i) for l in mqar["lengths"] for i, n in enumerate(mqar["pairs"])]


def _column(arm: Mapping, key: str, length: str) -> list:
    table = arm[key]
    return table[length] if length in table else table[int(length)]


def smallest_lookup_cell(mqar: Mapping) -> tuple[int, int]:
    """``(pairs, length)``: the fewest pairs >= :data:`MIN_LOOKUP_PAIRS` at the shortest length."""
    return min(n for n in mqar["pairs"] if n >= MIN_LOOKUP_PAIRS), min(mqar["lengths"])


def cell_accuracy(mqar: Mapping, arm: str, pairs: int, length: int) -> Estimate | None:
    """One cell's per-query accuracy with Wilson's interval over its queries (None: no such cell)."""
    index = list(mqar["pairs"]).index(pairs)
    correct = _column(mqar["arms"][arm], "correct", str(length))[index]
    queries = _column(mqar["arms"][arm], "queries", str(length))[index]
    return None if queries is None else wilson(correct, queries)


def lookup_recall(mqar: Mapping, arm: str) -> Estimate:
    """Per-query accuracy of ``arm`` pooled over every query of the cells with at least
    :data:`MIN_LOOKUP_PAIRS` pairs, with Wilson's interval over those queries (each query one
    trial; the queries of one example share its context, so the interval is on the narrow side)."""
    correct = queries = 0
    for n, length, i in _cells(mqar):
        count = _column(mqar["arms"][arm], "queries", length)[i]
        if n >= MIN_LOOKUP_PAIRS and count is not None:
            correct += _column(mqar["arms"][arm], "correct", length)[i]
            queries += count
    return wilson(correct, queries)


def hard_example_recall(mqar: Mapping, arm: str) -> list[float]:
    """Per held-out example of the cells with at least :data:`HARD_PAIRS` pairs (in grid order):
    its share of queries answered right, averaged over the training seeds. Every arm is scored on
    the same examples in the same order (:data:`TEST_SEED`), so two arms' lists pair up."""
    values = []
    for cell, ex in mqar["arms"][arm]["examples"].items():
        if int(cell.split("x")[0]) >= HARD_PAIRS:
            per_seed = [[c / q for c, q in zip(run, ex["queries"])] for run in ex["correct"]]
            values += seed_average(per_seed)
    return values


def recall_gap(mqar: Mapping, arm: str, other: str) -> Estimate | None:
    """Mean over the hard examples (:func:`hard_example_recall`) of ``arm``'s recall minus
    ``other``'s, with a paired bootstrap interval (:data:`BOOTSTRAP_SEED`); ``None`` when the grid
    has fewer than two such examples."""
    a, b = hard_example_recall(mqar, arm), hard_example_recall(mqar, other)
    if len(a) < 2:
        return None
    return bootstrap_mean([x - y for x, y in zip(a, b)], seed=BOOTSTRAP_SEED)


def recall_summary(mqar: Mapping) -> dict:
    """What the notebook prints: the smallest lookup cell and the Transformer's accuracy there,
    each arm's :func:`lookup_recall`, and the paired gaps on the hard cells (:func:`recall_gap`):
    Transformer - Mamba-2 (how far the fixed state fell behind) and hybrid - Mamba-2."""
    cell = smallest_lookup_cell(mqar)
    return {"smallest_lookup_cell": cell, "transformer_at_smallest_cell": cell_accuracy(mqar, "transformer", *cell),
            "lookup_recall": {arm: lookup_recall(mqar, arm) for arm in mqar["arms"]},
            "hard_pairs": HARD_PAIRS,
            "gap_transformer_mamba2": recall_gap(mqar, "transformer", "mamba2"),
            "gap_hybrid_mamba2": recall_gap(mqar, "hybrid", "mamba2")}


def _positive(gap: Estimate | None, what: str) -> Judgement:
    """"``gap`` > 0" on its interval: above 0 holds, below fails, straddling is undecided."""
    if gap is None:
        return Judgement(None, f"{what}: no grid cell with >= {HARD_PAIRS} pairs")
    held = True if gap.above(0.0) else False if gap.below(0.0) else None
    return Judgement(held, f"{what} {gap} vs > 0", {"gap": gap})


def judge_recall(metrics: Mapping) -> Judgement:
    """The ``why_hybrid_recall`` claim, from :func:`mqar_recall`'s result.

    Prerequisite: the Transformer learned lookup, i.e. its accuracy at the smallest lookup cell
    (:func:`smallest_lookup_cell`, queries pooled over seeds) is above :data:`LOOKUP_LEARNED` with
    its whole Wilson interval; otherwise the claim is not judged (``None``): the comparison would
    say nothing about the architectures. Then two parts on the cells with at least
    :data:`HARD_PAIRS` pairs, each a paired bootstrap over their held-out examples of the
    seed-averaged recall (:func:`recall_gap`), above 0 holds, below fails, otherwise undecided:
    the pure Mamba-2 model's fixed state runs out there (Transformer - Mamba-2 > 0), and the
    hybrid's attention layer keeps the recall (hybrid - Mamba-2 > 0).
    """
    summary = recall_summary(metrics)
    cell, transformer = summary["smallest_lookup_cell"], summary["transformer_at_smallest_cell"]
    evidence = {"lookup_recall": summary["lookup_recall"], "smallest_lookup_cell": list(cell),
                "transformer_at_smallest_cell": transformer, "lookup_learned_threshold": LOOKUP_LEARNED,
                "hard_pairs": HARD_PAIRS, "seeds": metrics.get("seeds")}
    if transformer is None:
        return Judgement(None, f"not judged: no cell {cell} to show that lookup was learned", evidence)
    learned = at_least_threshold(transformer, LOOKUP_LEARNED, f"Transformer at {cell[0]} pairs, length {cell[1]}")
    if learned.held is not True:
        return Judgement(None, f"not judged: lookup not shown to be learned ({learned.reason})", evidence)
    parts = {"the pure Mamba-2 model falls behind the Transformer": _positive(
                 summary["gap_transformer_mamba2"], f"Transformer - Mamba-2 recall at >= {HARD_PAIRS} pairs"),
             "the hybrid recalls more than the pure Mamba-2 model": _positive(
                 summary["gap_hybrid_mamba2"], f"hybrid - Mamba-2 recall at >= {HARD_PAIRS} pairs")}
    return all_parts(parts, evidence=evidence)


def judge_lm_curves(metrics: Mapping) -> Judgement:
    """The ``why_hybrid_lm_curves`` claim, from :func:`lm_curves`' result (seed-averaged
    ``sequence_losses``, and each seed's curve).

    Prerequisite: every curve of the hybrid and the Transformer has flattened (over its last
    :data:`FLAT_SHARE` of evaluations the validation loss fell by less than :data:`FLAT_TOLERANCE`,
    :func:`late_improvement`); a curve still falling is not judged (``None``): its end is not the
    arm's loss. Then "the hybrid's loss is within :data:`LM_MARGIN` of the Transformer's" is
    ``mean(hybrid) - (1 + LM_MARGIN) * mean(transformer) <= 0``: the mean over validation sequences
    of the paired excess (both arms score the same sequences). Its bootstrap interval
    (:data:`BOOTSTRAP_SEED`) wholly below 0 holds, wholly above 0 fails, otherwise undecided.
    Each arm's mean loss is recorded with its interval.
    """
    arms = metrics["arms"]
    hybrid, transformer = arms["hybrid"]["sequence_losses"], arms["transformer"]["sequence_losses"]
    if len(hybrid) != len(transformer) or len(hybrid) < 2:
        return Judgement(None, f"not judged: need the same >= 2 validation sequences for both arms, got "
                               f"{len(hybrid)} and {len(transformer)}")
    if not all(finite(v) for v in transformer):
        return Judgement(None, "not judged: the Transformer's validation losses are not all finite")
    if not all(finite(v) for v in hybrid):
        return Judgement(False, "the hybrid's validation losses are not all finite")
    late = {arm: arms[arm]["flat"] for arm in ("hybrid", "transformer")}
    falling = {arm: [round(v, 4) for v in drops] for arm, drops in late.items()
               if not all(finite(v) and v < FLAT_TOLERANCE for v in drops)}
    means = {arm: bootstrap_mean(r["sequence_losses"], seed=BOOTSTRAP_SEED) for arm, r in arms.items()}
    evidence = {"mean_loss": means, "late_improvement": late, "flat_tolerance": FLAT_TOLERANCE, "margin": LM_MARGIN}
    if falling:
        return Judgement(None, f"not judged: curves still falling at the end (relative drop over the last "
                               f"{FLAT_SHARE:.0%} of evaluations, per seed: {falling} vs < {FLAT_TOLERANCE:g})",
                         evidence)
    excess = bootstrap_mean([h - (1 + LM_MARGIN) * t for h, t in zip(hybrid, transformer)], seed=BOOTSTRAP_SEED)
    held = True if excess.below(0.0) else False if excess.above(0.0) else None
    ratio = means["hybrid"].value / means["transformer"].value
    return Judgement(held, f"hybrid / Transformer loss {ratio:.3f} vs <= {1 + LM_MARGIN:g}; paired excess "
                           f"hybrid - {1 + LM_MARGIN:g} x Transformer = {excess} (nats/byte; <= 0 holds)",
                     {**evidence, "excess": excess, "ratio": ratio})


RECALL = Claim(
    "why_hybrid_recall",
    f"Where a pure Mamba-2 model's fixed state runs out (MQAR cells with >= {HARD_PAIRS} key-value pairs), it recalls "
    "less than a Transformer, and a hybrid with one attention layer in the Nemotron-H pattern recalls more than it "
    "(paired bootstrap over held-out examples of the recall averaged over training seeds; arms within one parameter "
    f"budget, each at its own depth and width); judged only where the Transformer learned lookup (>= "
    f"{LOOKUP_LEARNED:g} at the smallest lookup cell).",
    judge_recall,
)
LM_CURVES = Claim(
    "why_hybrid_lm_curves",
    f"At equal parameters and trained until the validation curves flatten (less than {100 * FLAT_TOLERANCE:g}% lower "
    f"over the last {FLAT_SHARE:.0%} of evaluations), the hybrid's validation loss (byte-level LM, averaged over "
    f"training seeds) is within {100 * LM_MARGIN:g}% of the Transformer's.",
    judge_lm_curves,
)
