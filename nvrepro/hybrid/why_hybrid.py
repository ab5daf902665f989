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

from nvrepro.core.evaluation import SupervisedScores, supervised_scores
from nvrepro.core.lm.config import ModelConfig, model_config_from_yaml
from nvrepro.core.tooling.claims import Claim, Judgement, finite
from nvrepro.core.tooling.intervals import Estimate, bootstrap_mean, wilson
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
from nvrepro.core.tooling.claims import at_least_estimate, at_least_threshold

ARMS = ("transformer", "mamba2", "hybrid")
TASKS = ("mqar", "lm")
CONFIG_DIR = CONFIGS_DIR / "hybrid"
CACHE_DIR = "why_hybrid"  # under build/ (nvrepro.core.tooling.weight_cache)

# The claims' thresholds, fixed before any run (see RECALL and LM_CURVES at the end).
LM_MARGIN = 0.02  # the hybrid's final validation loss at most this much (relative) above the Transformer's
LOOKUP_LEARNED = 0.75  # the Transformer's accuracy at the smallest lookup cell that shows lookup formed
MIN_LOOKUP_PAIRS = 2  # one pair needs no lookup: the only value in context is the answer
BOOTSTRAP_SEED = 0  # resampling seed of the LM claim's interval (same metrics, same interval)

# The code whose changes invalidate cached arms (nvrepro.core.tooling.weight_cache.code_version).
TRAINING_CODE = ("nvrepro.core", "nvrepro.hybrid")

# Smoke overrides (paper: the YAMLs as written, plus the size of the held-out recall test).
# Trained weights are cached under build/why_hybrid/ in the paper profile only (use_cache).
PROFILES: dict[str, dict] = {
    "smoke": dict(
        mqar=dict(trainer=dict(max_steps=3, val_check_interval=3, limit_val_batches=1),
                  data=dict(num_kv_pairs=[1, 2, 8], lengths=[16, 32], num_train=8, num_val=4, batch_size=4),
                  num_test=8),
        lm=dict(trainer=dict(max_steps=4, val_check_interval=2, limit_val_batches=1),
                data=dict(max_documents=40, batch_size=4, seq_len=64)),
    ),
    "paper": dict(mqar=dict(trainer={}, data={}, num_test=256),
                  lm=dict(trainer={}, data={})),
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


def mqar_recall(profile: str = "smoke", seed: int = 0, arms: tuple[str, ...] = ARMS, *,
                threads: int | None = 1, progress: bool = True, cache: bool | None = None) -> dict:
    """Train each arm on the MQAR mixture of its YAML; per-query accuracy on every grid cell.

    Returns ``{"profile", "seed", "metric", "pairs", "lengths", "cells", "threads", "arms": {arm:
    {"accuracy": {length: [acc per pair count, None where the cell does not exist]},
    "correct": {length: [queries answered right, ...]}, "queries": {length: [queries scored, ...]},
    "params", "pattern", "steps", "seconds", "cached", "curve": {"step", "val/loss", "val/acc"}}}}``.
    ``threads`` intra-op threads (default 1: on a shared CPU one thread is steadier); ``cache``
    (paper profile only; default there: on) reuses weights trained before (:func:`train_arm`).
    """
    prof = _profile(profile, "mqar")
    cache = use_cache(profile, cache)
    table = arm_table("mqar")
    out = {"profile": profile, "seed": seed, "metric": "per-query accuracy", "arms": {}}
    with num_threads(threads) as used:
        for arm in tqdm(arms, desc="MQAR arms", disable=not progress):
            path = config_path(arm, "mqar")
            model, dm, run = train_arm(path, seed, prof, cache=cache, metrics=("val/loss", "val/acc"))
            tests = dm.test_sets(prof["num_test"])
            pairs, lengths = sorted(set(dm.num_kv_pairs)), sorted(set(dm.lengths))
            scores = {l: [cell_scores(model, tests[(n, l)]) if (n, l) in tests else None for n in pairs]
                      for l in lengths}

            def per_cell(value) -> dict[int, list]:
                return {l: [None if c is None else value(c) for c in row] for l, row in scores.items()}

            out["arms"][arm] = {"accuracy": per_cell(lambda c: c.correct / c.count),
                                "correct": per_cell(lambda c: c.correct), "queries": per_cell(lambda c: c.count),
                                "params": table[arm]["params"], "pattern": table[arm]["pattern"], **run}
            out.update(pairs=pairs, lengths=lengths, cells=[list(c) for c in dm.cells],
                       vocab_size=dm.vocab_size, num_test=prof["num_test"], threads=used)
    return out


def lm_curves(profile: str = "smoke", seed: int = 0, arms: tuple[str, ...] = ARMS, *,
              threads: int | None = 1, progress: bool = True, cache: bool | None = None) -> dict:
    """Train each arm on the text corpus of its YAML; validation loss against steps.

    Arms whose YAMLs name the same data share one data module (the corpus is packed once; every
    arm sees the same batches in the same order). Returns ``{"profile", "seed", "threads",
    "arms": {arm: {"step": [...], "val_loss": [...], "final_val_loss", "sequence_losses": [...],
    "params", "pattern", "steps", "seconds", "cached"}}}`` (losses in nats per token; a token is a
    byte here). ``sequence_losses``: the final weights' mean loss on each sequence of the
    validation batches the trainer evaluates (:func:`sequence_losses`); their mean is
    ``final_val_loss`` up to float rounding. ``cache`` as in :func:`mqar_recall`.
    """
    prof = _profile(profile, "lm")
    cache = use_cache(profile, cache)
    table = arm_table("lm")
    out = {"profile": profile, "seed": seed, "arms": {}}
    shared: dict[str, object] = {}
    with num_threads(threads) as used:
        for arm in tqdm(arms, desc="LM arms", disable=not progress):
            path = config_path(arm, "lm")
            key = repr(init_args_from_yaml(path, "data"))
            if key not in shared:
                shared[key] = datamodule_from_yaml(path, **{"seed": seed, **prof["data"]})
            model, dm, run = train_arm(path, seed, prof, cache=cache, datamodule=shared[key])
            limit = trainer_kwargs_from_yaml(path, **prof["trainer"]).get("limit_val_batches")
            losses = run["curve"]["val/loss"]
            out["arms"][arm] = {"step": run["curve"]["step"], "val_loss": losses,
                                "final_val_loss": losses[-1] if losses else math.nan,
                                "sequence_losses": sequence_losses(model, dm.val_dataloader(), limit),
                                "params": table[arm]["params"], "pattern": table[arm]["pattern"],
                                "steps": run["steps"], "seconds": run["seconds"], "cached": run["cached"]}
        out["threads"] = used
    return out


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


def recall_summary(mqar: Mapping) -> dict:
    """What the notebook prints: the smallest lookup cell and the Transformer's accuracy there,
    and each arm's :func:`lookup_recall`, all as :class:`Estimate` s."""
    cell = smallest_lookup_cell(mqar)
    return {"smallest_lookup_cell": cell, "transformer_at_smallest_cell": cell_accuracy(mqar, "transformer", *cell),
            "lookup_recall": {arm: lookup_recall(mqar, arm) for arm in mqar["arms"]}}


def judge_recall(metrics: Mapping) -> Judgement:
    """The ``why_hybrid_recall`` claim, from :func:`mqar_recall`'s result (``correct`` and
    ``queries`` per cell).

    Prerequisite: the Transformer learned lookup, i.e. its accuracy at the smallest lookup cell
    (:func:`smallest_lookup_cell`) is above :data:`LOOKUP_LEARNED` with its whole Wilson interval.
    If it is not (below, or the interval straddles the bar) the claim is not judged (``None``):
    training was too short for the comparison to say anything about the architectures. Then:
    the hybrid's :func:`lookup_recall` is at least the pure Mamba-2 model's
    (:func:`~nvrepro.core.tooling.claims.at_least_estimate`: the hybrid's interval at or above
    Mamba-2's estimate holds; the hybrid's interval wholly below it fails; otherwise undecided).
    """
    summary = recall_summary(metrics)
    cell, transformer = summary["smallest_lookup_cell"], summary["transformer_at_smallest_cell"]
    recall = summary["lookup_recall"]
    comparison = at_least_estimate(recall["hybrid"], recall["mamba2"], "hybrid vs Mamba-2 lookup recall")
    evidence = {"lookup_recall": recall, "comparison": comparison.to_dict(), "smallest_lookup_cell": list(cell),
                "transformer_at_smallest_cell": transformer, "lookup_learned_threshold": LOOKUP_LEARNED}
    if transformer is None:
        return Judgement(None, f"not judged: no cell {cell} to show that lookup was learned", evidence)
    learned = at_least_threshold(transformer, LOOKUP_LEARNED, f"Transformer at {cell[0]} pairs, length {cell[1]}")
    if learned.held is not True:
        return Judgement(None, f"not judged: lookup not shown to be learned ({learned.reason})", evidence)
    return Judgement(comparison.held, comparison.reason, evidence)


def judge_lm_curves(metrics: Mapping) -> Judgement:
    """The ``why_hybrid_lm_curves`` claim, from :func:`lm_curves`' result (``sequence_losses``).

    "The hybrid's loss is within :data:`LM_MARGIN` of the Transformer's" is
    ``mean(hybrid) - (1 + LM_MARGIN) * mean(transformer) <= 0``: the mean over validation
    sequences of the paired excess ``hybrid_i - (1 + LM_MARGIN) * transformer_i`` (both arms score
    the same sequences). Its bootstrap interval (:data:`BOOTSTRAP_SEED`) wholly below 0 holds,
    wholly above 0 fails, otherwise undecided. Each arm's mean loss is recorded with its interval.
    """
    hybrid = metrics["arms"]["hybrid"]["sequence_losses"]
    transformer = metrics["arms"]["transformer"]["sequence_losses"]
    if len(hybrid) != len(transformer) or len(hybrid) < 2:
        return Judgement(None, f"not judged: need the same >= 2 validation sequences for both arms, got "
                               f"{len(hybrid)} and {len(transformer)}")
    if not all(finite(v) for v in transformer):
        return Judgement(None, "not judged: the Transformer's validation losses are not all finite")
    if not all(finite(v) for v in hybrid):
        return Judgement(False, "the hybrid's validation losses are not all finite")
    excess = bootstrap_mean([h - (1 + LM_MARGIN) * t for h, t in zip(hybrid, transformer)], seed=BOOTSTRAP_SEED)
    held = True if excess.below(0.0) else False if excess.above(0.0) else None
    means = {arm: bootstrap_mean(losses, seed=BOOTSTRAP_SEED) for arm, losses in
             (("hybrid", hybrid), ("transformer", transformer))}
    ratio = means["hybrid"].value / means["transformer"].value
    return Judgement(held, f"hybrid / Transformer loss {ratio:.3f} vs <= {1 + LM_MARGIN:g}; paired excess "
                           f"hybrid - {1 + LM_MARGIN:g} x Transformer = {excess} (nats/byte; <= 0 holds)",
                     {"excess": excess, "mean_loss": means, "ratio": ratio, "margin": LM_MARGIN})


RECALL = Claim(
    "why_hybrid_recall",
    f"At equal parameters, a Nemotron-H-style hybrid (7.7% attention) recalls key-value pairs at least as well as a "
    f"pure Mamba-2 model (per-query accuracy over all queries of the cells with >= {MIN_LOOKUP_PAIRS} pairs, Wilson "
    f"intervals), judged only where the Transformer learned lookup (>= {LOOKUP_LEARNED:g} at the smallest lookup "
    f"cell).",
    judge_recall,
)
LM_CURVES = Claim(
    "why_hybrid_lm_curves",
    f"At equal parameters, the hybrid's final validation loss (byte-level LM) is within {100 * LM_MARGIN:g}% of the "
    f"Transformer's.",
    judge_lm_curves,
)
