"""MiniPuzzle, part 1: importance of layers and FFN neurons, and the pruning surgery.

Nemotron-H (arXiv:2504.03624, Sec. 4) compresses the 56B model to 47B in three steps: measure
importance, search pruned candidates under a memory budget (:mod:`nvrepro.hybrid.search`), and
distil the chosen one from the parent (:mod:`nvrepro.hybrid.distill`). This file is the first
step and the model surgery:

* **layer importance**: for each layer ``i``, the mean squared error between the final hidden
  state of the full model and that of the model with layer ``i`` removed (its residual block
  skipped: ``x_{i+1} = x_i``), averaged over a sample of batches (the paper: 128 samples).
  "Final hidden state" here is the output of ``norm_f`` -- what the LM head reads -- by default;
  ``normed=False`` uses the raw residual stream before it.
* **FFN neuron importance** from activation statistics: for each FFN, the activation after the
  nonlinearity (the input of ``down_proj``) aggregated over every token of the sample, as its
  mean magnitude and its L2 norm (the paper: 1024 samples).
* **pruning**: keep a subset of layers (whole layers, any kind) and the top-k neurons of every
  FFN. The kept weights are copied exactly; a pruned FFN computes exactly the sum over its
  kept neurons of the parent's per-neuron contributions.

* **baselines of the importance order** (same counts per kind): :func:`random_layers_to_keep`
  (uniform random drops, seeded) and :func:`most_important_to_keep` (the most important first,
  sparing the :func:`catastrophic_layers`), so that the ranking is judged against chance and
  not against a straw man.

Mamba heads are *not* pruned: the paper reports that pruning Mamba heads hurt accuracy, so
MiniPuzzle keeps every kept Mamba layer whole (and attention layers whole as well).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from nvrepro.core.lm.config import PATTERN_CHARS, ConfigError, ModelConfig
from nvrepro.core.evaluation import eval_mode
from nvrepro.core.lm.layers.mlp import FFN
from nvrepro.core.lm.model import PatternLM, build_model

NEURON_SCORES = ("mean", "l2")


def _ids(batch) -> torch.Tensor:
    """``input_ids (b, l)`` from a datamodule batch dict or a bare tensor."""
    return batch["input_ids"] if isinstance(batch, dict) else batch


def _final(model: PatternLM, x: torch.Tensor, normed: bool) -> torch.Tensor:
    return model.norm_f(x) if normed else x


def layer_importance(model: PatternLM, batches: Iterable, *, normed: bool = True,
                     progress: bool = True) -> torch.Tensor:
    """MSE of the final hidden state when each layer is removed: ``(n_layers,)``, float64.

    For every batch ``(b, l)`` the full model's residual stream is computed once, keeping the
    input ``x_i`` of every layer; removing layer ``i`` means running layers ``i+1 ..`` from
    ``x_i``. The score of layer ``i`` is ``mean((h_full - h_without_i)^2)`` over batch,
    positions and channels, with ``h`` the output of ``norm_f`` (``normed=True``) or the last
    residual state; batches are weighted equally. A layer whose mixer outputs zero scores 0.
    """
    n = model.cfg.n_layers
    total = torch.zeros(n, dtype=torch.float64)
    count = 0
    with eval_mode(model):
        for batch in tqdm(list(batches), desc="layer importance", disable=not progress):
            xs = [model.embed(_ids(batch))]  # xs[i]: input of layer i; xs[n]: last residual
            for block in model.layers:
                xs.append(block(xs[-1]))
            ref = _final(model, xs[-1], normed)
            for i in range(n):
                x = xs[i]
                for block in model.layers[i + 1:]:
                    x = block(x)
                total[i] += F.mse_loss(_final(model, x, normed), ref).double()
            count += 1
    if count == 0:
        raise ValueError("batches: need at least one batch to measure layer importance")
    return total / count


def ffn_neuron_importance(model: PatternLM, batches: Iterable, *,
                          progress: bool = True) -> dict[int, dict[str, torch.Tensor]]:
    """Activation statistics of every FFN neuron: ``{layer: {"mean": (hidden,), "l2": (hidden,)}}``.

    The activation ``a`` is the input of ``down_proj``: ``relu(up x)^2`` (Nemotron-H) or
    ``silu(gate x) * up x`` (SwiGLU), shape ``(b, l, hidden)``. Over all tokens of all batches,
    ``mean = mean |a|`` (for squared ReLU ``a >= 0``, so this is the plain mean) and
    ``l2 = sqrt(sum a^2)``. Keys are layer indices in the model's pattern.
    """
    sums: dict[int, list[torch.Tensor]] = {}
    tokens = 0

    def hook(index: int):
        def record(_module, inputs):
            a = inputs[0].detach().double().reshape(-1, inputs[0].shape[-1])
            s1, s2 = sums.setdefault(index, [torch.zeros(a.shape[1], dtype=torch.float64),
                                             torch.zeros(a.shape[1], dtype=torch.float64)])
            s1 += a.abs().sum(0)
            s2 += a.square().sum(0)
        return record

    handles = [block.mixer.down_proj.register_forward_pre_hook(hook(i))
               for i, block in enumerate(model.layers) if block.kind == "-"]
    try:
        with eval_mode(model):
            for batch in tqdm(list(batches), desc="FFN neuron importance", disable=not progress):
                ids = _ids(batch)
                model(ids)
                tokens += ids.numel()
    finally:
        for h in handles:
            h.remove()
    if tokens == 0:
        raise ValueError("batches: need at least one batch to measure neuron importance")
    return {i: {"mean": s1 / tokens, "l2": s2.sqrt()} for i, (s1, s2) in sums.items()}


def top_neurons(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` highest ``scores`` (ties: lower index first), sorted ascending."""
    if not 0 < k <= scores.numel():
        raise ConfigError(f"ffn_width: must be in [1, {scores.numel()}], got {k}")
    order = torch.argsort(scores, descending=True, stable=True)[:k]
    return torch.sort(order).values


def layers_to_keep(pattern: str, importance: Sequence[float] | torch.Tensor,
                   keep: dict[str, int]) -> list[int]:
    """Indices of the layers a candidate keeps: for each kind, drop its least important layers.

    ``keep`` maps a pattern character (``'M'``, ``'*'``, ``'-'``) to how many layers of that kind
    survive (a kind not named keeps all). Ties drop the earlier layer first. Returns the kept
    indices in their original order.
    """
    importance = [float(v) for v in importance]
    if len(importance) != len(pattern):
        raise ValueError(f"importance: expected {len(pattern)} scores (one per layer), got {len(importance)}")
    unknown = sorted(set(keep) - set(PATTERN_CHARS))
    if unknown:
        raise ConfigError(f"keep: unknown layer kind(s) {unknown}; allowed: {sorted(PATTERN_CHARS)}")
    dropped: set[int] = set()
    for kind in PATTERN_CHARS:
        idx = [i for i, c in enumerate(pattern) if c == kind]
        n_keep = keep.get(kind, len(idx))
        if not 0 <= n_keep <= len(idx):
            raise ConfigError(f"keep[{kind!r}]: the parent has {len(idx)} {PATTERN_CHARS[kind]} "
                              f"layers; keep must be in [0, {len(idx)}], got {n_keep}")
        by_importance = sorted(idx, key=lambda i: (importance[i], i))
        dropped.update(by_importance[:len(idx) - n_keep])
    kept = [i for i in range(len(pattern)) if i not in dropped]
    if not kept:
        raise ConfigError("keep: a candidate must keep at least one layer")
    return kept


def random_layers_to_keep(pattern: str, keep: dict[str, int], seed: int) -> list[int]:
    """A baseline for :func:`layers_to_keep`: for each kind, keep ``keep[kind]`` of its layers
    chosen uniformly at random (every subset of that size equally likely), the same draw for the
    same ``seed``. Returns the kept indices in their original order."""
    gen = torch.Generator().manual_seed(int(seed))
    # Independent uniform scores give a uniformly random order within each kind.
    return layers_to_keep(pattern, torch.rand(len(pattern), generator=gen, dtype=torch.float64), keep)


def catastrophic_layers(pattern: str, importance: Sequence[float] | torch.Tensor, factor: float) -> list[int]:
    """Layers whose importance is at least ``factor`` times the median importance of the layers of
    the same kind (e.g. a first layer that turns embeddings into everything else reads): dropping
    one is trivially harmful, so an arm that drops "the most important" layers spares them.
    A kind with one or two layers can never have one (the median is at least half the largest)."""
    importance = [float(v) for v in importance]
    if len(importance) != len(pattern):
        raise ValueError(f"importance: expected {len(pattern)} scores (one per layer), got {len(importance)}")
    if not factor > 1:
        raise ConfigError(f"factor: must be > 1, got {factor}")
    out = []
    for kind in PATTERN_CHARS:
        idx = [i for i, c in enumerate(pattern) if c == kind]
        if idx:
            median = statistics.median(importance[i] for i in idx)
            out += [i for i in idx if importance[i] >= factor * median and importance[i] > 0]
    return sorted(out)


def most_important_to_keep(pattern: str, importance: Sequence[float] | torch.Tensor, keep: dict[str, int],
                           spare: Iterable[int] = ()) -> list[int]:
    """The reverse of :func:`layers_to_keep`: for each kind, drop its *most* important layers, but
    drop the layers in ``spare`` only when a kind has no other left to drop (then the least
    important of them first). Returns the kept indices in their original order."""
    importance = [float(v) for v in importance]
    if len(importance) != len(pattern):
        raise ValueError(f"importance: expected {len(pattern)} scores (one per layer), got {len(importance)}")
    spare = set(spare)
    top = max((abs(v) for v in importance), default=0.0) + 1.0
    # layers_to_keep drops the lowest scores first: -importance puts the most important first;
    # spared layers get scores above every other one, so they go last.
    return layers_to_keep(pattern, [2 * top + v if i in spare else -v for i, v in enumerate(importance)], keep)


def pruned_config(cfg: ModelConfig, keep_layers: Sequence[int], ffn_width: int | None = None) -> ModelConfig:
    """The config of the parent ``cfg`` restricted to ``keep_layers`` and FFN width ``ffn_width``."""
    keep_layers = list(keep_layers)
    if sorted(set(keep_layers)) != keep_layers or not keep_layers:
        raise ValueError(f"keep_layers: need strictly increasing layer indices, got {keep_layers}")
    if keep_layers[0] < 0 or keep_layers[-1] >= cfg.n_layers:
        raise ValueError(f"keep_layers: indices must be in [0, {cfg.n_layers - 1}], got {keep_layers}")
    width = cfg.ffn.hidden if ffn_width is None else ffn_width
    if not 0 < width <= cfg.ffn.hidden:
        raise ConfigError(f"ffn_width: must be in [1, {cfg.ffn.hidden}] (the parent's ffn.hidden), got {width}")
    data = cfg.to_dict()
    data["pattern"] = "".join(cfg.pattern[i] for i in keep_layers)
    data["ffn"]["hidden"] = width
    return ModelConfig.from_dict(data)


def prune_ffn(ffn: FFN, keep: torch.Tensor) -> dict[str, torch.Tensor]:
    """State dict of ``ffn`` restricted to neurons ``keep``: rows of ``up``/``gate``, columns of ``down``.

    ``down(act(up x))`` is ``sum_j down[:, j] * act_j(x)``, so keeping the rows ``keep`` of the
    input projections and the same columns of ``down_proj`` computes exactly the sum over the
    kept neurons (``keep`` sorted ascending keeps the parent's neuron order).
    """
    out = {"up_proj.weight": ffn.up_proj.weight[keep].clone(),
           "down_proj.weight": ffn.down_proj.weight[:, keep].clone()}
    if ffn.activation == "swiglu":
        out["gate_proj.weight"] = ffn.gate_proj.weight[keep].clone()
    return out


def prune_model(model: PatternLM, keep_layers: Sequence[int], ffn_width: int | None = None,
                neuron_scores: dict[int, dict[str, torch.Tensor]] | None = None,
                score: str = "l2") -> PatternLM:
    """A new :class:`PatternLM` holding the parent's weights for ``keep_layers``.

    Every kept FFN keeps its ``ffn_width`` most important neurons by ``neuron_scores[i][score]``
    (from :func:`ffn_neuron_importance`); ``ffn_width=None`` keeps the full width. Embedding,
    final norm, LM head, and every kept Mamba/attention layer are copied unchanged. The child is
    built on the parent's device (``"meta"`` works, for shapes only).
    """
    cfg = pruned_config(model.cfg, keep_layers, ffn_width)
    width = cfg.ffn.hidden
    if score not in NEURON_SCORES:
        raise ConfigError(f"score: must be one of {NEURON_SCORES}, got {score!r}")
    narrow = "-" in cfg.pattern and width < model.cfg.ffn.hidden
    if narrow and neuron_scores is None:
        raise ConfigError("neuron_scores: FFN width pruning needs neuron importance "
                          "(see ffn_neuron_importance)")
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("layers.")}
    for new, old in enumerate(keep_layers):
        block = model.layers[old]
        prefix = f"layers.{new}."
        state[prefix + "norm.weight"] = block.norm.weight
        if block.kind == "-" and narrow:
            if old not in neuron_scores:
                raise ValueError(f"neuron_scores: no scores for FFN layer {old}")
            keep = top_neurons(neuron_scores[old][score], width)
            mixer = prune_ffn(block.mixer, keep)
        else:
            mixer = block.mixer.state_dict()
        state.update({prefix + "mixer." + k: v for k, v in mixer.items()})
    child = build_model(cfg, device=model.embed.weight.device)
    child.to(model.embed.weight.dtype)
    child.load_state_dict(state, strict=True, assign=model.embed.weight.is_meta)
    return child
