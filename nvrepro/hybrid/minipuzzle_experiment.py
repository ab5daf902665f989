"""The MiniPuzzle experiment of ``notebooks/hybrid/05_minipuzzle.ipynb``, at toy scale.

Profiles (:data:`PROFILES`), :func:`run` (plain data; :func:`run_minipuzzle` also hands back the
trained models and held-out batches, which the notebook's exercise needs), the table the notebook
prints (:func:`format_table`), the 56B -> 47B arithmetic (:func:`full_scale_search`) and the claims
of its two figures, :data:`LAYER_IMPORTANCE` and :data:`RECOVERY`. The plots are in
:mod:`nvrepro.hybrid.figures`. The steps:

1. train a toy hybrid *parent* on the local corpus (byte-level World English Bible);
2. measure layer importance and FFN neuron importance on a sample of training batches;
3. search candidates (layers kept per kind x FFN width) under a memory budget: prune every
   candidate of the grid (no training) and rank the ones that fit by next-token accuracy and
   agreement with the parent on held-out batches (every candidate is evaluated, so the notebook's
   budget explorer can say what the search would pick under another budget);
4. baselines of the importance order, at the chosen candidate's layer counts and FFN width:
   random drops (``random_drops`` seeded draws) and the *most* important layers dropped, sparing
   the trivially catastrophic ones (:data:`CATASTROPHIC_FACTOR`);
5. distil the best candidate from the parent for a few tokens (forward KL, temperature 1) and
   train the same architecture from scratch with the same token budget (and, in the paper
   profile, with the parent's whole budget), each for ``arm_seeds`` training seeds (data order,
   and the initial weights of the scratch runs); record accuracy and agreement as training goes
   (first seed) and at the end (every seed);
6. time greedy decoding through the caches, parent vs pruned (``nvrepro.hybrid.decode_cost``).

``python -m nvrepro.hybrid.minipuzzle_experiment --save build/minipuzzle_toy`` runs steps 1-4 of
the paper profile and writes ``parent.pt`` and ``student.pt`` for
``nvrepro fit --config configs/hybrid/minipuzzle_distill_toy.yaml``.
"""

from __future__ import annotations

import argparse
import copy
import statistics
from pathlib import Path
from typing import Mapping, Sequence

import lightning as L
import torch

from nvrepro.core.evaluation import argmax_predictions
from nvrepro.core.lm.config import model_config_from_yaml
from nvrepro.core.data import TextDataModule
from nvrepro.core.tooling.claims import Claim, Judgement
from nvrepro.core.tooling.intervals import Estimate, stratified_bootstrap, wilson
from nvrepro.core.tooling.claims import all_parts, at_least_estimate, beats, faster, not_applicable
from nvrepro.hybrid.decode_cost import time_decode
from nvrepro.core.training.fitting import quiet_fit
from nvrepro.core.lm.model import PatternLM
from nvrepro.core.training.module import CausalLMModule
from nvrepro.core.lm.info import human_bytes
from nvrepro.core.tooling.paths import CONFIGS_DIR
from nvrepro.core.tooling.profiles import profile_settings
from nvrepro.core.tooling.timing import num_threads
from nvrepro.core.training.weights import save_lm
from nvrepro.hybrid.distill import DistillationModule
from nvrepro.hybrid.minipuzzle import (catastrophic_layers, ffn_neuron_importance, layer_importance,
                                       layers_to_keep, most_important_to_keep, prune_model, random_layers_to_keep)
from nvrepro.hybrid.search import (GIB, MemoryBudget, candidate_grid, format_memory, memory_estimate,
                                   next_token_metrics, pick_under_budget, placeholder_importance, search)

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
        importance_batches=2, eval_batches=2, random_drops=4, arm_seeds=2,
        keep_grid={"M": [3, 2], "*": [1], "-": [3, 2]}, widths=[64, 48],
        budget=dict(fraction=0.85, context=512, batch=1),
        decode=dict(context=32, steps=4, repeats=1)),
    # Two 11-layer units of the Nemotron-H-8B pattern, at a width a CPU trains in minutes.
    "paper": dict(
        model={**_TOY, "pattern": "M-M-M-M*-M-M-M-M-M*-M-"},
        data=dict(seq_len=128, batch_size=8, max_documents=None),
        parent_steps=240, distill_steps=60, scratch_long=True, lr=3e-3, warmup=20, eval_every=10,
        importance_batches=8, eval_batches=8, random_drops=20, arm_seeds=3,
        keep_grid={"M": [10, 8, 6], "*": [2, 1], "-": [10, 8, 6]}, widths=[256, 192],
        budget=dict(fraction=0.6, context=2048, batch=1),
        decode=dict(context=256, steps=32, repeats=5)),
}


# A layer whose importance is at least this many times the median of its kind is "trivially
# catastrophic" to drop (the toy's first Mamba layer, which everything after it reads); the
# most-important-dropped baseline spares such layers so that it is no straw man.
CATASTROPHIC_FACTOR = 10.0
# Random drop r of seed s uses the draw seed RANDOM_SEED_STRIDE * s + r: fixed, and disjoint
# across experiment seeds.
RANDOM_SEED_STRIDE = 10_000


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


def _train_loader(dm: TextDataModule, seed: int):
    """``dm``'s training loader, shuffled with ``seed`` (the same packed data; only the order changes)."""
    view = copy.copy(dm)  # shares the datasets; setup() is a no-op on it
    view.seed = seed
    return view.train_dataloader()


def _fit(module: L.LightningModule, dm: TextDataModule, steps: int, progress: bool,
         probe: _Probe | None = None, seed: int | None = None) -> float:
    """Train ``module`` for ``steps`` optimizer steps on ``dm``'s training data (shuffled with
    ``seed``; ``None``: ``dm``'s own seed); returns seconds."""
    loader = dm.train_dataloader() if seed is None else _train_loader(dm, seed)
    return quiet_fit(module, train_dataloaders=loader, progress=progress,
                     callbacks=[probe] if probe else [], accelerator="cpu", devices=1, max_steps=steps,
                     limit_val_batches=0, num_sanity_val_steps=0, gradient_clip_val=1.0).seconds


def train_parent(p: dict, dm: TextDataModule, seed: int, progress: bool = True) -> tuple[PatternLM, float]:
    """The toy parent, trained ``parent_steps`` steps from ``seed``; returns (model, seconds)."""
    L.seed_everything(seed, verbose=False)
    module = CausalLMModule(model=p["model"], optim=dict(lr=p["lr"], warmup_steps=p["warmup"]))
    seconds = _fit(module, dm, p["parent_steps"], progress)
    return module.model.eval(), seconds


def prune_stage(p: dict, parent: PatternLM, dm: TextDataModule, progress: bool = True, seed: int = 0) -> dict:
    """Importance, the budgeted candidate search, the baselines of the importance order
    (:func:`drop_baselines`), the pruned student."""
    calib = _take(dm.train_dataloader(), p["importance_batches"])
    held_out = _take(dm.val_dataloader(), p["eval_batches"])
    importance = layer_importance(parent, calib, progress=progress)
    neurons = ffn_neuron_importance(parent, calib, progress=progress)
    parent_mem = memory_estimate(parent.cfg, MemoryBudget(1, context=p["budget"]["context"],
                                                          batch=p["budget"]["batch"]))
    budget = MemoryBudget(limit_bytes=int(p["budget"]["fraction"] * parent_mem.total_bytes),
                          context=p["budget"]["context"], batch=p["budget"]["batch"])
    ranked, grid = search(parent, importance, neurons, p["keep_grid"], p["widths"], budget, held_out,
                          progress=progress, evaluate_all=True)
    if not ranked:
        raise ValueError(f"budget: no candidate of the grid fits {budget.describe()}")
    best = ranked[0]
    student = prune_model(parent, best.keep_layers, best.ffn_width, neurons)
    reference = argmax_predictions(parent, held_out)
    drops = drop_baselines(parent, importance.tolist(), neurons, best.keep, best.ffn_width, held_out, reference,
                           p["random_drops"], seed)
    return dict(importance=importance.tolist(), neurons=neurons, budget=budget,
                parent_memory=parent_mem.total_bytes, ranked=ranked, grid=grid, best=best,
                student=student, drops=drops, held_out=held_out, reference=reference)


def drop_baselines(parent: PatternLM, importance: Sequence[float], neurons: dict, keep: dict[str, int],
                   ffn_width: int, batches, reference, random_drops: int, seed: int) -> dict:
    """The chosen candidate's layer counts ``keep`` and ``ffn_width`` with three ways of choosing
    which layers go, each pruned from ``parent`` (no training) and evaluated on ``batches``:

    * ``importance``: the least important layers of each kind (the candidate itself);
    * ``random``: ``random_drops`` uniform draws (:func:`~nvrepro.hybrid.minipuzzle.random_layers_to_keep`),
      draw ``r`` seeded ``RANDOM_SEED_STRIDE * seed + r``;
    * ``most_important``: the most important layers of each kind, sparing the trivially
      catastrophic ones (:func:`~nvrepro.hybrid.minipuzzle.catastrophic_layers` at
      :data:`CATASTROPHIC_FACTOR`, listed under ``spared``).

    Each arm: ``kept`` and ``dropped`` layer indices of the parent, plus
    :func:`~nvrepro.hybrid.search.next_token_metrics` (against the parent's ``reference``).
    """
    pattern = parent.cfg.pattern

    def arm(kept: list[int]) -> dict:
        child = prune_model(parent, kept, ffn_width, neurons)
        return dict(kept=list(kept), dropped=[i for i in range(len(pattern)) if i not in kept],
                    **next_token_metrics(child, batches, reference))

    spared = catastrophic_layers(pattern, importance, CATASTROPHIC_FACTOR)
    return dict(
        importance=arm(layers_to_keep(pattern, importance, keep)),
        random=[dict(seed=RANDOM_SEED_STRIDE * seed + r,
                     **arm(random_layers_to_keep(pattern, keep, RANDOM_SEED_STRIDE * seed + r)))
                for r in range(random_drops)],
        most_important=dict(spared=spared, **arm(most_important_to_keep(pattern, importance, keep, spared))))


def recovery_stage(p: dict, parent: PatternLM, student: PatternLM, dm: TextDataModule, held_out, reference,
                   seed: int, progress: bool = True) -> dict:
    """Distil the pruned student, train its architecture from scratch, and time decoding.

    Each training arm runs for the ``arm_seeds`` seeds ``seed, seed + 1, ...`` (data order; the
    scratch runs' initial weights too). The first seed records the curve (every ``eval_every``
    steps); every seed's final evaluation is in ``finals``.
    """
    tokens_per_step = p["data"]["batch_size"] * p["data"]["seq_len"]
    optim = dict(lr=p["lr"], warmup_steps=p["warmup"])
    budgets = {"distilled": p["distill_steps"], "scratch": p["distill_steps"]}
    if p["scratch_long"]:
        budgets["scratch_parent_budget"] = p["parent_steps"]
    arms: dict[str, dict] = {}
    for name, steps in budgets.items():
        arm = arms[name] = dict(curve=[], seconds=[], finals=[])
        for k in range(p["arm_seeds"]):
            arm_seed = seed + k
            L.seed_everything(arm_seed, verbose=False)
            if name == "distilled":
                module = DistillationModule.from_models(student, copy.deepcopy(parent), optim=optim)
            else:
                module = CausalLMModule(model=student.cfg.to_dict(), optim=optim)
            probe = None
            if k == 0:
                probe = _Probe(held_out, reference, p["eval_every"], tokens_per_step)
                probe.curve.append({"step": 0, "tokens": 0, **next_token_metrics(module.model, held_out, reference)})
            arm["seconds"].append(_fit(module, dm, steps, progress, probe, seed=arm_seed))
            final = probe.curve[-1] if probe else next_token_metrics(module.model, held_out, reference)
            arm["finals"].append({"seed": arm_seed, "tokens": steps * tokens_per_step, **_metrics(final)})
            if k == 0:
                arm.update(curve=probe.curve, model=module.model)

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
    pr = prune_stage(p, parent, dm, progress, seed)
    rec = recovery_stage(p, parent, pr["student"], dm, pr["held_out"], pr["reference"], seed, progress)
    tps = rec["tokens_per_step"]
    parent_metrics = next_token_metrics(parent, pr["held_out"], pr["reference"])
    pruned_metrics = rec["arms"]["distilled"]["curve"][0]
    rows = [dict(model="parent", pattern=parent.cfg.pattern, ffn_width=parent.cfg.ffn.hidden,
                 train_tokens=p["parent_steps"] * tps, **_metrics(parent_metrics),
                 decode_tok_s=rec["decode"]["parent"]),
            dict(model="pruned (no training)", pattern=pr["best"].pattern, ffn_width=pr["best"].ffn_width,
                 train_tokens=0, **_metrics(pruned_metrics), decode_tok_s=rec["decode"]["pruned"])]
    for name, arm in rec["arms"].items():  # the first seed's run; every seed's end is in ``finals``
        rows.append(dict(model=ARM_LABELS[name], pattern=pr["best"].pattern, ffn_width=pr["best"].ffn_width,
                         train_tokens=arm["curve"][-1]["tokens"], **_metrics(arm["curve"][-1]),
                         decode_tok_s=rec["decode"]["pruned"]))
    distilled_acc = rows[2]["acc"]
    longest = rec["arms"].get("scratch_parent_budget", rec["arms"]["scratch"])["curve"]
    # Tokens the from-scratch run needed to first reach the distilled accuracy (None: never did).
    to_match = next((c["tokens"] for c in longest if c["acc"] >= distilled_acc), None)
    return dict(
        profile=profile, seed=seed, config=p, parent_seconds=parent_seconds, scratch_tokens_to_match=to_match,
        importance=pr["importance"], pattern=parent.cfg.pattern, kept_layers=pr["best"].keep_layers,
        dropped_layers=[i for i in range(parent.cfg.n_layers) if i not in pr["best"].keep_layers],
        drops=pr["drops"],
        budget=dict(limit_bytes=pr["budget"].limit_bytes, parent_bytes=pr["parent_memory"],
                    description=pr["budget"].describe()),
        candidates=[c.row() for c in pr["ranked"]], grid=[c.row() for c in pr["grid"]],
        curves={k: v["curve"] for k, v in rec["arms"].items()},
        finals={k: v["finals"] for k, v in rec["arms"].items()},
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


ARM_LABELS = {"distilled": "pruned + distilled", "scratch": "scratch, same tokens",
              "scratch_parent_budget": "scratch, parent's tokens"}


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


def format_drops(result: Mapping) -> str:
    """The baselines of the importance order (``result["drops"]``) as printed lines: for each way
    of choosing the layers, which layers it *drops* and *keeps*, its agreement with the parent and
    its accuracy (random drops: their median, range and how many fall below the ranked drop)."""
    drops = result["drops"]
    lines = [f"same layer counts and FFN width as the chosen candidate {result['candidates'][0]['name']}, "
             "no training:"]
    for name, label in (("importance", "least important dropped"),
                        ("most_important", "most important dropped, sparing layers "
                                           f"{drops['most_important']['spared']}")):
        arm = drops[name]
        lines.append(f"  {label}: drops layers {arm['dropped']}, keeps {arm['kept']}\n"
                     f"      agreement {agreement_estimate(arm)}, accuracy {arm['acc']:.3f}")
    rand = drops["random"]
    if rand:
        agree = sorted(r["agreement"] for r in rand)
        below = sum(r["agree"] < drops["importance"]["agree"] for r in rand)
        median = random_drop_agreement(result)
        lines.append(f"  {len(rand)} random drops (seeds {rand[0]['seed']}..{rand[-1]['seed']}): agreement from "
                     f"{agree[0]:.3f} to {agree[-1]:.3f}, median "
                     + (str(median) if median is not None else f"{statistics.median(agree):.3f}")
                     + f"; {below} of {len(rand)} below the importance-ranked drop")
    return "\n".join(lines)


def budget_summary(rows: Sequence[dict], limit_bytes: float) -> str:
    """One line: how many of the candidate ``rows`` fit ``limit_bytes`` and which one the search
    picks (:func:`~nvrepro.hybrid.search.pick_under_budget`)."""
    fitting, pick = pick_under_budget(rows, limit_bytes)
    text = f"budget {human_bytes(limit_bytes)}: {len(fitting)} of {len(rows)} candidates fit"
    if pick is not None:
        text += (f"; the search picks {pick['name']} ({pick['pattern']}, score {pick['score']:.3f} = mean of "
                 f"accuracy {pick['acc']:.3f} and agreement {pick['agreement']:.3f})")
    elif fitting:
        text += "; no accuracy measured (meta device), so nothing to rank them by"
    return text


def show_budget_explorer(rows: Sequence[dict], limit_bytes: float, title: str = "") -> None:
    """Draw :func:`~nvrepro.hybrid.figures.plot_budget_explorer` for ``limit_bytes`` and print
    :func:`budget_summary` (the widget's callback; returns None)."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    from nvrepro.hybrid.figures.minipuzzle import plot_budget_explorer

    print(budget_summary(rows, limit_bytes))
    fig = plot_budget_explorer(rows, limit_bytes, title=title)
    display(fig)  # this figure only (plt.show would also draw any other open figure)
    plt.close(fig)


UNITS = {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30}


def budget_widget(rows: Sequence[dict], value_bytes: float, unit: str = "KiB", title: str = ""):
    """An ipywidgets slider (memory budget in ``unit``, from below the smallest candidate to above
    the largest and ``value_bytes``) wired to :func:`show_budget_explorer`, starting at ``value_bytes``."""
    import ipywidgets as widgets

    if unit not in UNITS:
        raise ValueError(f"unit: one of {sorted(UNITS)}, got {unit!r}")
    scale = UNITS[unit]
    sizes = [r["memory_bytes"] / scale for r in rows] + [value_bytes / scale]
    lo, hi = 0.9 * min(sizes), 1.1 * max(sizes)
    slider = widgets.FloatSlider(value=value_bytes / scale, min=lo, max=hi, step=(hi - lo) / 200,
                                 description=f"budget {unit}", continuous_update=False, readout_format=".1f")
    return widgets.interactive(lambda budget: show_budget_explorer(rows, budget * scale, title), budget=slider)


def toy_vs_paper(result: Mapping) -> dict[str, float | None]:
    """The toy's counterparts of the paper facts the notebook prints (``side_by_side``): tokens
    from scratch to first reach the distilled accuracy / distillation tokens (``None`` when never
    reached), decode speed pruned / parent, and the sequences importance was measured on."""
    p = result["config"]
    distill_tokens = next(r["train_tokens"] for r in result["table"] if r["model"] == ARM_LABELS["distilled"])
    match = result["scratch_tokens_to_match"]
    return {"minipuzzle_token_reduction": None if match is None else match / distill_tokens,
            "speedup_47b_vs_56b": result["decode"]["pruned"] / result["decode"]["parent"],
            "minipuzzle_layer_importance_samples": p["importance_batches"] * p["data"]["batch_size"]}


def format_seeds(result: Mapping) -> str:
    """Every training seed's final accuracy and agreement per arm (``result["finals"]``), as lines."""
    lines = ["end of training, per seed (accuracy / agreement with the parent):"]
    for name, finals in result["finals"].items():
        lines.append(f"  {ARM_LABELS[name]:<26}" + "   ".join(f"seed {f['seed']}: {f['acc']:.3f} / {f['agreement']:.3f}"
                                                       for f in finals))
    return "\n".join(lines)


def format_table(rows: list[dict]) -> str:
    """The candidate table as aligned text."""
    head = f"{'model':<26}{'pattern':<24}{'FFN':>5}{'train tokens':>14}{'acc':>8}{'agree':>8}{'loss':>7}{'decode tok/s':>14}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['model']:<26}{r['pattern']:<24}{r['ffn_width']:>5}{r['train_tokens']:>14,}"
                     f"{r['acc']:>8.3f}{r['agreement']:>8.3f}{r['loss']:>7.3f}{r['decode_tok_s']:>14.0f}")
    return "\n".join(lines)


# --- the claims of the minipuzzle_layer_importance and minipuzzle_recovery figures ---------------
RECOVERED_SHARE = 0.9  # "keeps most of the parent's accuracy": at least this share of it
BOOTSTRAP_RESAMPLES = 2000  # of the median over the random drops
_WORD = {True: "held", False: "did not hold", None: "undecided"}


def agreement_estimate(metrics: Mapping) -> Estimate:
    """Agreement with the parent's argmax over the held-out positions, with Wilson's interval."""
    return wilson(metrics["agree"], metrics["count"])


def accuracy_estimate(metrics: Mapping) -> Estimate:
    """Next-token accuracy over the held-out positions, with Wilson's interval."""
    return wilson(metrics["correct"], metrics["count"])


def random_drop_agreement(metrics: Mapping) -> Estimate | None:
    """The median agreement with the parent over the random drops (``drops["random"]`` of
    :func:`run`), with a percentile bootstrap interval over the draws (seed 0,
    :data:`BOOTSTRAP_RESAMPLES` resamples); ``None`` for fewer than two draws."""
    values = [r["agree"] / r["count"] for r in metrics["drops"]["random"]]
    if len(values) < 2:
        return None
    return stratified_bootstrap([list(range(len(values)))], lambda idx: statistics.median(values[i] for i in idx),
                                seed=0, n_resamples=BOOTSTRAP_RESAMPLES)


def judge_layer_importance(metrics: Mapping) -> Judgement:
    """The ``minipuzzle_layer_importance`` claim, from :func:`run`'s ``drops`` (all pruned from the
    parent without training, at the chosen candidate's layer counts and FFN width), on agreement
    with the parent over the held-out positions:

    * the importance-ranked drop (Wilson interval) beats the median random drop (bootstrap
      interval over the draws, :func:`random_drop_agreement`), by
      :func:`~nvrepro.core.tooling.claims.beats`;
    * it beats the most-important drop that spares the catastrophic layers (Wilson vs Wilson).

    The evidence also counts the random draws whose agreement lies below the importance-ranked one.
    """
    drops = metrics["drops"]
    ranked = agreement_estimate(drops["importance"])
    random_median = random_drop_agreement(metrics)
    n_random = len(drops["random"])
    parts = {
        "importance-ranked beats the median random drop":
            beats(ranked, random_median, f"agreement with the parent, importance-ranked vs median of {n_random} "
                                         "random drops") if random_median is not None
            else not_applicable(f"random drops: need at least 2 draws, got {n_random}"),
        "importance-ranked beats the most important dropped (catastrophic layers spared)": beats(
            ranked, agreement_estimate(drops["most_important"]),
            f"agreement with the parent, least vs most important dropped (sparing layers "
            f"{drops['most_important']['spared']})"),
    }
    below = sum(r["agree"] < drops["importance"]["agree"] for r in drops["random"])
    return all_parts(parts, evidence={"random_draws_below": below, "random_draws": n_random})


def _compact(e: Estimate) -> str:
    return f"{e.value:.3f} [{e.low:.3f}, {e.high:.3f}]"


def _every_seed(judgements: Mapping[int, Judgement], what: str) -> Judgement:
    """A comparison made once per training seed holds when it holds in every seed: ``False`` if
    any seed's is ``False``, else ``None`` if any is undecided."""
    verdicts = [j.held for j in judgements.values()]
    held = False if False in verdicts else None if None in verdicts else True
    per_seed = "; ".join(f"seed {s}: {_compact(j.evidence['a'])} vs "
                         + (f"{j.evidence['b'].value - j.evidence['margin']:.3f}" if "margin" in j.evidence
                            else _compact(j.evidence["b"]))
                         + f" ({_WORD[j.held]})" for s, j in judgements.items())
    return Judgement(held, f"{what}, 95% Wilson: {per_seed}",
                     {"rule": "every seed", "seeds": {str(s): j.to_dict() for s, j in judgements.items()}})


def judge_recovery(metrics: Mapping) -> Judgement:
    """The ``minipuzzle_recovery`` claim, from :func:`run`'s result (``table`` for the parent and the
    pruned model before training, ``finals`` for every training seed of each arm,
    ``decode_seconds_per_token``); accuracies and agreements with Wilson intervals over the
    held-out positions:

    * the pruned model *without training* keeps at least :data:`RECOVERED_SHARE` of the parent's
      accuracy (:func:`~nvrepro.core.tooling.claims.at_least_estimate`, margin ``(1 - share) x parent``);
    * in every training seed: the distilled model keeps that share too; it beats the pruned model
      without training in accuracy and in agreement with the parent
      (:func:`~nvrepro.core.tooling.claims.beats`); it beats scratch training on the same tokens
      (same seed); and, where that run exists (paper profile), it is at least as accurate as
      scratch training on the parent's whole budget (``at_least_estimate``, no margin);
    * the pruned model decodes faster than the parent (:func:`~nvrepro.core.tooling.claims.faster`
      on the timed decode blocks; one block per model, as in the smoke profile, stays undecided).
    """
    rows = {r["model"]: r for r in metrics["table"]}
    parent, pruned = accuracy_estimate(rows["parent"]), accuracy_estimate(rows["pruned (no training)"])
    pruned_agreement = agreement_estimate(rows["pruned (no training)"])
    margin = (1 - RECOVERED_SHARE) * parent.value
    finals = metrics["finals"]
    distilled = {f["seed"]: f for f in finals["distilled"]}

    def per_seed(other: str, compare, what: str) -> Judgement:
        by_seed = {f["seed"]: f for f in finals[other]}
        return _every_seed({s: compare(accuracy_estimate(d), accuracy_estimate(by_seed[s]), what)
                            for s, d in distilled.items()}, what)

    share = f"{RECOVERED_SHARE:.0%}"
    parts = {
        f"pruned, no training, keeps >= {share} of the parent's accuracy": at_least_estimate(
            pruned, parent, "pruned (no training) vs share of the parent", margin=margin),
        f"distilled keeps >= {share} of the parent's accuracy": _every_seed(
            {s: at_least_estimate(accuracy_estimate(d), parent, "distilled", margin=margin)
             for s, d in distilled.items()}, "distilled vs share of the parent"),
        "distillation raises accuracy above the pruned model's": _every_seed(
            {s: beats(accuracy_estimate(d), pruned, "accuracy") for s, d in distilled.items()},
            "accuracy, distilled vs pruned without training"),
        "distillation raises agreement with the parent above the pruned model's": _every_seed(
            {s: beats(agreement_estimate(d), pruned_agreement, "agreement") for s, d in distilled.items()},
            "agreement with the parent, distilled vs pruned without training"),
        "distilled beats scratch on the same tokens": per_seed("scratch", beats, "accuracy, distilled vs scratch"),
    }
    if "scratch_parent_budget" in finals:
        parts["distilled is at least as accurate as scratch on the parent's tokens"] = per_seed(
            "scratch_parent_budget", at_least_estimate, "accuracy, distilled vs scratch on the parent's budget")
    timed = metrics["decode_seconds_per_token"]
    parts["pruned decodes faster"] = faster(timed["pruned"], timed["parent"], "seconds per decoded token")
    return all_parts(parts)


LAYER_IMPORTANCE = Claim(
    "minipuzzle_layer_importance",
    "Dropping the layers ranked least important (MSE of the final hidden state when a layer is removed) keeps the "
    "pruned model, before any training, closer to the parent (agreement with the parent's next token) than dropping "
    "randomly chosen layers of the same kinds and counts (it beats the median of seeded random draws), and than "
    "dropping the most important layers while sparing the trivially catastrophic ones (importance at least "
    f"{CATASTROPHIC_FACTOR:g}x the median of their kind), at the same FFN width.",
    judge_layer_importance,
)
RECOVERY = Claim(
    "minipuzzle_recovery",
    f"Pruning alone (importance-ranked drops, no training) keeps >= {RECOVERED_SHARE:.0%} of the parent's next-token "
    f"accuracy. In every training seed, distilling the pruned model from its parent keeps >= "
    f"{RECOVERED_SHARE:.0%} as well, improves on the pruned model without training (in accuracy and in agreement "
    "with the parent), beats the same architecture trained from scratch on the same tokens, and is at least as "
    "accurate as it trained from scratch on the parent's whole token budget. The pruned model decodes faster than "
    "the parent.",
    judge_recovery,
)


def prepare(out: str | Path, profile: str = "paper", seed: int = 0, progress: bool = True,
            threads: int | None = 1) -> dict:
    """Train the parent and prune it (steps 1-4); write ``parent.pt`` and ``student.pt`` under ``out``."""
    p = _profile(profile)
    with num_threads(threads):
        dm = _datamodule(p, seed)
        parent, _ = train_parent(p, dm, seed, progress)
        pr = prune_stage(p, parent, dm, progress, seed)
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
