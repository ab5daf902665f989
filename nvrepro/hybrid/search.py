"""MiniPuzzle, part 2: candidate architectures under a memory budget, ranked against the parent.

A candidate is a number of Mamba, attention and FFN layers to keep plus one FFN width
(Nemotron-H, Sec. 4). Its layers are chosen by importance (:func:`~nvrepro.hybrid.minipuzzle.
layers_to_keep`: the least important layers of each kind go), its memory is

    weights at ``weight_dtype``  +  KV cache of its attention layers at ``context`` x ``batch``
                                 +  conv/SSM state of its Mamba layers (constant in context)

computed with :func:`nvrepro.core.lm.info.model_info` -- the code behind ``nvrepro info`` -- and it
is ranked by next-token accuracy on held-out data and by *agreement* with the parent (the
fraction of positions where its argmax token equals the parent's), without any training.

Which layers go does not change a candidate's size (all layers of a kind have the same shape),
so the memory arithmetic works on the meta device with :func:`placeholder_importance`, a
data-free stand-in that decides *which* layers, never *how many*.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from nvrepro.core.evaluation import argmax_predictions, supervised_scores
from nvrepro.core.lm.config import PATTERN_CHARS, ConfigError, ModelConfig
from nvrepro.core.lm.info import DTYPE_BYTES, ModelInfo, human_bytes, kv_cache_bytes, model_info
from nvrepro.core.lm.model import PatternLM
from nvrepro.hybrid.minipuzzle import layers_to_keep, prune_model, pruned_config

# Bits per weight; FP4 (e.g. NVFP4) counted without its per-block scales.
WEIGHT_BITS = {**{name: 8 * n for name, n in DTYPE_BYTES.items()}, "fp4": 4}
GIB = 2**30


@dataclass
class MemoryBudget:
    """Inference memory allowed: weights at ``weight_dtype`` + caches at ``context`` x ``batch``."""

    limit_bytes: int
    weight_dtype: str = "bf16"
    cache_dtype: str = "bf16"
    context: int = 8192
    batch: int = 1

    def __post_init__(self) -> None:
        if self.weight_dtype not in WEIGHT_BITS:
            raise ConfigError(f"weight_dtype: must be one of {sorted(WEIGHT_BITS)}, got {self.weight_dtype!r}")
        if self.cache_dtype not in DTYPE_BYTES:
            raise ConfigError(f"cache_dtype: must be one of {sorted(DTYPE_BYTES)}, got {self.cache_dtype!r}")
        if not self.limit_bytes > 0:
            raise ConfigError(f"limit_bytes: must be > 0, got {self.limit_bytes}")

    def describe(self) -> str:
        return (f"{human_bytes(self.limit_bytes)}: {self.weight_dtype} weights + {self.cache_dtype} KV "
                f"cache (fp32 SSM state) at context {self.context:,}, batch {self.batch}")


@dataclass
class MemoryEstimate:
    params: int
    weight_bytes: int
    kv_cache_bytes: int
    ssm_state_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.weight_bytes + self.kv_cache_bytes + self.ssm_state_bytes


@functools.lru_cache(maxsize=512)
def _model_info(cfg_json: str, context: int, batch: int, cache_dtype: str) -> ModelInfo:
    # Memoised: building a 56B-sized model on the meta device takes about a second.
    return model_info(ModelConfig.from_dict(json.loads(cfg_json)), context, batch, cache_dtype)


def memory_estimate(cfg: ModelConfig, budget: MemoryBudget) -> MemoryEstimate:
    """Weights + KV cache + SSM state of ``cfg`` under ``budget``'s precisions, context and batch."""
    info = _model_info(json.dumps(cfg.to_dict(), sort_keys=True), budget.context, budget.batch,
                       budget.cache_dtype)
    weight = math.ceil(info.total_params * WEIGHT_BITS[budget.weight_dtype] / 8)
    return MemoryEstimate(info.total_params, weight, info.kv_cache_bytes, info.ssm_state_bytes)


def max_context(cfg: ModelConfig, budget: MemoryBudget) -> float:
    """Longest context (tokens) whose weights + caches fit ``budget.limit_bytes`` (``inf`` without attention)."""
    base = memory_estimate(cfg, budget)  # weights and SSM state do not depend on the context
    per_token = kv_cache_bytes(cfg, 1, budget.batch, DTYPE_BYTES[budget.cache_dtype])
    room = budget.limit_bytes - base.weight_bytes - base.ssm_state_bytes
    if room < 0:
        return 0
    return math.inf if per_token == 0 else room // per_token


def placeholder_importance(cfg: ModelConfig) -> list[float]:
    """A data-free layer order for shape and memory arithmetic only (e.g. on the meta device).

    Scores each layer by its distance from the middle of the network, so the middle layers of
    each kind are dropped first. This is *not* a measurement and no claim about real models:
    importance cannot be measured on the meta device, and only the number of layers of each
    kind -- not which ones -- enters a candidate's parameter count and memory.
    """
    mid = (cfg.n_layers - 1) / 2
    return [abs(i - mid) for i in range(cfg.n_layers)]


@dataclass
class Candidate:
    """One pruned architecture: layers kept per kind, FFN width, and its memory."""

    keep: dict[str, int]
    ffn_width: int
    keep_layers: list[int]
    config: ModelConfig
    memory: MemoryEstimate
    fits: bool
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def pattern(self) -> str:
        return self.config.pattern

    @property
    def name(self) -> str:
        return (f"{self.keep.get('M', 0)}M/{self.keep.get('*', 0)}*/{self.keep.get('-', 0)}- "
                f"w{self.ffn_width}")

    def row(self) -> dict:
        """A flat, JSON-able summary (for tables and figure sidecars)."""
        return {"name": self.name, "pattern": self.pattern, "mamba": self.keep.get("M", 0),
                "attention": self.keep.get("*", 0), "ffn": self.keep.get("-", 0),
                "ffn_width": self.ffn_width, "params": self.memory.params,
                "memory_bytes": self.memory.total_bytes, "fits": self.fits, **self.metrics}


def candidate_grid(parent: ModelConfig, importance: Sequence[float], keep_grid: dict[str, Iterable[int]],
                   widths: Iterable[int], budget: MemoryBudget) -> list[Candidate]:
    """Every (layers kept per kind, FFN width) combination, with its memory and whether it fits.

    ``keep_grid`` maps a kind (``'M'``, ``'*'``, ``'-'``) to the counts to try (a kind not named
    keeps all its layers); layers are chosen by ``importance`` (least important dropped first).
    """
    unknown = sorted(set(keep_grid) - set(PATTERN_CHARS))
    if unknown:
        raise ConfigError(f"keep_grid: unknown layer kind(s) {unknown}; allowed: {sorted(PATTERN_CHARS)}")
    kinds = [k for k in PATTERN_CHARS if k in parent.pattern or k in keep_grid]  # registry order
    choices = [sorted(set(keep_grid.get(k, [parent.count(k)])), reverse=True) for k in kinds]
    out = []
    for counts in itertools.product(*choices):
        keep = dict(zip(kinds, counts))
        kept = layers_to_keep(parent.pattern, importance, keep)
        for width in sorted(set(widths), reverse=True):
            cfg = pruned_config(parent, kept, width)
            mem = memory_estimate(cfg, budget)
            out.append(Candidate(keep, width, kept, cfg, mem, mem.total_bytes <= budget.limit_bytes))
    return out


def next_token_metrics(model: PatternLM, batches: Sequence[dict],
                       reference: Sequence[torch.Tensor] | None = None) -> dict[str, float]:
    """Over the supervised positions (``labels != -100``) of ``batches``: ``loss``
    (cross-entropy), ``acc`` (argmax == label) from ``correct`` of ``count`` positions, and, given
    the parent's ``reference`` predictions (:func:`~nvrepro.core.evaluation.argmax_predictions`),
    ``agreement`` (argmax == the parent's) from ``agree`` positions. One pass of
    :func:`~nvrepro.core.evaluation.supervised_scores`; the counts let claims use Wilson intervals."""
    scores = supervised_scores(model, batches, reference=reference)
    out = {"loss": scores.loss, "acc": scores.correct / scores.count, "correct": scores.correct,
           "count": scores.count}
    if reference is not None:
        out.update(agreement=scores.agree / scores.count, agree=scores.agree)
    return out


def rank_candidates(candidates: list[Candidate]) -> list[Candidate]:
    """Sort by ``(acc + agreement) / 2`` (descending), then by smaller memory."""
    return sorted(candidates, key=lambda c: (-(c.metrics["acc"] + c.metrics["agreement"]) / 2,
                                             c.memory.total_bytes))


def search(parent: PatternLM, importance: Sequence[float], neuron_scores: dict, keep_grid: dict[str, Iterable[int]],
           widths: Iterable[int], budget: MemoryBudget, batches: Sequence[dict], *,
           progress: bool = True, evaluate_all: bool = False) -> tuple[list[Candidate], list[Candidate]]:
    """Build the grid, prune every candidate that fits (no training), evaluate, and rank.

    Returns ``(ranked, all_candidates)``: the fitting candidates best first (with ``metrics``:
    loss, acc, agreement, score) and the whole grid. Candidates over budget carry no metrics
    unless ``evaluate_all`` (then every candidate is evaluated, so that :func:`pick_under_budget`
    can say what the search would pick under any other budget).
    """
    grid = candidate_grid(parent.cfg, importance, keep_grid, widths, budget)
    reference = argmax_predictions(parent, batches)
    fitting = [c for c in grid if c.fits]
    for cand in tqdm(grid if evaluate_all else fitting, desc="candidates", disable=not progress):
        child = prune_model(parent, cand.keep_layers, cand.ffn_width, neuron_scores)
        cand.metrics = next_token_metrics(child, batches, reference)
        cand.metrics["score"] = (cand.metrics["acc"] + cand.metrics["agreement"]) / 2
    return rank_candidates(fitting), grid


def pick_under_budget(rows: Sequence[dict], limit_bytes: float) -> tuple[list[dict], dict | None]:
    """What the search does under a budget of ``limit_bytes``, from ``Candidate.row()`` dicts:
    ``(fitting, pick)`` with ``fitting`` the rows whose ``memory_bytes`` is at most the limit, and
    ``pick`` the one :func:`rank_candidates` puts first (highest ``(acc + agreement) / 2``, then
    smaller memory). ``pick`` is ``None`` when nothing fits or the rows carry no ``score`` (a grid
    on the meta device: no accuracy to rank by)."""
    fitting = [r for r in rows if r["memory_bytes"] <= limit_bytes]
    scored = [r for r in fitting if "score" in r]
    if not scored:
        return fitting, None
    return fitting, min(scored, key=lambda r: (-(r["acc"] + r["agreement"]) / 2, r["memory_bytes"]))


def format_memory(rows: dict[str, ModelConfig], budget: MemoryBudget) -> str:
    """The memory arithmetic of ``budget`` for named configs, one line each, as printed text."""
    lines = [f"budget {budget.describe()}",
             f"{'model':<14}{'layers M/*/-':>14}{'FFN':>7}{'params':>17}{'weights':>11}{'KV cache':>11}"
             f"{'SSM state':>11}{'total':>11}  fits  max context"]
    for name, cfg in rows.items():
        mem = memory_estimate(cfg, budget)
        ctx = max_context(cfg, budget)
        lines.append(
            f"{name:<14}{cfg.count('M'):>6}/{cfg.count('*'):>2}/{cfg.count('-'):>3}{cfg.ffn.hidden:>8}"
            f"{mem.params:>17,}{mem.weight_bytes / GIB:>8.2f} GiB{mem.kv_cache_bytes / GIB:>7.2f} GiB"
            f"{mem.ssm_state_bytes / GIB:>7.2f} GiB{mem.total_bytes / GIB:>7.2f} GiB  "
            f"{'yes' if mem.total_bytes <= budget.limit_bytes else 'no ':>4}  {ctx:>11,.0f}")
    return "\n".join(lines)


def format_candidates(rows: list[dict], top: int | None = None) -> str:
    """Ranked candidates (``Candidate.row()`` dicts) as aligned text, best first."""
    head = (f"{'rank':>4}  {'candidate':<18}{'pattern':<24}{'params':>10}{'memory':>12}"
            f"{'acc':>8}{'agree':>8}{'score':>8}")
    lines = [head, "-" * len(head)]
    for k, r in enumerate(rows[:top], 1):
        lines.append(f"{k:>4}  {r['name']:<18}{r['pattern']:<24}{r['params']:>10,}"
                     f"{human_bytes(r['memory_bytes']):>12}{r['acc']:>8.3f}{r['agreement']:>8.3f}{r['score']:>8.3f}")
    return "\n".join(lines)
