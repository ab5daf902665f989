"""Notebook 02 (``notebooks/retro/02_retro_study.ipynb``): the RETRO study at toy scale.

"Shall we pretrain autoregressive language models with retrieval?" (arXiv:2304.06762) compares
RETRO with a GPT of the same size trained on the same tokens. Its findings that a toy can test:

* **perplexity**: RETRO's is lower than GPT's, at every model size (:data:`PERPLEXITY`);
* **where the gain comes from**: most on evaluation text whose neighbours contain near-duplicate
  passages (Borgeaud et al. 2022, Sec. 4.4; the Bible has many parallel passages) (:data:`OVERLAP`);
* **degeneration**: RETRO's generations repeat themselves less (:data:`REPETITION`).

The arms: ``configs/retro/toy_gpt.yaml`` and ``configs/retro/toy_retro.yaml`` (the same decoder,
plus chunked cross-attention at layer 6 and the neighbour encoder), trained for the same steps on
the same windows of the database documents in the same order (:class:`~nvrepro.retro.data.
RetroDataModule`, ``retrieval`` off / on), at each width of the profile's sweep. Evaluation: every
held-out chapter (never in the database), its windows' neighbours retrieved by chunk text; the
unit of every interval is a held-out document (losses) or a prompt (repetition).

The experiment's shape, as in the other tracks: :data:`PROFILES`, :func:`run` (plain data),
:func:`summary_text`, the claims, and plots in :mod:`nvrepro.retro.figures`.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
import yaml

from nvrepro.core.evaluation.supervised import supervised_scores
from nvrepro.core.tooling.claims import Claim, Judgement, all_parts, at_least_threshold, finite, not_applicable
from nvrepro.core.tooling.intervals import bootstrap_difference, bootstrap_mean, paired_gain
from nvrepro.core.tooling.paths import BUILD_DIR, CONFIGS_DIR
from nvrepro.core.tooling.profiles import profile_settings
from nvrepro.core.tooling.report import table_text
from nvrepro.core.tooling.weight_cache import use_cache
from nvrepro.core.training.arms import train_arm
from nvrepro.retro.data import DocumentWindows, database_pad_id, database_tokenizer, heldout_windows
from nvrepro.retro.database_experiment import database_yaml, open_database
from nvrepro.retro.generation import generate_with_retrieval, repetition_rate
from nvrepro.retro.overlap import OverlapConfig, document_overlap

CONFIGS = CONFIGS_DIR / "retro"
ARM_YAMLS = {"gpt": CONFIGS / "toy_gpt.yaml", "retro": CONFIGS / "toy_retro.yaml"}
CACHE = BUILD_DIR / "retro"
# The code whose changes invalidate cached weights (nvrepro.core.tooling.weight_cache.code_version).
TRAINING_CODE = ("nvrepro.core", "nvrepro.retro")
HEAD_DIM = 32  # the sweep keeps the YAML's head width and scales the head count with d_model
REPETITION_NGRAM = 3  # word trigrams (decided before the first run)
THREADS = 2  # torch threads while training an arm (the laptop-CPU budget of the paper profile)

# ``widths``: the size sweep (d_model); ``main_width``: the arm of the overlap and repetition
# claims; ``steps``/``batch_size``: None = the YAMLs'; the database is notebook 01's
# (nvrepro.retro.database_experiment.database_yaml); generation: ``prompts`` held-out chapters,
# the first ``prompt_tokens`` tokens of each continued greedily by ``new_tokens``.
PROFILES = {
    "smoke": dict(widths=[32], main_width=32, steps=4, batch_size=4, prompts=2, prompt_tokens=64, new_tokens=24),
    "paper": dict(widths=[32, 64, 96], main_width=64, steps=None, batch_size=None, prompts=32, prompt_tokens=128,
                  new_tokens=192),
}


def plan(profile: str) -> dict:
    """The settings of ``profile`` (:data:`PROFILES`); a clear error for an unknown one."""
    return profile_settings(PROFILES, profile)


def width_overrides(d_model: int) -> dict:
    """Model overrides of the sweep: ``d_model``, ``d_model / HEAD_DIM`` heads, a 4x FFN."""
    if d_model % HEAD_DIM:
        raise ValueError(f"d_model: the sweep needs a multiple of {HEAD_DIM}, got {d_model}")
    heads = d_model // HEAD_DIM
    return {"d_model": d_model, "attention": {"n_heads": heads, "n_kv_heads": heads, "head_dim": HEAD_DIM},
            "ffn": {"hidden": 4 * d_model}}


def train(arm: str, d_model: int, profile: str, seed: int, cache: bool, progress: bool):
    """The trained model of ``arm`` (``"gpt"`` or ``"retro"``) at width ``d_model`` (in eval mode)."""
    return train_keyed(arm, d_model, profile, seed, cache, progress)[1]


def train_keyed(arm: str, d_model: int, profile: str, seed: int, cache: bool, progress: bool,
                steps: int | None = None, init: tuple[str, dict] | None = None):
    """``(key, model)`` of ``arm`` at width ``d_model`` trained on the study's data; ``steps`` and
    ``init`` (starting weights) as in :func:`~nvrepro.core.training.arms.train_arm` (notebook 03
    continues the study's arms from here)."""
    p = plan(profile)
    data = {"database": str(database_yaml(profile))}
    if p["batch_size"]:
        data["batch_size"] = p["batch_size"]
    key, model = train_arm(ARM_YAMLS[arm], seed=seed, cache_dir=CACHE, steps=steps or p["steps"], init=init,
                           model_overrides=width_overrides(d_model), data_overrides=data, cache=cache,
                           progress=progress, code=TRAINING_CODE, threads=THREADS)
    return key, model.eval()


def document_losses(model, docs: list[DocumentWindows], db, pad_id: int, retrieval: bool,
                    batch_size: int = 16) -> dict[str, list]:
    """Per held-out document: summed next-token loss (``nll``, nats) and supervised tokens
    (``count``) of ``model`` over the document's windows, with the windows' neighbours when
    ``retrieval``."""
    nll, count = [], []
    for doc in docs:
        def batches():
            for start in range(0, len(doc.input_ids), batch_size):
                part = slice(start, start + batch_size)
                batch = {"input_ids": torch.from_numpy(doc.input_ids[part]),
                         "labels": torch.from_numpy(doc.labels[part])}
                if retrieval:
                    batch["neighbours"] = torch.from_numpy(db.neighbour_tokens(doc.rows[part], pad_id))
                yield batch

        inputs = (lambda b: {"input_ids": b["input_ids"], "neighbours": b["neighbours"]}) if retrieval else \
            (lambda b: {"input_ids": b["input_ids"]})
        scores = supervised_scores(model, batches(), inputs=inputs)
        nll.append(scores.nll_sum)
        count.append(scores.count)
    return {"nll": nll, "count": count}


def continuations(model, db, tokenizer, prompts: list[np.ndarray], new_tokens: int, retrieval: bool) -> list[str]:
    """Greedy continuations (text) of ``prompts``; with ``retrieval``, each completed chunk
    retrieves its neighbours from ``db`` by text, as RETRO does at inference."""
    k, pad = model.cfg.num_neighbours if retrieval else 0, tokenizer.pad_id

    def retrieve(chunk: np.ndarray) -> np.ndarray:
        rows, _ = db.retrieve([tokenizer.decode(chunk)], k)
        return db.neighbour_tokens(rows[0], pad)

    out = []
    for prompt in prompts:
        new = generate_with_retrieval(model, prompt.tolist(), new_tokens, retrieve=retrieve if retrieval else None,
                                      chunk_len=db.config.chunk_len, eos_id=tokenizer.eos_id)
        out.append(tokenizer.decode(new))
    return out


def generation_prompts(held, prompts: int, prompt_tokens: int, seed: int) -> tuple[list[int], list[np.ndarray]]:
    """``prompts`` held-out documents long enough for a prompt, drawn with ``seed``, and the first
    ``prompt_tokens`` tokens of each."""
    eligible = [i for i, t in enumerate(held.tokens) if len(t) >= 2 * prompt_tokens]
    if not eligible:
        raise ValueError(f"prompt_tokens: no held-out document has {2 * prompt_tokens} tokens")
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(eligible, min(prompts, len(eligible)), replace=False).tolist())
    return [held.documents[i] for i in chosen], [held.tokens[i][:prompt_tokens] for i in chosen]


def run(profile: str = "smoke", seed: int = 0, cache: bool | None = None, progress: bool = True) -> dict:
    """Train GPT and Retro at every width, evaluate them on the held-out documents, generate.

    Returns ``{"widths": {str(d): {"gpt": {"nll", "count"}, "retro": {...}}}, "documents",
    "overlap" (per held-out document), "overlap_threshold", "generation": {"documents", "gpt",
    "retro" (texts), "repetition": {"gpt", "retro"} (per prompt)}, "database", "plan", ...}``.
    """
    from nvrepro.retro.data import heldout_chunks

    p = plan(profile)
    cache = use_cache(profile, cache)
    db = open_database(profile, progress)
    tokenizer, pad = database_tokenizer(db), database_pad_id(db)
    seq_chunks = int(yaml.safe_load(ARM_YAMLS["retro"].read_text())["data"]["init_args"]["seq_chunks"])
    held = heldout_chunks(db)
    docs = heldout_windows(db, seq_chunks, tokenizer=tokenizer)
    overlap_cfg = OverlapConfig()
    overlaps = {o.document: o.overlap for o in document_overlap(db, held, overlap_cfg, pad)}
    result: dict[str, Any] = {"widths": {}, "documents": [d.document for d in docs],
                              "overlap": [overlaps[d.document] for d in docs],
                              "overlap_threshold": overlap_cfg.threshold, "overlap_ngram": overlap_cfg.ngram,
                              "main_width": p["main_width"], "plan": p, "profile": profile, "seed": seed,
                              "database": {"chunks": len(db.chunks), "documents": db.report["documents"],
                                           "heldout_documents": len(db.heldout_documents),
                                           "chunk_len": db.config.chunk_len, "k": int(db.neighbours.shape[1])}}
    models = {}
    for width in p["widths"]:
        arms = {}
        for arm in ("gpt", "retro"):
            model = train(arm, width, profile, seed, cache, progress)
            arms[arm] = document_losses(model, docs, db, pad, retrieval=arm == "retro")
            if width == p["main_width"]:
                models[arm] = model
        result["widths"][str(width)] = arms
    prompt_docs, prompts = generation_prompts(held, p["prompts"], p["prompt_tokens"], seed)
    generation = {"documents": prompt_docs, "prompt_tokens": p["prompt_tokens"], "new_tokens": p["new_tokens"]}
    for arm, model in models.items():
        generation[arm] = continuations(model, db, tokenizer, prompts, p["new_tokens"], retrieval=arm == "retro")
    generation["repetition"] = {arm: [repetition_rate(t, REPETITION_NGRAM) for t in generation[arm]]
                                for arm in models}
    result["generation"] = generation
    result["parameters"] = {arm: sum(x.numel() for x in m.parameters()) for arm, m in models.items()}
    return result


# --- what the figures claim ------------------------------------------------------------------

def per_document_loss(arm: Mapping[str, list]) -> list[float]:
    """Mean loss per supervised token (nats per byte) of each document."""
    return [n / c for n, c in zip(arm["nll"], arm["count"])]


def gains(metrics: Mapping[str, Any], width: int | str) -> list[float]:
    """Per held-out document: GPT's loss minus Retro's at ``width`` (positive: Retro better)."""
    arms = metrics["widths"][str(width)]
    return [g - r for g, r in zip(per_document_loss(arms["gpt"]), per_document_loss(arms["retro"]))]


def judge_perplexity(metrics: Mapping[str, Any]) -> Judgement:
    parts = {}
    for width, arms in metrics["widths"].items():
        gain = paired_gain(per_document_loss(arms["retro"]), per_document_loss(arms["gpt"]))
        parts[f"d_model {width}"] = (not_applicable("fewer than two held-out documents") if gain is None else
                                     at_least_threshold(gain, 0.0, "GPT loss - Retro loss (nats/byte)"))
    return all_parts(parts)


def overlap_groups(metrics: Mapping[str, Any]) -> tuple[list[int], list[int]]:
    """Positions (in ``metrics["documents"]``) of held-out documents with and without near-duplicates."""
    threshold = metrics["overlap_threshold"]
    with_dup = [i for i, o in enumerate(metrics["overlap"]) if finite(o) and o >= threshold]
    return with_dup, [i for i in range(len(metrics["overlap"])) if i not in set(with_dup)]


def judge_overlap(metrics: Mapping[str, Any]) -> Judgement:
    g = gains(metrics, metrics["main_width"])
    with_dup, without = overlap_groups(metrics)
    if len(with_dup) < 2 or len(without) < 2:
        return not_applicable(f"needs two documents in each group, got {len(with_dup)} with near-duplicates "
                              f"and {len(without)} without")
    dup_gain = bootstrap_mean([g[i] for i in with_dup])
    difference = bootstrap_difference([g[i] for i in with_dup], [g[i] for i in without])
    return all_parts({"gain with near-duplicates": at_least_threshold(dup_gain, 0.0, "GPT loss - Retro loss"),
                      "larger than without": at_least_threshold(difference, 0.0, "gain with - gain without")})


def judge_repetition(metrics: Mapping[str, Any]) -> Judgement:
    rates = metrics["generation"]["repetition"]
    pairs = [(r, g) for r, g in zip(rates["retro"], rates["gpt"]) if finite(r) and finite(g)]
    gain = paired_gain([r for r, _ in pairs], [g for _, g in pairs])
    if gain is None:
        return not_applicable("fewer than two prompts with a repetition rate")
    return at_least_threshold(gain, 0.0, f"GPT - Retro repetition rate (word {REPETITION_NGRAM}-grams)")


PERPLEXITY = Claim(
    "retro_perplexity",
    "At every model size, Retro has a lower loss on held-out documents than the GPT of the same "
    "decoder trained on the same tokens (the study: RETRO's perplexity is lower than GPT's at every "
    "size); per size, a paired bootstrap over held-out documents of GPT's loss minus Retro's lies above 0.",
    judge_perplexity)
OVERLAP = Claim(
    "retro_overlap",
    "Retro's gain over GPT comes most from held-out documents whose neighbours contain near-duplicate "
    "passages (Borgeaud et al., Sec. 4.4): on those documents the gain is above 0, and it is larger "
    "than on the other documents (bootstrap intervals over documents, at the main width).",
    judge_overlap)
REPETITION = Claim(
    "retro_repetition",
    "Retro's greedy continuations of held-out prompts repeat themselves less than GPT's (the study: "
    "RETRO's generations degenerate less into repetition); a paired bootstrap over prompts of GPT's "
    "repetition rate minus Retro's lies above 0.",
    judge_repetition)


def summary(metrics: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Per width: mean held-out loss (nats/byte) of each arm and the mean gain, plus the groups."""
    rows = {}
    for width, arms in metrics["widths"].items():
        gpt, retro = per_document_loss(arms["gpt"]), per_document_loss(arms["retro"])
        rows[f"d_model {width}"] = {"gpt": float(np.mean(gpt)), "retro": float(np.mean(retro)),
                                    "gain": float(np.mean(gpt) - np.mean(retro)), "docs": len(gpt)}
    g = gains(metrics, metrics["main_width"])
    for name, group in zip(("with near-duplicates", "without"), overlap_groups(metrics)):
        if group:
            rows[f"  {name}"] = {"gpt": float(np.mean([per_document_loss(metrics["widths"][str(metrics["main_width"])]["gpt"])[i] for i in group])),
                                 "retro": float(np.mean([per_document_loss(metrics["widths"][str(metrics["main_width"])]["retro"])[i] for i in group])),
                                 "gain": float(np.mean([g[i] for i in group])), "docs": len(group)}
    return rows


def summary_text(metrics: Mapping[str, Any]) -> str:
    """The loss table (nats per byte; lower is better) and the repetition rates."""
    table = table_text(summary(metrics), [("GPT", "gpt", ".3f"), ("Retro", "retro", ".3f"),
                                          ("gain", "gain", "+.3f"), ("docs", "docs", "d")],
                       first="held-out loss", labels={}, first_width=26)
    rep = metrics["generation"]["repetition"]
    lines = [table, f"repetition rate (word {REPETITION_NGRAM}-grams, {len(rep['gpt'])} prompts): "
             f"GPT {np.nanmean(rep['gpt']):.3f}, Retro {np.nanmean(rep['retro']):.3f}"]
    return "\n".join(lines)
