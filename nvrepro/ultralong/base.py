"""The toy base that is both a language model and a retriever (issue 19, deliverable 1).

UltraLong starts from Llama-3.1-8B-Instruct, a model that predicts text *and* finds a passkey at its
trained length. A toy base must do both before an extension experiment means anything: the
first toy base (``toy_pretrain.yaml``, since removed) never saw plain text as a target, so its text loss was
above a uniform guess, and the "short-context loss" claims compared two models that cannot model
text. ``configs/ultralong/toy_base.yaml`` trains one on interleaved text and retrieval documents
(:class:`~nvrepro.ultralong.data.TextRetrievalDataModule`,
:class:`~nvrepro.ultralong.module.TextRetrievalLMModule`); this module trains it (weights cached in
the paper profile) and reports, at its trained length ``L``:

* the held-out text loss in nats per token and per byte, beside the unigram baseline of the same
  tokenizer on exactly the same targets (:func:`text_loss`, :func:`unigram_baseline`): a model that
  does not beat the unigram has learned nothing about the text beyond token frequencies;
* passkey and RULER-style accuracy over many probes with Wilson intervals (:func:`probe_accuracy`).

Nats per byte make tokenizers comparable: a BPE token covers about three bytes of this corpus, so
nats per token of a byte model and of a BPE model differ by that factor for the same prediction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from nvrepro.core.evaluation import position_losses
from nvrepro.core.lm.model import PatternLM
from nvrepro.core.tooling.claims import Claim, Judgement, all_parts, at_least_threshold, not_applicable
from nvrepro.core.tooling.intervals import paired_gain, seed_average, wilson
from nvrepro.core.tooling.paths import BUILD_DIR, CONFIGS_DIR
from nvrepro.core.tooling.profiles import profile_settings
from nvrepro.core.tooling.timing import num_threads
from nvrepro.core.tooling.validation import ConfigError
from nvrepro.core.tooling.weight_cache import use_cache
from nvrepro.core.training.arms import train_arm
from nvrepro.core.training.yaml_fit import datamodule_from_yaml, read_cli_yaml
from nvrepro.ultralong.evaluate import count_correct, greedy_predictor
from nvrepro.ultralong.packing import pack_with_separator
from nvrepro.ultralong.tasks import make_examples

BASE_YAML = CONFIGS_DIR / "ultralong" / "toy_base.yaml"
CACHE = BUILD_DIR / "ultralong"
# The code that trains the base (its cache key): evaluation and extension edits keep the weights.
TRAINING_CODE = ("nvrepro.core", "nvrepro.ultralong.data", "nvrepro.ultralong.mixture", "nvrepro.ultralong.module",
                 "nvrepro.ultralong.packing", "nvrepro.ultralong.tasks")
# Evaluation probes use seeds offset from training's (as nvrepro.ultralong.extension does).
PROBE_SEED_OFFSET = 1000

# ``curriculum: None`` = the YAML's; smoke runs two steps per stage on a slice of the corpus.
PROFILES = {
    "smoke": dict(curriculum=[dict(steps=2, seq_len=96, batch_size=4, retrieval_share=0.75),
                              dict(steps=2, seq_len=256, batch_size=2, retrieval_share=0.5)],
                  max_documents=200, probes=4, val_blocks=2, tasks=["passkey", "multikey"]),
    "paper": dict(curriculum=None, max_documents=None, probes=50, val_blocks=32,
                  tasks=["passkey", "multikey", "variable_tracking", "common_words"]),
}


def plan(profile: str) -> dict:
    """The settings of ``profile`` (:data:`PROFILES`); a clear error for an unknown one."""
    return profile_settings(PROFILES, profile)


def train_base(profile: str = "smoke", seed: int = 0, cache: bool | None = None, progress: bool = False,
               yaml: str | Path = BASE_YAML) -> tuple[str, PatternLM, list[dict]]:
    """Train the base of ``yaml`` for ``profile``; returns ``(key, model, curve)``.

    ``curve``: the module's windowed means of the train text and retrieval losses
    (:class:`~nvrepro.ultralong.module.TextRetrievalLMModule`). In the paper profile the weights and
    the curve are cached under ``build/ultralong/`` (:func:`~nvrepro.core.tooling.weight_cache.use_cache`).
    """
    p = plan(profile)
    data = {}
    if p["curriculum"] is not None:
        data["curriculum"] = p["curriculum"]
    if p["max_documents"] is not None:
        data["max_documents"] = p["max_documents"]
    stages = p["curriculum"] or read_cli_yaml(yaml)["data"]["init_args"]["curriculum"]
    return train_arm(yaml, seed=seed, cache_dir=CACHE, steps=sum(s["steps"] for s in stages),
                     data_overrides=data, cache=use_cache(profile, cache), progress=progress,
                     code=TRAINING_CODE, record="curve", trainer=yaml_precision(yaml))


def yaml_precision(yaml: str | Path) -> dict:
    """``{"precision": ...}`` when the YAML's ``trainer`` section sets one, else ``{}``: the
    Trainer keyword that :func:`~nvrepro.core.training.arms.train_arm` would otherwise leave at
    Lightning's float32, so that ``nvrepro fit --config`` and the notebooks train the same way."""
    trainer = read_cli_yaml(yaml).get("trainer") or {}
    return {"precision": trainer["precision"]} if "precision" in trainer else {}


def target_bytes(tokenizer, targets: torch.Tensor) -> list[int]:
    """Per row of ``targets`` ``(N, T)``, the UTF-8 bytes of the text its ids stand for (``-100``
    skipped): the row's kept ids decoded as one stream, so a multi-byte character split across ids
    counts once. ``(N,)`` list."""
    return [len(tokenizer.decode(row[row != -100].tolist()).encode("utf-8")) for row in targets]


def held_out_blocks(docs: Sequence[Sequence[int]], seq_len: int, sep_id: int | None, max_blocks: int
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``max_blocks`` blocks of ``docs`` packed with the separator: ``(inputs, targets)``,
    each ``(N, seq_len)`` int64, separator targets set to ``-100`` (not text)."""
    packed = pack_with_separator(docs, seq_len, sep_id)
    if len(packed["input_ids"]) == 0:
        raise ValueError(f"seq_len: the held-out documents have fewer than {seq_len + 1} tokens")
    x = torch.from_numpy(packed["input_ids"][:max_blocks])
    y = torch.from_numpy(packed["labels"][:max_blocks]).clone()
    if sep_id is not None:
        y[y == sep_id] = -100
    return x, y


def _per_byte(nats: Sequence[float], tokens: Sequence[int], num_bytes: Sequence[int]) -> dict:
    return {"nats_per_token": float(sum(nats)) / sum(tokens), "nats_per_byte": float(sum(nats)) / sum(num_bytes),
            "per_block_nats_per_byte": [float(n) / b for n, b in zip(nats, num_bytes)]}


def unigram_baseline(train_docs: Sequence[Sequence[int]], targets: torch.Tensor, vocab_size: int,
                     num_bytes: Sequence[int]) -> dict:
    """Loss of the unigram model of ``train_docs`` on ``targets`` ``(N, T)`` (``-100`` skipped).

    The unigram is fitted with add-1/2 smoothing over the whole vocabulary: ``p(v) = (c_v + 1/2) /
    (N + V/2)``. Returns ``nats_per_token``, ``nats_per_byte`` (over the rows' ``num_bytes``,
    :func:`target_bytes`), ``per_block_nats_per_byte`` ``(N,)`` and ``uniform_nats_per_token`` (``ln V``).
    """
    counts = np.bincount(np.concatenate([np.asarray(d, dtype=np.int64) for d in train_docs]),
                         minlength=vocab_size)[:vocab_size].astype(np.float64)
    logp = np.log((counts + 0.5) / (counts + 0.5).sum())
    rows = [row[row != -100].numpy() for row in targets]
    out = _per_byte([-logp[r].sum() for r in rows], [len(r) for r in rows], num_bytes)
    return out | {"uniform_nats_per_token": math.log(vocab_size)}


@torch.no_grad()
def text_loss(model: PatternLM, inputs: torch.Tensor, targets: torch.Tensor, num_bytes: Sequence[int]) -> dict:
    """``model``'s summed cross-entropy over ``targets`` (``-100`` skipped) divided by the number
    of targets (``nats_per_token``) and by the bytes they stand for (``nats_per_byte``; the rows'
    ``num_bytes`` from :func:`target_bytes`), and per block (``per_block_nats_per_byte``, ``(N,)``).
    ``inputs``, ``targets``: ``(N, T)``; one block at a time, through core's per-position losses
    (:func:`nvrepro.core.evaluation.position_losses`), the skipped targets masked out after."""
    keep = targets != -100
    labels = torch.where(keep, targets, torch.zeros_like(targets))  # any id: these positions are dropped
    per_position = torch.stack([position_losses(model, x[None], y[None]) for x, y in zip(inputs, labels)])
    nats = (per_position.double() * keep).sum(1)
    return _per_byte(nats.tolist(), keep.sum(1).tolist(), num_bytes)


def probe_accuracy(model: PatternLM, task: str, length: int, num_probes: int, seed: int, tokenizer) -> dict:
    """Greedy exact-match accuracy on ``num_probes`` probes of ``task`` at ``length`` tokens, with a
    95% Wilson interval: ``{"correct", "n", "acc", "low", "high"}``."""
    examples = make_examples(task, length, num_probes, seed=PROBE_SEED_OFFSET + seed, tokenizer=tokenizer)
    k = count_correct(examples, greedy_predictor(model))
    est = wilson(k, num_probes)
    return {"correct": k, "n": num_probes, "acc": est.value, "low": est.low, "high": est.high}


def base_report(model: PatternLM, profile: str = "smoke", seed: int = 0, yaml: str | Path = BASE_YAML) -> dict:
    """Text loss and retrieval of a trained base at its length ``L`` (module docstring).

    Returns ``{"L", "text": {nats_per_token, nats_per_byte}, "unigram": {...}, "bytes_per_token",
    "retrieval": {task: probe_accuracy}}``; every probe task of the profile is tried, a task whose
    probe does not fit in ``L`` tokens is reported as ``{"error": message}``.
    """
    p = plan(profile)
    overrides = {"seed": seed} | ({} if p["max_documents"] is None else {"max_documents": p["max_documents"]})
    dm = datamodule_from_yaml(yaml, **overrides)
    tok = dm.tokenizer
    train_docs, val_docs = dm._split_docs()
    x, y = held_out_blocks([tok.encode(d) for d in val_docs], dm.seq_len, dm.sep_id, p["val_blocks"])
    with num_threads(1):
        nbytes = target_bytes(tok, y)
        text = text_loss(model, x, y, nbytes)
        retrieval = {}
        for task in p["tasks"]:
            try:
                retrieval[task] = probe_accuracy(model, task, dm.seq_len, p["probes"], seed, tok)
            except ConfigError as err:  # the probe does not fit in L tokens with this tokenizer
                retrieval[task] = {"error": str(err)}
    return {"L": dm.seq_len, "text": text,
            "unigram": unigram_baseline([tok.encode(d) for d in train_docs], y, tok.vocab_size, nbytes),
            "bytes_per_token": sum(nbytes) / int((y != -100).sum()), "retrieval": retrieval}


# --- the claim (fixed before the first paper run of this base) ---------------------------------

# "Well below the unigram" (issue 19): at most this fraction of the unigram's nats per byte.
TEXT_FACTOR = 0.8
PASSKEY_BAR, RULER_BAR = 0.9, 0.5


def run(profile: str = "smoke", seeds: Sequence[int] = (0,), progress: bool = False) -> dict:
    """Train the base for each of ``seeds`` (cached in the paper profile) and report each
    (:func:`base_report`): ``{"profile", "seeds", "reports": [per seed], "curves": [per seed]}``."""
    reports, curves = [], []
    for seed in seeds:
        _, model, curve = train_base(profile, seed=seed, progress=progress)
        reports.append(base_report(model, profile, seed=seed))
        curves.append(curve)
    return {"profile": profile, "seeds": list(seeds), "reports": reports, "curves": curves}


def pooled_probes(result: dict, task: str):
    """Wilson estimate of ``task``'s probes answered at ``L``, pooled over the seeds (``None`` if the
    task's probes did not fit)."""
    rows = [r["retrieval"][task] for r in result["reports"]]
    if any("error" in row for row in rows):
        return None
    return wilson(sum(r["correct"] for r in rows), sum(r["n"] for r in rows))


def judge_base(result: dict) -> Judgement:
    """Three parts, probes pooled over the training seeds, text blocks averaged over them by index.

    The seed also draws the document split, so block ``i`` of two seeds is different text; the
    average of the per-seed paired differences is still a paired statistic (both models are scored
    on each seed's own blocks), resampled over the block index.

    * ``models text``: ``TEXT_FACTOR * unigram - model`` nats per byte, paired over the held-out
      blocks (:func:`~nvrepro.core.tooling.intervals.paired_gain`): interval above 0 (held), below
      (not held);
    * ``passkey at L``: Wilson interval above :data:`PASSKEY_BAR` (below it: not held);
    * ``a RULER-style task at L``: some task's interval above :data:`RULER_BAR` (held), every task's
      below it (not held), else undecided.
    """
    reports = result["reports"]
    model = seed_average([r["text"]["per_block_nats_per_byte"] for r in reports])
    unigram = seed_average([r["unigram"]["per_block_nats_per_byte"] for r in reports])
    gain = paired_gain(model, unigram, factor=TEXT_FACTOR)
    what = f"{TEXT_FACTOR:g} x unigram - model nats/byte (paired bootstrap over held-out blocks)"
    parts = {"models text": not_applicable(f"{what}: fewer than 2 blocks") if gain is None
             else at_least_threshold(gain, 0.0, what)}
    passkey = pooled_probes(result, "passkey")
    parts["passkey at L"] = at_least_threshold(passkey, PASSKEY_BAR, "passkey at L (Wilson, seeds pooled)")
    ruler = {task: at_least_threshold(est, RULER_BAR, f"{task} at L (Wilson, seeds pooled)")
             for task in reports[0]["retrieval"] if task != "passkey"
             for est in [pooled_probes(result, task)] if est is not None}
    verdicts = [j.held for j in ruler.values()]
    held = True if True in verdicts else False if verdicts and all(v is False for v in verdicts) else None
    parts["a RULER-style task at L"] = Judgement(held, "; ".join(f"{t}: {j.reason}" for t, j in ruler.items())
                                                 or "no RULER-style probe fits in L",
                                                 {"tasks": {t: j.to_dict() for t, j in ruler.items()}})
    return all_parts(parts)


BASE = Claim(
    "toy_base",
    f"The toy base models the corpus (held-out nats per byte at most {TEXT_FACTOR:g}x the unigram's) and retrieves "
    f"at its trained length L (passkey >= {PASSKEY_BAR:g} and at least one RULER-style task >= {RULER_BAR:g}; "
    "probes pooled over training seeds).",
    judge_base)


__all__ = ["run", "judge_base", "BASE", "pooled_probes", "train_base", "base_report", "text_loss", "unigram_baseline", "probe_accuracy", "held_out_blocks",
           "target_bytes", "plan", "PROFILES", "BASE_YAML", "yaml_precision"]
