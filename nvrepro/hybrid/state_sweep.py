"""Where the fixed state runs out: the recall arms of notebook 02 with a smaller Mamba-2 state.

A Mamba-2 layer reads the past only through its state: per head a ``d_state x head_dim`` matrix
that every token is written into with the outer product of its key-like input ``B`` (``d_state``
numbers; one ``B`` for all heads of a group) and its value-like input ``x`` (Mamba-2, Dao & Gu
2024, arXiv:2405.21060, Sec. 3). Read out with ``C``, such a state can tell at most about
``d_state`` keys apart at once, as a linear attention with feature dimension ``d_state`` would
(Zoology, arXiv:2312.04927, Sec. 4, on the state size that MQAR needs). An attention layer has no
such limit: its KV cache grows with the context. So shrinking ``d_state`` should cost the pure
Mamba-2 model recall on the cells with many key-value pairs, and cost the hybrid much less.

:func:`state_sweep` trains the ``mamba2`` and ``hybrid`` recall arms of
:mod:`nvrepro.hybrid.why_hybrid` at each smaller state size of :data:`STATE_SIZES`, from
``configs/hybrid/why_hybrid_{arm}_mqar_state{d}.yaml`` (the recall YAML with only ``d_state``
changed), with the same seeds, training code (:func:`~nvrepro.hybrid.why_hybrid.train_arm`, weight
cache included) and held-out examples (:data:`~nvrepro.hybrid.why_hybrid.TEST_SEED`); the YAML's
own state size is the sweep's largest point, taken from :func:`~nvrepro.hybrid.why_hybrid.mqar_recall`'s
result when the notebook passes it. :data:`STATE_SWEEP` is the claim of its figure.

Unlike :data:`~nvrepro.hybrid.why_hybrid.RECALL` (a bootstrap over test examples of the
seed-averaged recall), this claim takes the **training seed** as the unit: a model learns lookup,
or does not, differently from seed to seed, and that spread is the larger one here. Each seed's
recall on the hard cells is one value; two arms are compared with Welch's t interval over those
values (:func:`~nvrepro.core.tooling.intervals.seed_difference`), which is wide with three seeds, as it should be.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from tqdm.auto import tqdm

from nvrepro.core.lm.config import model_config_from_yaml
from nvrepro.core.tooling.claims import Claim, Judgement, all_parts
from nvrepro.core.tooling.intervals import Estimate, seed_difference
from nvrepro.core.tooling.profiles import profile_settings
from nvrepro.core.tooling.timing import num_threads
from nvrepro.core.tooling.weight_cache import use_cache
from nvrepro.hybrid import why_hybrid
from nvrepro.hybrid.arms import parameter_table

SWEEP_ARMS = ("mamba2", "hybrid")  # the arms with a Mamba-2 state (the recall Transformer has none)
STATE_SIZES = (4,)  # the smaller d_state values swept, each with a YAML per arm (the YAML's own is added)
CONFIDENCE = 0.95  # of the Welch intervals over seeds


def base_state(arm: str) -> int:
    """``d_state`` of the arm's recall YAML (``why_hybrid_{arm}_mqar.yaml``)."""
    return model_config_from_yaml(why_hybrid.config_path(arm, "mqar")).mamba.d_state


def state_config_path(arm: str, d_state: int) -> Path:
    """The recall YAML of ``arm`` with a ``d_state`` Mamba-2 state: the arm's own YAML at its own
    state size, else ``why_hybrid_{arm}_mqar_state{d_state}.yaml``. Errors name what is missing or
    inconsistent (a YAML whose ``d_state`` is not the one in its name, or whose other fields differ
    from the base YAML's)."""
    if arm not in SWEEP_ARMS:
        raise ValueError(f"arm: expected one of {SWEEP_ARMS}, got {arm!r}")
    if not (isinstance(d_state, int) and d_state >= 1):
        raise ValueError(f"d_state: a positive integer, got {d_state!r}")
    base = why_hybrid.config_path(arm, "mqar")
    if d_state == base_state(arm):
        return base
    path = base.with_name(f"{base.stem}_state{d_state}.yaml")
    if not path.is_file():
        raise FileNotFoundError(f"d_state: no YAML for arm {arm!r} at d_state {d_state} ({path.name})")
    cfg, ref = model_config_from_yaml(path), model_config_from_yaml(base)
    if cfg.mamba.d_state != d_state:
        raise ValueError(f"{path.name}: mamba.d_state is {cfg.mamba.d_state}, the file name says {d_state}")
    if cfg.pattern != ref.pattern or cfg.d_model != ref.d_model:
        raise ValueError(f"{path.name}: pattern/d_model differ from {base.name}; only d_state may change")
    return path


def sweep_states(arm: str, state_sizes: Sequence[int] = STATE_SIZES) -> list[int]:
    """The sweep's state sizes for ``arm``, ascending: ``state_sizes`` and the YAML's own."""
    return sorted({*state_sizes, base_state(arm)})


def seed_hard_recall(entry: Mapping, hard_pairs: int = why_hybrid.HARD_PAIRS) -> list[float]:
    """Per training seed: the mean, over the held-out examples of the cells with at least
    ``hard_pairs`` pairs, of each example's share of queries answered right (one float per seed).
    ``entry["examples"]`` as :func:`~nvrepro.hybrid.why_hybrid.mqar_recall` reports an arm's."""
    per_seed: list[list[float]] | None = None
    for cell, ex in entry["examples"].items():
        if int(cell.split("x")[0]) < hard_pairs:
            continue
        rows = [[c / q for c, q in zip(run, ex["queries"])] for run in ex["correct"]]
        per_seed = rows if per_seed is None else [a + b for a, b in zip(per_seed, rows)]
    if per_seed is None:
        raise ValueError(f"hard_pairs: no cell with >= {hard_pairs} pairs in {sorted(entry['examples'])}")
    return [sum(r) / len(r) for r in per_seed]


def state_sweep(profile: str = "smoke", seed: int = 0, base: Mapping | None = None, *,
                state_sizes: Sequence[int] = STATE_SIZES, seeds: int | None = None, threads: int | None = 1,
                progress: bool = True, cache: bool | None = None) -> dict:
    """Train the ``mamba2`` and ``hybrid`` recall arms at every state size of the sweep
    (:func:`sweep_states`) with the training seeds of ``profile``; score them on the held-out MQAR
    examples (:data:`~nvrepro.hybrid.why_hybrid.TEST_SEED`, the same as the notebook's recall
    grid).

    ``base``: :func:`~nvrepro.hybrid.why_hybrid.mqar_recall`'s result for the same profile, seed
    and seeds; its ``mamba2`` and ``hybrid`` arms are the sweep's points at the YAMLs' own state
    size (otherwise those are trained or loaded here). Returns ``{"profile", "seed", "seeds",
    "hard_pairs", "pairs", "lengths", "num_test", "threads", "arms": {arm: {"d_state": [ascending],
    "runs": [per state size: the arm's entry as mqar_recall reports it ("accuracy", "correct",
    "queries", "seed_accuracy", "examples", "params", "steps", "seconds", "cached") plus
    "hard_recall" (:func:`seed_hard_recall`, per seed) and "config" (the YAML's name)]}}}``.
    """
    prof = profile_settings(why_hybrid.PROFILES, profile)["mqar"]
    cache = use_cache(profile, cache)
    run_seeds = why_hybrid.training_seeds(profile, "mqar", seed, seeds)
    if base is not None and list(base["seeds"]) != run_seeds:
        raise ValueError(f"base: its training seeds {base['seeds']} are not this sweep's {run_seeds}")
    out = {"profile": profile, "seed": seed, "seeds": run_seeds, "hard_pairs": why_hybrid.HARD_PAIRS, "arms": {}}
    if base is not None:
        out.update(pairs=list(base["pairs"]), lengths=list(base["lengths"]))
    with num_threads(threads) as used:
        for arm in tqdm(SWEEP_ARMS, desc="state sweep arms", disable=not progress):
            states, runs = sweep_states(arm, state_sizes), []
            for d_state in states:
                path = state_config_path(arm, d_state)
                if base is not None and d_state == base_state(arm):
                    entry = dict(base["arms"][arm])
                else:
                    entry = _train_and_score(path, run_seeds, prof, cache, progress)
                    entry["params"] = parameter_table({arm: model_config_from_yaml(path)})[arm]["params"]
                    grid = {"pairs": entry.pop("_pairs"), "lengths": entry.pop("_lengths")}
                    if out.setdefault("pairs", grid["pairs"]) != grid["pairs"] or \
                            out.setdefault("lengths", grid["lengths"]) != grid["lengths"]:
                        raise ValueError(f"{path.name}: its MQAR grid {grid} is not the other runs' "
                                         f"({out['pairs']}, {out['lengths']})")
                entry.pop("curve", None), entry.pop("curves", None), entry.pop("pattern", None)
                runs.append({**entry, "config": path.name, "hard_recall": seed_hard_recall(entry)})
            out["arms"][arm] = {"d_state": states, "runs": runs}
    out.update(num_test=prof["num_test"], threads=used)
    return out


def _train_and_score(path: Path, run_seeds: list[int], prof: dict, cache: bool, progress: bool) -> dict:
    """One YAML, every seed: :func:`~nvrepro.hybrid.why_hybrid.train_arm`, then the per-example
    scores on the held-out cells, pooled as :func:`~nvrepro.hybrid.why_hybrid.mqar_recall` pools them."""
    scored, runs = [], []
    for s in tqdm(run_seeds, desc=path.stem, leave=False, disable=not progress):
        model, dm, run = why_hybrid.train_arm(path, s, prof, cache=cache, metrics=("val/loss", "val/acc"))
        tests = dm.test_sets(prof["num_test"], seed=why_hybrid.TEST_SEED)
        scored.append({cell: why_hybrid.example_scores(model, ds) for cell, ds in tests.items()})
        runs.append(run)
    pairs, lengths = sorted(set(dm.num_kv_pairs)), sorted(set(dm.lengths))
    return why_hybrid.pool_seeds(scored, pairs, lengths) | {
        "steps": [r["steps"] for r in runs], "seconds": [r["seconds"] for r in runs],
        "cached": [r["cached"] for r in runs], "_pairs": pairs, "_lengths": lengths}


def sidecar_metrics(sweep: Mapping) -> dict:
    """``sweep`` without the per-example scores (``examples``): what the figure's sidecar keeps. The
    claim reads each run's ``hard_recall``; the per-cell counts stay for the plot."""
    arms = {arm: {**r, "runs": [{k: v for k, v in run.items() if k != "examples"} for run in r["runs"]]}
            for arm, r in sweep["arms"].items()}
    return {**sweep, "arms": arms}


def sweep_point(sweep: Mapping, arm: str, d_state: int) -> dict:
    """The run of ``arm`` at ``d_state`` in :func:`state_sweep`'s result."""
    states = list(sweep["arms"][arm]["d_state"])
    if d_state not in states:
        raise ValueError(f"d_state: {arm!r} was swept at {states}, not {d_state}")
    return sweep["arms"][arm]["runs"][states.index(d_state)]


def sweep_summary(sweep: Mapping) -> dict:
    """What the notebook prints and the claim decides on: the smallest and the largest state size
    (shared by both arms), each arm's per-seed hard-cell recall at both, and three Welch
    differences over seeds: Mamba-2 large - small state (what the smaller state cost it), hybrid
    large - small state (what it cost the hybrid), and hybrid - Mamba-2 at the small state."""
    small = min(min(r["d_state"]) for r in sweep["arms"].values())
    large = max(max(r["d_state"]) for r in sweep["arms"].values())
    hard = {arm: {d: sweep_point(sweep, arm, d)["hard_recall"] for d in (small, large)} for arm in SWEEP_ARMS}
    return {"small_state": small, "large_state": large, "hard_pairs": sweep["hard_pairs"], "hard_recall": hard,
            "mamba2_cost": seed_difference(hard["mamba2"][large], hard["mamba2"][small]),
            "hybrid_cost": seed_difference(hard["hybrid"][large], hard["hybrid"][small]),
            "hybrid_minus_mamba2_small": seed_difference(hard["hybrid"][small], hard["mamba2"][small])}


def _positive(gap: Estimate, what: str) -> Judgement:
    held = True if gap.above(0.0) else False if gap.below(0.0) else None
    return Judgement(held, f"{what} {gap} vs > 0", {"gap": gap})


def judge_state_sweep(metrics: Mapping) -> Judgement:
    """The ``why_hybrid_state_sweep`` claim, from :func:`state_sweep`'s result: two parts, each a
    Welch interval over training seeds of the hard-cell recall (:func:`sweep_summary`), above 0
    holds, below 0 fails, straddling is undecided:

    * the smaller state costs the pure Mamba-2 model recall (Mamba-2 at the largest minus at the
      smallest state size > 0);
    * at the smallest state the hybrid recalls more than the pure Mamba-2 model (> 0).

    What the smaller state cost the hybrid is recorded beside them, not judged (a claim that it
    cost "nothing" would need a margin fixed in advance).
    """
    s = sweep_summary(metrics)
    small, large, n = s["small_state"], s["large_state"], s["hard_pairs"]
    if small == large:
        return Judgement(None, f"not judged: one state size ({small}) only")
    parts = {"a smaller state costs the pure Mamba-2 model recall": _positive(
                 s["mamba2_cost"], f"Mamba-2 recall at >= {n} pairs, d_state {large} - {small}"),
             "at the smaller state the hybrid recalls more than the pure Mamba-2 model": _positive(
                 s["hybrid_minus_mamba2_small"], f"hybrid - Mamba-2 recall at >= {n} pairs, d_state {small}")}
    return all_parts(parts, evidence={"hard_recall": s["hard_recall"], "hybrid_cost": s["hybrid_cost"],
                                      "seeds": metrics.get("seeds"), "confidence": CONFIDENCE})


STATE_SWEEP = Claim(
    "why_hybrid_state_sweep",
    f"Cutting the Mamba-2 state size (d_state) lowers the pure Mamba-2 model's recall on the MQAR cells with >= "
    f"{why_hybrid.HARD_PAIRS} key-value pairs, and at the smaller state the hybrid with one attention layer recalls "
    "more than the pure Mamba-2 model (Welch t intervals over training seeds of each seed's recall on those cells).",
    judge_state_sweep,
)
