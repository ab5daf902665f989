"""The MiniPuzzle experiment of ``notebooks/hybrid/05_minipuzzle.ipynb``, at toy scale.

Profiles (:data:`PROFILES`), :func:`run` (plain data; :func:`run_minipuzzle` also hands back the
trained models and held-out batches, which the notebook's exercise needs), the table the notebook
prints (:func:`format_table`), the 56B -> 47B arithmetic (:func:`full_scale_search`) and the claims
of its two figures, :data:`LAYER_IMPORTANCE` and :data:`RECOVERY`. The plots are in
:mod:`nvrepro.hybrid.figures`. The steps:

1. train a toy hybrid *parent* on the local corpus (byte-level World English Bible);
2. measure layer importance and FFN neuron importance on a sample of training batches;
3. search candidates (layers kept per kind x FFN width) under a memory budget, rank the ones
   that fit by next-token accuracy and agreement with the parent on held-out batches (no
   training), and check the importance order: dropping the *most* important layers instead,
   with the same counts, must do worse;
4. distil the best candidate from the parent for a few tokens (forward KL, temperature 1) and
   train the same architecture from scratch with the same token budget (and, in the paper
   profile, with the parent's whole budget); record accuracy and agreement as training goes;
5. time greedy decoding through the caches, parent vs pruned (``nvrepro.hybrid.decode_cost``).

``python -m nvrepro.hybrid.minipuzzle_experiment --save build/minipuzzle_toy`` runs steps 1-3 of
the paper profile and writes ``parent.pt`` and ``student.pt`` for
``nvrepro fit --config configs/hybrid/minipuzzle_distill_toy.yaml``.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Mapping

import lightning as L
import torch

from nvrepro.core.evaluation import argmax_predictions
from nvrepro.core.lm.config import model_config_from_yaml
from nvrepro.core.data import TextDataModule
from nvrepro.core.tooling.claims import Claim, Judgement
from nvrepro.core.tooling.intervals import Estimate, wilson
from nvrepro.core.tooling.claims import all_parts, at_least_estimate, beats, faster
from nvrepro.hybrid.decode_cost import time_decode
from nvrepro.core.training.fitting import quiet_fit
from nvrepro.core.lm.model import PatternLM
from nvrepro.core.training.module import CausalLMModule
from nvrepro.core.tooling.paths import CONFIGS_DIR
from nvrepro.core.tooling.profiles import profile_settings
from nvrepro.core.tooling.timing import num_threads
from nvrepro.core.training.weights import save_lm
from nvrepro.hybrid.distill import DistillationModule
from nvrepro.hybrid.minipuzzle import ffn_neuron_importance, layer_importance, layers_to_keep, prune_model
from nvrepro.hybrid.search import (GIB, MemoryBudget, candidate_grid, format_memory, memory_estimate,
                                   next_token_metrics, placeholder_importance, search)

CONFIGS = CONFIGS_DIR / "hybrid"

# The paper's exact memory budget is not in our facts sheet. ASSUMED here (say so wherever it
# is printed): one 32 GiB GPU, FP4 weights, FP8 KV cache (FP32 SSM state), batch 1, and a
# context of 2^19 tokens -- between what the 56B and the 47B can hold in 32 GiB.
PAPER_BUDGET = MemoryBudget(limit_bytes=32 * GIB, weight_dtype="fp4", cache_dtype="fp8", context=2**19, batch=1)
FULL_SCALE_GRID = {
    "smoke": ({"M": [44], "*": [5], "-": [49]}, [30720]),
    "paper": ({"M": [54, 44], "*": [10, 5], "-": [54, 49]}, [32768, 30720]),
}

_TOY = dict(d_model=64, vocab_size=260, max_seq_len=1024,
            mamba=dict(n_heads=4, head_dim=32, d_state=16, n_groups=1, chunk_size=64),
            attention=dict(n_heads=4, n_kv_heads=2, head_dim=16), ffn=dict(hidden=256, activation="relu2"))

PROFILES: dict[str, dict] = {
    "smoke": dict(
        model={**_TOY, "pattern": "M-M*-M-", "d_model": 32, "ffn": dict(hidden=64)},
        data=dict(seq_len=64, batch_size=8, max_documents=120),
        parent_steps=12, distill_steps=6, scratch_long=False, lr=3e-3, warmup=4, eval_every=3,
        importance_batches=2, eval_batches=2,
        keep_grid={"M": [3, 2], "*": [1], "-": [3, 2]}, widths=[64, 48],
        budget=dict(fraction=0.85, context=512, batch=1),
        decode=dict(context=32, steps=4, repeats=1)),
    # Two 11-layer units of the Nemotron-H-8B pattern, at a width a CPU trains in minutes.
    "paper": dict(
        model={**_TOY, "pattern": "M-M-M-M*-M-M-M-M-M*-M-"},
        data=dict(seq_len=128, batch_size=8, max_documents=None),
        parent_steps=240, distill_steps=60, scratch_long=True, lr=3e-3, warmup=20, eval_every=10,
        importance_batches=8, eval_batches=8,
        keep_grid={"M": [10, 8, 6], "*": [2, 1], "-": [10, 8, 6]}, widths=[256, 192],
        budget=dict(fraction=0.6, context=2048, batch=1),
        decode=dict(context=256, steps=32, repeats=5)),
}


def _profile(profile: str) -> dict:
    return profile_settings(PROFILES, profile)


def _datamodule(p: dict, seed: int) -> TextDataModule:
    dm = TextDataModule(corpus="web_bible", tokenizer="byte", seed=seed, **p["data"])
    dm.setup("fit")
    return dm


def _take(loader, n: int) -> list[dict]:
    out = []
    for batch in loader:
        out.append(batch)
        if len(out) == n:
            break
    return out


class _Probe(L.Callback):
    """Every ``every`` optimizer steps (and at the end), evaluate the student on fixed batches."""

    def __init__(self, batches, reference, every: int, tokens_per_step: int):
        self.batches, self.reference, self.every, self.tpt = batches, reference, every, tokens_per_step
        self.curve: list[dict] = []

    def _record(self, trainer, module) -> None:
        step = trainer.global_step
        if self.curve and self.curve[-1]["step"] == step:
            return
        self.curve.append({"step": step, "tokens": step * self.tpt,
                           **next_token_metrics(module.model, self.batches, self.reference)})

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if trainer.global_step % self.every == 0:
            self._record(trainer, module)

    def on_train_end(self, trainer, module) -> None:
        self._record(trainer, module)


def _fit(module: L.LightningModule, dm: TextDataModule, steps: int, progress: bool,
         probe: _Probe | None = None) -> float:
    """Train ``module`` for ``steps`` optimizer steps on ``dm``'s training data; returns seconds."""
    return quiet_fit(module, train_dataloaders=dm.train_dataloader(), progress=progress,
                     callbacks=[probe] if probe else [], accelerator="cpu", devices=1, max_steps=steps,
                     limit_val_batches=0, num_sanity_val_steps=0, gradient_clip_val=1.0).seconds


def train_parent(p: dict, dm: TextDataModule, seed: int, progress: bool = True) -> tuple[PatternLM, float]:
    """The toy parent, trained ``parent_steps`` steps from ``seed``; returns (model, seconds)."""
    L.seed_everything(seed, verbose=False)
    module = CausalLMModule(model=p["model"], optim=dict(lr=p["lr"], warmup_steps=p["warmup"]))
    seconds = _fit(module, dm, p["parent_steps"], progress)
    return module.model.eval(), seconds


def prune_stage(p: dict, parent: PatternLM, dm: TextDataModule, progress: bool = True) -> dict:
    """Importance, the budgeted candidate search, the importance sanity check, the pruned student."""
    calib = _take(dm.train_dataloader(), p["importance_batches"])
    held_out = _take(dm.val_dataloader(), p["eval_batches"])
    importance = layer_importance(parent, calib, progress=progress)
    neurons = ffn_neuron_importance(parent, calib, progress=progress)
    parent_mem = memory_estimate(parent.cfg, MemoryBudget(1, context=p["budget"]["context"],
                                                          batch=p["budget"]["batch"]))
    budget = MemoryBudget(limit_bytes=int(p["budget"]["fraction"] * parent_mem.total_bytes),
                          context=p["budget"]["context"], batch=p["budget"]["batch"])
    ranked, grid = search(parent, importance, neurons, p["keep_grid"], p["widths"], budget, held_out,
                          progress=progress)
    if not ranked:
        raise ValueError(f"budget: no candidate of the grid fits {budget.describe()}")
    best = ranked[0]
    student = prune_model(parent, best.keep_layers, best.ffn_width, neurons)
    # Sanity check of the importance order: same counts and width, most important layers dropped.
    reverse = layers_to_keep(parent.cfg.pattern, [-float(v) for v in importance], best.keep)
    reference = argmax_predictions(parent, held_out)
    anti = next_token_metrics(prune_model(parent, reverse, best.ffn_width, neurons), held_out, reference)
    return dict(importance=importance.tolist(), neurons=neurons, budget=budget,
                parent_memory=parent_mem.total_bytes, ranked=ranked, grid=grid, best=best,
                student=student, reverse_layers=reverse, reverse_metrics=anti,
                held_out=held_out, reference=reference)


def recovery_stage(p: dict, parent: PatternLM, student: PatternLM, dm: TextDataModule, held_out, reference,
                   seed: int, progress: bool = True) -> dict:
    """Distil the pruned student, train its architecture from scratch, and time decoding."""
    tokens_per_step = p["data"]["batch_size"] * p["data"]["seq_len"]
    optim = dict(lr=p["lr"], warmup_steps=p["warmup"])
    arms: dict[str, dict] = {}

    L.seed_everything(seed, verbose=False)
    kd = DistillationModule.from_models(student, copy.deepcopy(parent), optim=optim)
    probe = _Probe(held_out, reference, p["eval_every"], tokens_per_step)
    probe.curve.append({"step": 0, "tokens": 0, **next_token_metrics(kd.model, held_out, reference)})
    seconds = _fit(kd, dm, p["distill_steps"], progress, probe)
    arms["distilled"] = dict(curve=probe.curve, seconds=seconds, model=kd.model)

    budgets = {"scratch": p["distill_steps"]}
    if p["scratch_long"]:
        budgets["scratch_parent_budget"] = p["parent_steps"]
    for name, steps in budgets.items():
        L.seed_everything(seed, verbose=False)
        module = CausalLMModule(model=student.cfg.to_dict(), optim=optim)
        probe = _Probe(held_out, reference, p["eval_every"], tokens_per_step)
        probe.curve.append({"step": 0, "tokens": 0, **next_token_metrics(module.model, held_out, reference)})
        seconds = _fit(module, dm, steps, progress, probe)
        arms[name] = dict(curve=probe.curve, seconds=seconds, model=module.model)

    d = p["decode"]
    timing = time_decode({"parent": parent, "pruned": student}, context=d["context"], steps=d["steps"],
                         repeats=d["repeats"], seed=seed)
    return dict(arms=arms, decode={k: v.tokens_per_second for k, v in timing.items()},
                decode_seconds_per_token={k: list(v.step_times) for k, v in timing.items()},
                decode_config=dict(d, threads=torch.get_num_threads(), batch=1),
                tokens_per_step=tokens_per_step)


def run_minipuzzle(profile: str = "smoke", seed: int = 0, progress: bool = True, threads: int | None = 1) -> dict:
    """Steps 1-5; returns plain data for the table, the figures and the claims, plus the trained
    ``models`` and the held-out ``batches`` (see :func:`sidecar_metrics`).

    Everything runs with ``threads`` torch threads (default 1: on a shared CPU, a 2-thread pool
    that loses its second core to another process can be tens of times slower than one thread).
    """
    with num_threads(threads):
        return _run(_profile(profile), profile, seed, progress)


def _run(p: dict, profile: str, seed: int, progress: bool) -> dict:
    dm = _datamodule(p, seed)
    parent, parent_seconds = train_parent(p, dm, seed, progress)
    pr = prune_stage(p, parent, dm, progress)
    rec = recovery_stage(p, parent, pr["student"], dm, pr["held_out"], pr["reference"], seed, progress)
    tps = rec["tokens_per_step"]
    parent_metrics = next_token_metrics(parent, pr["held_out"], pr["reference"])
    pruned_metrics = rec["arms"]["distilled"]["curve"][0]
    rows = [dict(model="parent", pattern=parent.cfg.pattern, ffn_width=parent.cfg.ffn.hidden,
                 train_tokens=p["parent_steps"] * tps, **_metrics(parent_metrics),
                 decode_tok_s=rec["decode"]["parent"]),
            dict(model="pruned (no training)", pattern=pr["best"].pattern, ffn_width=pr["best"].ffn_width,
                 train_tokens=0, **_metrics(pruned_metrics), decode_tok_s=rec["decode"]["pruned"])]
    labels = {"distilled": "pruned + distilled", "scratch": "scratch, same tokens",
              "scratch_parent_budget": "scratch, parent's tokens"}
    for name, arm in rec["arms"].items():
        rows.append(dict(model=labels[name], pattern=pr["best"].pattern, ffn_width=pr["best"].ffn_width,
                         train_tokens=arm["curve"][-1]["tokens"], **_metrics(arm["curve"][-1]),
                         decode_tok_s=rec["decode"]["pruned"]))
    distilled_acc = rows[2]["acc"]
    longest = rec["arms"].get("scratch_parent_budget", rec["arms"]["scratch"])["curve"]
    # Tokens the from-scratch run needed to first reach the distilled accuracy (None: never did).
    to_match = next((c["tokens"] for c in longest if c["acc"] >= distilled_acc), None)
    return dict(
        profile=profile, seed=seed, config=p, parent_seconds=parent_seconds, scratch_tokens_to_match=to_match,
        importance=pr["importance"], pattern=parent.cfg.pattern, kept_layers=pr["best"].keep_layers,
        reverse_layers=pr["reverse_layers"], reverse_metrics=pr["reverse_metrics"],
        budget=dict(limit_bytes=pr["budget"].limit_bytes, parent_bytes=pr["parent_memory"],
                    description=pr["budget"].describe()),
        candidates=[c.row() for c in pr["ranked"]], grid=[c.row() for c in pr["grid"]],
        curves={k: v["curve"] for k, v in rec["arms"].items()},
        arm_seconds={k: v["seconds"] for k, v in rec["arms"].items()},
        decode=rec["decode"], decode_seconds_per_token=rec["decode_seconds_per_token"],
        decode_config=rec["decode_config"], table=rows, batches=pr["held_out"],
        models=dict(parent=parent, pruned=pr["student"], **{k: v["model"] for k, v in rec["arms"].items()}))


def sidecar_metrics(result: dict) -> dict:
    """``result`` without the models and batches: the plain data a figure's JSON sidecar keeps."""
    return {k: v for k, v in result.items() if k not in ("models", "batches")}


def run(profile: str = "smoke", seed: int = 0, **kwargs) -> dict:
    """The notebook's experiment as plain data: :func:`run_minipuzzle` without the trained models
    and held-out batches (``kwargs`` go to it)."""
    return sidecar_metrics(run_minipuzzle(profile, seed, **kwargs))


def _metrics(m: dict) -> dict:
    return {key: m[key] for key in ("acc", "agreement", "loss", "correct", "agree", "count")}


def full_scale_search(profile: str = "smoke", budget: MemoryBudget = PAPER_BUDGET) -> dict:
    """The same candidate code on the 56B config, on the meta device: shapes and memory only.

    Importance cannot be measured without weights, so layers are chosen by
    :func:`~nvrepro.hybrid.search.placeholder_importance` (only the counts matter for size).
    Returns the grid (rows), the memory arithmetic as text (56B, the 47B YAML, and the
    47B-shaped candidate), and whether that candidate has the 47B YAML's layer counts, FFN
    width and parameter count.
    """
    c56 = model_config_from_yaml(CONFIGS / "nemotron_h_56b.yaml")
    c47 = model_config_from_yaml(CONFIGS / "nemotron_h_47b.yaml")
    keep_grid, widths = FULL_SCALE_GRID[profile]
    grid = candidate_grid(c56, placeholder_importance(c56), keep_grid, widths, budget)
    target = next(c for c in grid if c.keep == {"M": 44, "*": 5, "-": 49} and c.ffn_width == 30720)
    matches = ([target.config.count(k) for k in "M*-"] == [c47.count(k) for k in "M*-"]
               and target.ffn_width == c47.ffn.hidden
               and target.memory.params == memory_estimate(c47, budget).params)
    text = format_memory({"56B": c56, "47B (YAML)": c47, "47B candidate": target.config}, budget)
    return dict(rows=[c.row() for c in grid], text=text, matches_47b=matches, target=target.row(),
                budget=budget.describe())


def format_table(rows: list[dict]) -> str:
    """The candidate table as aligned text."""
    head = f"{'model':<26}{'pattern':<24}{'FFN':>5}{'train tokens':>14}{'acc':>8}{'agree':>8}{'loss':>7}{'decode tok/s':>14}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['model']:<26}{r['pattern']:<24}{r['ffn_width']:>5}{r['train_tokens']:>14,}"
                     f"{r['acc']:>8.3f}{r['agreement']:>8.3f}{r['loss']:>7.3f}{r['decode_tok_s']:>14.0f}")
    return "\n".join(lines)


# --- the claims of the minipuzzle_layer_importance and minipuzzle_recovery figures ---------------
RECOVERED_SHARE = 0.9  # "recovers most of the parent's accuracy": at least this share of it


def agreement_estimate(metrics: Mapping) -> Estimate:
    """Agreement with the parent's argmax over the held-out positions, with Wilson's interval."""
    return wilson(metrics["agree"], metrics["count"])


def accuracy_estimate(metrics: Mapping) -> Estimate:
    """Next-token accuracy over the held-out positions, with Wilson's interval."""
    return wilson(metrics["correct"], metrics["count"])


def judge_layer_importance(metrics: Mapping) -> Judgement:
    """The ``minipuzzle_layer_importance`` claim, from :func:`run`'s result: the chosen
    candidate (``candidates[0]``: least important layers dropped) agrees with the parent more
    than the same counts with the most important layers dropped (``reverse_metrics``), by
    :func:`~nvrepro.core.tooling.claims.beats` on Wilson intervals over the held-out positions."""
    return beats(agreement_estimate(metrics["candidates"][0]), agreement_estimate(metrics["reverse_metrics"]),
                 "agreement with the parent, least vs most important layers dropped")


def judge_recovery(metrics: Mapping) -> Judgement:
    """The ``minipuzzle_recovery`` claim, from :func:`run`'s result (``table``,
    ``decode_seconds_per_token``), accuracies with Wilson intervals over the held-out positions:

    * distilled accuracy at least :data:`RECOVERED_SHARE` of the parent's
      (:func:`~nvrepro.core.tooling.claims.at_least_estimate` against the parent's estimate);
    * distilled beats the same architecture from scratch on the same tokens and, where that run
      exists (paper profile), on the parent's whole budget (:func:`~nvrepro.core.tooling.claims.beats`);
    * the pruned model decodes faster than the parent (:func:`~nvrepro.core.tooling.claims.faster`
      on the timed decode blocks; one block per model, as in the smoke profile, stays undecided).
    """
    rows = {r["model"]: accuracy_estimate(r) for r in metrics["table"]}
    distilled, parent = rows["pruned + distilled"], rows["parent"]
    parts = {
        f"distilled recovers >= {RECOVERED_SHARE:.0%} of the parent's accuracy": at_least_estimate(
            distilled, parent, "distilled vs share of the parent", margin=(1 - RECOVERED_SHARE) * parent.value),
        "distilled beats scratch on the same tokens": beats(distilled, rows["scratch, same tokens"],
                                                            "distilled vs scratch"),
    }
    if "scratch, parent's tokens" in rows:
        parts["distilled beats scratch on the parent's tokens"] = beats(
            distilled, rows["scratch, parent's tokens"], "distilled vs scratch on the parent's budget")
    timed = metrics["decode_seconds_per_token"]
    parts["pruned decodes faster"] = faster(timed["pruned"], timed["parent"], "seconds per decoded token")
    return all_parts(parts)


LAYER_IMPORTANCE = Claim(
    "minipuzzle_layer_importance",
    "Dropping the layers ranked least important (MSE of the final hidden state when a layer is removed) keeps a "
    "pruned model closer to the parent than dropping the ones ranked most important, at the same layer counts and "
    "FFN width.",
    judge_layer_importance,
)
RECOVERY = Claim(
    "minipuzzle_recovery",
    f"Distilling the pruned candidate from its parent recovers most (>= {RECOVERED_SHARE:.0%}) of the parent's "
    "next-token accuracy with far fewer tokens than training the same architecture from scratch (it beats scratch "
    "training on the same tokens and on the parent's whole budget), and the pruned model decodes faster.",
    judge_recovery,
)


def prepare(out: str | Path, profile: str = "paper", seed: int = 0, progress: bool = True,
            threads: int | None = 1) -> dict:
    """Train the parent and prune it (steps 1-3); write ``parent.pt`` and ``student.pt`` under ``out``."""
    p = _profile(profile)
    with num_threads(threads):
        dm = _datamodule(p, seed)
        parent, _ = train_parent(p, dm, seed, progress)
        pr = prune_stage(p, parent, dm, progress)
    out = Path(out)
    paths = {"teacher": save_lm(parent, out / "parent.pt"), "student_init": save_lm(pr["student"], out / "student.pt")}
    return dict(paths=paths, pattern=pr["best"].pattern, ffn_width=pr["best"].ffn_width)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nvrepro.hybrid.minipuzzle_experiment",
                                     description="Train and prune the toy parent for the distillation YAML.")
    parser.add_argument("--save", required=True, help="folder for parent.pt and student.pt")
    parser.add_argument("--profile", default="paper", choices=sorted(PROFILES))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    done = prepare(args.save, args.profile, args.seed)
    for key, path in done["paths"].items():
        print(f"model.init_args.{key}: {path}")
    print(f"student pattern: {done['pattern']!r}, ffn.hidden {done['ffn_width']} "
          "(model.init_args.model in the YAML must match)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
