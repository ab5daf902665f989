"""The FP8 study of ``notebooks/hybrid/04_fp8_training.ipynb``: BF16 vs FP8 recipes, toy hybrid, several seeds.

Nemotron-H (arXiv 2504.03624, Sec. 2.4, Fig. 5) trains in FP8 with per-tensor current scaling,
E4M3 weights/activations, E5M2 gradients, and the first and last 4 layers in BF16, and reports a
training-loss gap to BF16 typically under 0.1% relative at 8B scale. :func:`fp8_training` trains
the toy hybrid of ``configs/hybrid/fp8_toy.yaml`` (the YAML ``nvrepro fit`` uses) in four arms,
changing only the FP8 config:

* ``bf16``: no FP8 (BF16 autocast everywhere: ``precision: bf16-mixed``, FP32 master weights);
* ``fp8_recipe``: the paper's recipe, first/last N layers in BF16 (N from the YAML);
* ``fp8_all``: every layer's linears in FP8 (N = 0);
* ``fp8_delayed``: the recipe's layers, but delayed (amax-history) scaling.

and repeats the four over several seeds. A seed sets the initialisation and the order of the
training batches; within a seed every arm starts from the same weights and sees the same batches,
so ``(loss_arm - loss_bf16) / loss_bf16`` is paired (the relative gap of the paper's Fig. 5). The
train/val split, and so the held-out batches every run is scored on, is the same for all seeds.

How far apart can two runs land by chance? The toy answers with BF16 itself: the gap between the
BF16 runs of two different seeds, measured the same way (:func:`seed_gaps`), is the *seed band*.
:func:`resolution_table` puts each arm's gap (an interval over seeds) beside that band and beside
the paper's 0.1%, and says which arms the toy can tell apart.

FP8 is emulated (:mod:`nvrepro.core.training.precision.emulated`): exact FP8 rounding, no speed-up; the
rest of every arm runs under the same BF16 autocast.
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path
from typing import Mapping, Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader

from nvrepro.core.lm.config import ModelConfig
from nvrepro.core.data import TextDataModule
from nvrepro.core.training.fitting import quiet_fit
from nvrepro.core.lm.model import build_model
from nvrepro.core.training.module import CausalLMModule, causal_lm_loss
from nvrepro.core.training.precision import FP8Config, FP8Training, fp8_plan, record_fp8_stats
from nvrepro.core.training.precision.callback import fp8_section
from nvrepro.core.training.precision.emulated import (FORMATS, amax, compute_scale, dequantize, fp8_max,
                                                      fp8_to_float32, quantize)
from nvrepro.core.tooling.validation import ConfigError
from nvrepro.core.tooling.profiles import profile_settings
from nvrepro.core.training.yaml_fit import init_args_from_yaml, read_cli_yaml
from nvrepro.core.tooling.paths import CONFIGS_DIR, REPO_ROOT
from nvrepro.core.tooling.paper_facts import paper_value
from nvrepro.core.tooling.timing import num_threads
from nvrepro.core.tooling.claims import Claim, Judgement, exact, finite
from nvrepro.core.tooling.intervals import Estimate, seed_interval

FP8_TOY = CONFIGS_DIR / "hybrid" / "fp8_toy.yaml"
NEMOTRON_8B = CONFIGS_DIR / "hybrid" / "nemotron_h_8b.yaml"
ARMS = ("bf16", "fp8_recipe", "fp8_all", "fp8_delayed")
# The smoke profile shrinks widths, steps and data so that its runs take seconds. The paper profile
# trains the YAML's model and data, but for fewer steps than the YAML and over several seeds: the
# interval over n seeds has half-width t(n-1) / sqrt(n) seed standard deviations (2.48 at 3 seeds,
# 1.24 at 5), so within one CPU thread's ~15 minutes more seeds resolve a gap better than longer runs.
PROFILES: dict[str, dict] = {
    "smoke": dict(steps=16, seeds=3, max_documents=60, val_batches=2, seq_len=64, batch_size=4,
                  model=dict(d_model=32, mamba=dict(n_heads=2, head_dim=16, d_state=8, chunk_size=32),
                             attention=dict(n_heads=2, n_kv_heads=1, head_dim=16),
                             ffn=dict(hidden=64))),
    "paper": dict(steps=120, seeds=5, max_documents=None, val_batches=None, seq_len=None, batch_size=None,
                  model={}),
}


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = _merge(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def load_fp8_study(config_path: str | Path = FP8_TOY, profile: str = "paper") -> dict:
    """The pieces of a LightningCLI YAML the study needs, with the profile's overrides applied:
    ``{"model", "optim", "fp8", "data", "trainer"}`` as plain dicts, and ``"n_seeds"`` (the profile's)."""
    p = profile_settings(PROFILES, profile)
    _, args = init_args_from_yaml(config_path, "model")
    _, data = init_args_from_yaml(config_path, "data")
    trainer = dict(read_cli_yaml(config_path).get("trainer") or {})
    fp8 = fp8_section(trainer.pop("callbacks", None))
    if fp8 is None:
        raise ConfigError(f"trainer.callbacks: {config_path} has no FP8Training callback to study")
    for key in ("seq_len", "batch_size", "max_documents"):
        if p[key] is not None:
            data[key] = p[key]
    if p["steps"] is not None:
        trainer["max_steps"] = p["steps"]
    if p["val_batches"] is not None:
        trainer["limit_val_batches"] = p["val_batches"]
    return {"model": _merge(args["model"], p["model"]), "optim": dict(args.get("optim") or {}),
            "fp8": fp8, "data": data, "trainer": trainer, "n_seeds": p["seeds"]}


def study_arms(fp8: dict) -> dict[str, FP8Config]:
    """The four arms from the YAML's FP8 section (its N, its history length)."""
    base = FP8Config(**fp8)
    return {
        "bf16": FP8Config(**{**fp8, "backend": "none"}),
        "fp8_recipe": base,
        "fp8_all": FP8Config(**{**fp8, "exclude_first_n": 0, "exclude_last_n": 0}),
        "fp8_delayed": FP8Config(**{**fp8, "recipe": "delayed"}),
    }


class SeededOrderText(TextDataModule):
    """A :class:`TextDataModule` whose training batches are shuffled from ``order_seed`` (set per
    seed of the study) while the train/val split, and so the held-out batches, follow ``seed`` as
    usual. ``order_seed`` defaults to ``seed`` (then it is the plain data module)."""

    def __init__(self, *args, order_seed: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.order_seed = self.seed if order_seed is None else order_seed

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_dataset, batch_size=self.batch_size, shuffle=True,
                          generator=torch.Generator().manual_seed(self.order_seed),
                          num_workers=self.num_workers, drop_last=False,
                          persistent_workers=self.num_workers > 0)


class _LossRecorder(L.Callback):
    """Training loss of every optimiser step, as floats."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))


def _autocast(device: torch.device, precision: str):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled="bf16" in str(precision))


@torch.no_grad()
def held_out_loss(module: CausalLMModule, data: TextDataModule, batches: int, precision: str) -> float:
    """Mean loss over the first ``batches`` validation batches, under the training autocast."""
    model = module.model.eval()
    device = next(model.parameters()).device
    losses = []
    for i, batch in enumerate(data.val_dataloader()):
        if i >= batches:
            break
        with _autocast(device, precision):
            logits = model(batch["input_ids"].to(device))
        losses.append(float(causal_lm_loss(logits, batch["labels"].to(device))))
    model.train()
    return sum(losses) / len(losses)


def train_arm(cfg: dict, fp8: FP8Config, data: TextDataModule, seed: int,
              progress: bool = True) -> tuple[CausalLMModule, dict]:
    """Train one arm from the seed's initialisation on ``data``'s batches; returns the module and
    its record ``{"fp8", "loss" (per step), "val_loss", "seconds", "fp8_linears"}``."""
    L.seed_everything(seed, verbose=False)
    module = CausalLMModule(model=cfg["model"], optim=cfg["optim"])
    recorder, fp8_training = _LossRecorder(), FP8Training(fp8)
    t = cfg["trainer"]
    start = time.perf_counter()
    quiet_fit(module, datamodule=data, progress=progress, callbacks=[recorder, fp8_training],
              accelerator=t.get("accelerator", "auto"), devices=1, precision=t["precision"],
              gradient_clip_val=t.get("gradient_clip_val"), max_steps=t["max_steps"], limit_val_batches=0)
    seconds = time.perf_counter() - start
    val = held_out_loss(module, data, cfg["trainer"].get("limit_val_batches", 8),
                        cfg["trainer"]["precision"])
    return module, {"fp8": fp8.to_dict(), "loss": recorder.losses, "val_loss": val,
                    "seconds": seconds, "fp8_linears": list(fp8_training.linears)}


def tensor_stats_by_layer(module: CausalLMModule, batch: dict, precision: str,
                          fp8_linears: list[str]) -> list[dict]:
    """Per block linear: amax and FP8 underflow of input, weight and gradient on one batch.

    Run under the same autocast as training; excluded (BF16) layers are measured too, marked
    ``fp8: False`` (not in ``fp8_linears``), to show what FP8 would do there.
    """
    model = module.model
    fp8_names = set(fp8_linears)
    names = [f"layers.{row['layer']}.{sub}" for row in fp8_plan(model, FP8Config(backend="none"))
             for sub in row["linears"]]
    device = next(model.parameters()).device
    ids, labels = batch["input_ids"].to(device), batch["labels"].to(device)
    model.train()
    with record_fp8_stats(model, names) as stats:
        with _autocast(device, precision):
            loss = causal_lm_loss(model(ids), labels)
        loss.backward()
    model.zero_grad(set_to_none=True)
    kinds = {i: block.kind for i, block in enumerate(model.layers)}
    return [{"name": n, "layer": int(n.split(".")[1]), "kind": kinds[int(n.split(".")[1])],
             "fp8": n in fp8_names, **stats[n]} for n in names]


def output_gradient(module: CausalLMModule, batch: dict, precision: str, name: str) -> torch.Tensor:
    """The gradient ``dL/dy`` arriving at the output of the linear ``name`` (what an FP8 GEMM
    rounds to E5M2 in the backward pass) on one batch, before any rounding: float32, flattened
    to ``(tokens * out_features,)``."""
    model = module.model
    linear = model.get_submodule(name)
    device = next(model.parameters()).device
    captured: list[torch.Tensor] = []

    def hook(mod, args, output):
        if output.requires_grad:
            output.register_hook(lambda g: captured.append(g.detach().float().flatten().cpu()))

    model.train()
    handle = linear.register_forward_hook(hook)
    try:
        with _autocast(device, precision):
            loss = causal_lm_loss(model(batch["input_ids"].to(device)), batch["labels"].to(device))
        loss.backward()
    finally:
        handle.remove()
        model.zero_grad(set_to_none=True)
    return captured[0]


def fp8_training(profile: str = "smoke", seed: int = 0, config_path: str | Path = FP8_TOY,
                 arms: tuple[str, ...] = ARMS, progress: bool | None = None,
                 threads: int | None = 1, n_seeds: int | None = None) -> dict:
    """Train the arms of :data:`ARMS` over seeds ``seed, seed + 1, ...`` and measure FP8 underflow.

    ``n_seeds`` defaults to the profile's. Seed ``s`` initialises every arm with
    ``seed_everything(s)`` and shuffles the training batches from ``data.seed + s`` (the YAML's
    data seed: seed 0 sees the batches a plain ``nvrepro fit`` sees); the held-out batches are the
    same for every seed. Returns plain data (but ``grad_sample``)::

        {"profile", "seed", "seeds", "config",
         "runs": [{"seed": s, "arms": {arm: {"fp8", "loss" (per step), "val_loss", "seconds",
                                             "fp8_linears"}}} per seed],
         "stats": [per-linear dicts from the first seed's fp8_recipe arm],
         "grad_sample": {"name", "values": float32 tensor}}

    ``grad_sample`` is the output gradient (:func:`output_gradient`) of the FP8 linear of that
    model that E4M3 would flush most of, on the first held-out batch (``None`` without that arm).
    ``threads``: torch intra-op threads while training (default 1: on a shared CPU a spinning
    OpenMP pool is many times slower; ``None`` keeps torch's setting). Progress bars by default
    in the paper profile only.
    """
    unknown = [a for a in arms if a not in ARMS]
    if unknown or not arms:
        raise ConfigError(f"arms: expected a non-empty subset of {ARMS}, got {arms!r}")
    cfg = load_fp8_study(config_path, profile)
    n_seeds = cfg["n_seeds"] if n_seeds is None else n_seeds
    if not isinstance(n_seeds, int) or isinstance(n_seeds, bool) or n_seeds < 1:
        raise ConfigError(f"n_seeds: a positive whole number of seeds, got {n_seeds!r}")
    progress = profile == "paper" if progress is None else progress
    configs = study_arms(cfg["fp8"])
    data_seed = int(cfg["data"].get("seed", 0))
    data = SeededOrderText(**cfg["data"])
    data.setup("fit")
    precision = cfg["trainer"]["precision"]
    seeds = [seed + i for i in range(n_seeds)]
    runs, stats, grad_sample = [], [], None
    with num_threads(threads) as used_threads:
        for s in seeds:
            data.order_seed = data_seed + s
            records = {}
            for arm in arms:
                module, records[arm] = train_arm(cfg, configs[arm], data, s, progress)
                if arm == "fp8_recipe" and s == seeds[0]:
                    batch = next(iter(data.val_dataloader()))
                    stats = tensor_stats_by_layer(module, batch, precision, records[arm]["fp8_linears"])
                    name = max((row for row in stats if row["fp8"]), key=lambda r: r["grad"]["flushed_e4m3"])["name"]
                    grad_sample = {"name": name, "values": output_gradient(module, batch, precision, name)}
            runs.append({"seed": s, "arms": records})
    config = {k: cfg[k] for k in ("model", "optim", "fp8", "data")}
    config["trainer"] = {k: cfg["trainer"].get(k) for k in ("max_steps", "precision", "limit_val_batches")}
    config["threads"] = used_threads
    config["n_seeds"] = n_seeds
    config["config_path"] = str(Path(config_path).relative_to(REPO_ROOT)) \
        if Path(config_path).is_relative_to(REPO_ROOT) else str(config_path)
    return {"profile": profile, "seed": seed, "seeds": seeds, "config": config, "runs": runs,
            "stats": stats, "grad_sample": grad_sample}


def moving_average(values: list[float], window: int) -> list[float]:
    """Trailing mean over up to ``window`` values (shorter at the start)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def relative_gaps(losses: list[float], baseline: list[float]) -> list[float]:
    """``(loss - loss_bf16) / loss_bf16`` step by step (paired: same step, same batch)."""
    return [(a - b) / b for a, b in zip(losses, baseline)]


def exclusion_plan(config_path: str | Path = NEMOTRON_8B, fp8: FP8Config | None = None) -> dict:
    """Which layers of a (full-scale) config stay in BF16, from a model built on ``meta``.

    Returns ``{"pattern", "n_layers", "bf16_layers": [(index, kind)], "fp8_linears",
    "bf16_linears", "fp8_param_fraction"}``, the last being the share of the blocks' linear
    weights that run in FP8 (LM head and embedding excluded).
    """
    from nvrepro.core.lm.config import model_config_from_yaml

    fp8 = fp8 or FP8Config()
    model_cfg: ModelConfig = model_config_from_yaml(config_path)
    model = build_model(model_cfg, device="meta")
    plan = fp8_plan(model, fp8)
    fp8_params = bf16_params = fp8_linears = bf16_linears = 0
    for row in plan:
        block = model.layers[row["layer"]]
        numel = sum(block.get_submodule(s).weight.numel() for s in row["linears"])
        if row["fp8"]:
            fp8_params, fp8_linears = fp8_params + numel, fp8_linears + len(row["linears"])
        else:
            bf16_params, bf16_linears = bf16_params + numel, bf16_linears + len(row["linears"])
    return {"pattern": model_cfg.pattern, "n_layers": len(plan),
            "bf16_layers": [(r["layer"], r["kind"]) for r in plan if not r["fp8"]],
            "fp8_linears": fp8_linears, "bf16_linears": bf16_linears,
            "fp8_param_fraction": fp8_params / max(1, fp8_params + bf16_params)}


def backend_agreement(seed: int = 0, in_features: int = 256, out_features: int = 128,
                      tokens: int = 512) -> dict:
    """One linear layer through the emulation and through torchao's float8 training.

    Returns relative errors (Frobenius norm) of the output and of the weight gradient: each
    backend against float32 (the FP8 error itself), and the two backends against each other
    (same per-tensor scales and formats: only float32 accumulation order differs). ``torchao``
    is ``None`` with the reason when it cannot run here.
    """
    from torch import nn

    from nvrepro.core.training.precision import FP8Linear
    from nvrepro.core.training.precision.apply import import_torchao_float8

    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(tokens, in_features, generator=gen)
    g = torch.randn(tokens, out_features, generator=gen) * 1e-3  # a gradient arriving at y
    base = nn.Linear(in_features, out_features, bias=False)
    with torch.no_grad():
        base.weight.copy_(torch.randn(out_features, in_features, generator=gen) * in_features ** -0.5)

    def run(layer):
        xi = x.clone().requires_grad_(True)
        y = layer(xi)
        (y * g).sum().backward()
        return y.detach(), layer.weight.grad.detach()

    def rel(a, b):
        return float((a - b).norm() / b.norm())

    y32, gw32 = run(copy.deepcopy(base))
    y_emu, gw_emu = run(FP8Linear.from_linear(copy.deepcopy(base)))
    out = {"emulated_vs_fp32": {"output": rel(y_emu, y32), "weight_grad": rel(gw_emu, gw32)},
           "torchao": None, "torchao_error": None}
    try:
        float8 = import_torchao_float8()
        y_tao, gw_tao = run(float8.convert_to_float8_training(nn.Sequential(copy.deepcopy(base)))[0])
    except Exception as err:  # noqa: BLE001 - reported, e.g. no float8 GEMM kernel on this device
        out["torchao_error"] = f"{type(err).__name__}: {err}"
        return out
    out["torchao"] = {"torchao_vs_fp32": {"output": rel(y_tao, y32), "weight_grad": rel(gw_tao, gw32)},
                      "emulated_vs_torchao": {"output": rel(y_emu, y_tao), "weight_grad": rel(gw_emu, gw_tao)}}
    return out


# --- gaps over seeds, the BF16 seed band, and what the toy can tell apart ---------------------------
run = fp8_training  # the notebook's experiment: run(profile, seed) -> plain data
LOSS_GAP_TOLERANCE = paper_value("hybrid", "fp8_loss_gap")  # the paper's "typically under 0.1% relative"
SEED_CONFIDENCE = 0.95  # confidence of every interval over seeds


def _rel(a, b) -> float:
    return (float(a) - float(b)) / float(b)


def seed_gaps(metrics: Mapping) -> dict:
    """Relative gaps per seed from ``metrics["runs"]`` (:func:`fp8_training`'s ``runs``, or a
    sidecar's, where NaN is the string ``"nan"``):

    * ``heldout``: ``{arm: [(val_arm - val_bf16) / val_bf16 per seed]}``, each FP8 arm against the
      BF16 run of its own seed (same initialisation, same batches);
    * ``train_tail``: ``{arm: [per seed]}``, the mean paired per-step gap of the training loss over
      the last ``tail_steps`` (a fifth of the run): the paper's Fig. 5 measure;
    * ``bf16_pairs``: ``[{"seeds": [s, t], "gap": (val_bf16[t] - val_bf16[s]) / val_bf16[s]}]`` for
      every ordered pair of different seeds: the held-out gap BF16 shows against itself when only
      the seed changes, measured as ``heldout`` is (same held-out batches);
    * ``band``: the largest ``|gap|`` of ``bf16_pairs`` (``None`` with one seed): the seed band.
    """
    runs = metrics["runs"]
    seeds = [r["seed"] for r in runs]
    steps = len(runs[0]["arms"]["bf16"]["loss"])
    tail = max(1, steps // 5)
    fp8_arms = [a for a in ARMS if a != "bf16" and a in runs[0]["arms"]]
    heldout = {a: [_rel(r["arms"][a]["val_loss"], r["arms"]["bf16"]["val_loss"]) for r in runs] for a in fp8_arms}
    train_tail = {a: [sum(relative_gaps([float(v) for v in r["arms"][a]["loss"][-tail:]],
                                        [float(v) for v in r["arms"]["bf16"]["loss"][-tail:]])) / tail
                      for r in runs] for a in fp8_arms}
    vals = {r["seed"]: r["arms"]["bf16"]["val_loss"] for r in runs}
    pairs = [{"seeds": [s, t], "gap": _rel(vals[t], vals[s])} for s in seeds for t in seeds if s != t]
    band = max(abs(p["gap"]) for p in pairs) if pairs else None
    return {"seeds": seeds, "tail_steps": tail, "heldout": heldout, "train_tail": train_tail,
            "bf16_pairs": pairs, "band": band}


def _inside(estimate: Estimate, half_width: float) -> bool | None:
    """Three-valued "the interval lies within ``(-half_width, half_width)``": ``True`` wholly inside,
    ``False`` wholly outside, ``None`` when it straddles an edge."""
    if estimate.low > -half_width and estimate.high < half_width:
        return True
    if estimate.high < -half_width or estimate.low > half_width:
        return False
    return None


def resolution_table(metrics: Mapping, confidence: float = SEED_CONFIDENCE,
                     tolerance: float = LOSS_GAP_TOLERANCE) -> dict:
    """Which arms the toy can tell apart, on intervals over seeds (at least 2 seeds).

    Returns ``{"band", "n_pairs", "tolerance", "rows"}``, one row per comparison: each FP8 arm
    against BF16 (``"fp8_recipe - bf16"``), then each pair of FP8 arms (``"fp8_all - fp8_recipe"``:
    per seed, the difference of their held-out gaps to that seed's BF16, i.e. paired too). A row
    holds ``per_seed`` (relative held-out gaps), ``gap`` (:func:`~nvrepro.core.tooling.intervals.seed_interval` of them),
    ``train_tail`` (the same interval for the training-tail gap, for reference) and three verdicts:

    * ``told_apart``: ``True`` when the interval excludes 0 (the two arms' losses differ), ``None``
      when it contains 0 (not told apart: a tie is never proven, only bounded by the interval);
    * ``within_band``: the interval inside ``±band`` (:func:`seed_gaps`): ``True``/``False``/``None``
      (inside / outside / straddling an edge);
    * ``within_tolerance``: the same against ``±tolerance`` (the paper's 0.1%).
    """
    gaps = seed_gaps(metrics)
    if len(gaps["seeds"]) < 2:
        raise ValueError(f"metrics: intervals over seeds need at least 2 seeds, got {len(gaps['seeds'])}")
    band = gaps["band"]
    comparisons = [(f"{a} - bf16", gaps["heldout"][a], gaps["train_tail"][a]) for a in gaps["heldout"]]
    arms = list(gaps["heldout"])
    for i, a in enumerate(arms):
        for b in arms[i + 1:]:
            comparisons.append((f"{b} - {a}", [y - x for x, y in zip(gaps["heldout"][a], gaps["heldout"][b])],
                                [y - x for x, y in zip(gaps["train_tail"][a], gaps["train_tail"][b])]))
    rows = []
    for name, per_seed, tail in comparisons:
        gap = seed_interval(per_seed, confidence)
        rows.append({"comparison": name, "per_seed": per_seed, "gap": gap,
                     "train_tail": seed_interval(tail, confidence),
                     "told_apart": True if gap.low > 0 or gap.high < 0 else None,
                     "within_band": _inside(gap, band), "within_tolerance": _inside(gap, tolerance)})
    return {"band": band, "n_pairs": len(gaps["bf16_pairs"]), "tolerance": tolerance, "rows": rows}


_WITHIN = {True: "inside", False: "outside", None: "straddles"}


def format_resolution(table: Mapping) -> str:
    """:func:`resolution_table` as printed lines (gaps in %)."""
    band, tol = 100 * table["band"], 100 * table["tolerance"]
    head = (f"{'comparison':<26} {'held-out gap per seed (%)':<34} {'mean [interval] (%)':<24} "
            f"{'told apart':<10} {f'band ±{band:.3f}%':<16} {f'paper ±{tol:g}%':<12} {'train-tail gap (%)'}")
    lines = [head, "-" * len(head)]
    for row in table["rows"]:
        g, t = row["gap"], row["train_tail"]
        per_seed = " ".join(f"{100 * v:+.3f}" for v in row["per_seed"])
        lines.append(f"{row['comparison']:<26} {per_seed:<34} "
                     f"{f'{100 * g.value:+.3f} [{100 * g.low:+.3f}, {100 * g.high:+.3f}]':<24} "
                     f"{'yes' if row['told_apart'] else 'no':<10} {_WITHIN[row['within_band']]:<16} "
                     f"{_WITHIN[row['within_tolerance']]:<12} "
                     f"{100 * t.value:+.3f} [{100 * t.low:+.3f}, {100 * t.high:+.3f}]")
    first = table["rows"][0]["gap"]
    lines.append(f"(intervals: {first.confidence:.0%} Student-t over {first.n} seeds; band: the largest |gap| "
                 f"between the BF16 runs of two seeds, {table['n_pairs']} ordered pairs)")
    return "\n".join(lines)


def gap_curves(runs: Sequence[Mapping], window: int | None = None) -> dict:
    """Training curves for the figure, from :func:`fp8_training`'s ``runs``.

    ``{"window", "loss": {arm: mean over seeds of the smoothed loss}, "gap": {arm: {"per_seed":
    [smoothed paired relative gap per seed], "mean": their mean}}}``; smoothing is a trailing mean
    of ``window`` steps (default a tenth of the run).
    """
    steps = len(runs[0]["arms"]["bf16"]["loss"])
    window = window or max(1, steps // 10)
    arms = list(runs[0]["arms"])

    def mean(curves):
        return [sum(vs) / len(vs) for vs in zip(*curves)]

    loss = {a: mean([moving_average(r["arms"][a]["loss"], window) for r in runs]) for a in arms}
    gap = {}
    for a in arms:
        if a == "bf16":
            continue
        per_seed = [moving_average(relative_gaps(r["arms"][a]["loss"], r["arms"]["bf16"]["loss"]), window)
                    for r in runs]
        gap[a] = {"per_seed": per_seed, "mean": mean(per_seed)}
    return {"window": window, "loss": loss, "gap": gap}


def loss_gap_metrics(result: Mapping) -> dict:
    """The ``fp8_loss_gap`` sidecar's metrics from :func:`fp8_training`'s result: ``{"seeds",
    "runs"}`` with each run's per-step loss, held-out loss, seconds and FP8 linears per arm."""
    keep = ("loss", "val_loss", "seconds", "fp8_linears")
    return {"seeds": list(result["seeds"]),
            "runs": [{"seed": r["seed"], "arms": {a: {k: rec[k] for k in keep} for a, rec in r["arms"].items()}}
                     for r in result["runs"]]}


# --- the claims of notebook 04's figures -----------------------------------------------------------
def mean_flushed(stats: list[dict]) -> dict[str, float]:
    """Mean over the block linears of ``stats`` (``fp8_training(...)["stats"]``) of the fraction of
    non-zero entries flushed to zero, per role and format: ``{"input_e4m3": ..., "grad_e5m2": ...}``."""
    return {f"{role}_{fmt}": sum(s[role][f"flushed_{fmt}"] for s in stats) / len(stats)
            for role in ("input", "weight", "grad") for fmt in ("e4m3", "e5m2")}


def judge_loss_gap(metrics: Mapping) -> Judgement:
    """The ``fp8_loss_gap`` claim (``metrics``: :func:`loss_gap_metrics`): the recipe's relative
    held-out-loss gap to BF16, a :func:`~nvrepro.core.tooling.intervals.seed_interval` over the seeds (each seed paired: same
    initialisation and batches in both arms), lies within the BF16 seed band (:func:`seed_gaps`:
    the largest gap between BF16 runs of two seeds, on the same held-out batches).

    Three-valued: the interval wholly inside ``±band`` holds (the recipe moves the loss no more
    than a change of seed), wholly outside fails, straddling an edge is undecided. The band is a
    measured yardstick, not a tuned threshold: the rule (largest |gap| over the ordered seed pairs)
    is fixed here. The evidence also places the interval against the paper's
    :data:`LOSS_GAP_TOLERANCE` (inside / outside / straddles: whether the toy resolves that bar)
    and holds :func:`resolution_table`'s every row. Needs at least 2 seeds.
    """
    runs = metrics["runs"]
    if len(runs) < 2:
        return Judgement(None, f"not judged: {len(runs)} seed(s); the interval and the band need at least 2")
    if not all(finite(float(r["arms"]["bf16"]["val_loss"])) for r in runs):
        return Judgement(None, "not judged: a BF16 baseline's held-out loss is not finite")
    if not all(finite(float(r["arms"]["fp8_recipe"]["val_loss"])) for r in runs):
        return Judgement(False, "the FP8 recipe's held-out loss is not finite in some seed (training diverged)")
    table = resolution_table(metrics)
    row = next(r for r in table["rows"] if r["comparison"] == "fp8_recipe - bf16")
    gap, band, tol = row["gap"], table["band"], table["tolerance"]
    told = {True: "differs from BF16", None: "not told apart from BF16 (interval spans 0)"}[row["told_apart"]]
    reason = (f"recipe's held-out-loss gap to BF16 {100 * gap.value:+.3f}% [{100 * gap.low:+.3f}%, "
              f"{100 * gap.high:+.3f}%] ({gap.confidence:.0%} Student-t over {gap.n} seeds) vs the BF16 seed "
              f"band ±{100 * band:.3f}% (largest of {table['n_pairs']} seed pairs): {_WITHIN[row['within_band']]}; "
              f"vs the paper's ±{100 * tol:g}%: {_WITHIN[row['within_tolerance']]}; {told}")
    return Judgement(row["within_band"], reason,
                     {"gap": gap, "band": band, "tolerance": tol, "within_tolerance": row["within_tolerance"],
                      "told_apart": row["told_apart"], "rows": table["rows"]})


def judge_underflow(metrics: Mapping) -> Judgement:
    """The ``fp8_underflow`` claim: the mean fraction of gradient entries flushed to zero is lower
    in E5M2 than in E4M3 (``metrics["layers"]``: the per-linear stats).

    Exact, no interval: for the same tensor under current scaling an entry flushes when
    ``|x| / amax`` falls below half the format's smallest subnormal over its max (E4M3:
    2^-10 / 448; E5M2: 2^-17 / 57344), so E5M2's flushed entries are a subset of E4M3's; the claim
    fails only if no gradient entry lies between the two thresholds (or the stats are wrong).
    """
    flushed = mean_flushed(metrics["layers"])
    return exact(flushed["grad_e5m2"] < flushed["grad_e4m3"],
                 f"mean flushed gradient entries: E5M2 {flushed['grad_e5m2']:.3g} vs E4M3 {flushed['grad_e4m3']:.3g}",
                 mean_flushed=flushed)


FP8_LOSS_GAP = Claim(
    "fp8_loss_gap",
    "Nemotron-H's FP8 recipe (current scaling, E4M3 weights/activations, E5M2 gradients, first and last layers in "
    "BF16) moves the toy hybrid's held-out loss no more than a change of seed does: its relative gap to BF16 "
    "(paired: same initialisation and batches within a seed; 95% interval over seeds) lies within the BF16 seed "
    "band, the largest gap between BF16 runs of two different seeds measured the same way. (Paper: training-loss "
    f"gap typically under {100 * LOSS_GAP_TOLERANCE:g}% at 8B scale; FP8 emulated here; the evidence says whether "
    "the toy's interval resolves that bar.)",
    judge_loss_gap,
)
FP8_UNDERFLOW = Claim(
    "fp8_underflow",
    "Under per-tensor current scaling, E5M2 flushes fewer gradient entries to zero than E4M3 (its 5 exponent bits "
    "span ~2^32 vs ~2^18), which is why the recipe gives gradients E5M2.",
    judge_underflow,
)


# --- the format explorer: where a tensor's values land in FP8 ----------------------------------------
def format_shares(values, fmt: str, scale_shift: float = 0.0) -> dict:
    """Where the entries of ``values`` (any shape; a tensor or array) land when rounded to FP8
    ``fmt`` (``"e4m3"`` or ``"e5m2"``) with the per-tensor scale ``2**scale_shift`` times the current
    scale ``fmax / amax`` (``scale_shift = 0``: current scaling; ``> 0``: the amax overflows;
    ``< 0``: a larger amax assumed, as a stale delayed scale would).

    Fractions of the non-zero entries: ``flushed`` (rounded to 0), ``subnormal`` (kept with fewer
    mantissa bits: ``|q| <`` the smallest normal), ``normal``, ``overflow`` (``|x| * scale > fmax``,
    saturated to ``±fmax``); they sum to 1. ``median_rel_error``: median ``|x - Q(x)| / |x|`` of the
    entries neither flushed nor saturated. ``edges`` in the units of ``values``: ``flush_below``
    (half the smallest subnormal, over the scale), ``normal_from``, ``max`` (largest representable).
    """
    if fmt not in FORMATS:
        raise ConfigError(f"fmt: expected one of {sorted(FORMATS)}, got {fmt!r}")
    if not (isinstance(scale_shift, (int, float)) and math.isfinite(scale_shift)):
        raise ConfigError(f"scale_shift: a finite number (log2 of scale / current scale), got {scale_shift!r}")
    dtype = FORMATS[fmt]
    t = torch.as_tensor(values).detach().float().flatten()
    fi = torch.finfo(dtype)
    scale = compute_scale(amax(t), dtype) * 2.0 ** scale_shift
    q = quantize(t, dtype, scale)
    code = fp8_to_float32(q).abs()  # the FP8 magnitudes themselves
    nonzero = t != 0
    n = max(1, int(nonzero.sum()))
    overflow = nonzero & (t.abs() * scale > fp8_max(dtype))
    flushed = nonzero & (code == 0)
    subnormal = nonzero & ~flushed & (code < fi.smallest_normal)
    normal = nonzero & ~flushed & ~subnormal & ~overflow
    kept = nonzero & ~flushed & ~overflow
    err = ((dequantize(q, scale) - t).abs() / t.abs())[kept]
    smallest_subnormal = fi.smallest_normal * fi.eps
    s = float(scale)
    return {"fmt": fmt, "scale_shift": float(scale_shift), "scale": s, "n_nonzero": int(nonzero.sum()),
            "flushed": int(flushed.sum()) / n, "subnormal": int(subnormal.sum()) / n,
            "normal": int(normal.sum()) / n, "overflow": int(overflow.sum()) / n,
            "median_rel_error": float(err.median()) if err.numel() else float("nan"),
            "edges": {"flush_below": smallest_subnormal / 2 / s, "normal_from": fi.smallest_normal / s,
                      "max": fp8_max(dtype) / s}}


def format_shares_line(shares: Mapping) -> str:
    """One printed line of :func:`format_shares`."""
    return (f"{shares['fmt'].upper()}, scale 2^{shares['scale_shift']:+g} x current: flushed to 0 "
            f"{100 * shares['flushed']:.3f}%, subnormal {100 * shares['subnormal']:.3f}%, normal "
            f"{100 * shares['normal']:.3f}%, saturated {100 * shares['overflow']:.3f}% of "
            f"{shares['n_nonzero']:,} non-zero entries; median relative rounding error of the kept ones "
            f"{shares['median_rel_error']:.3g}")


def show_format_explorer(fmt: str | Sequence[str], scale_shift: float, values, name: str = "") -> None:
    """The explorer's callback: for the format ``fmt`` (or each of several, one panel each) prints
    :func:`format_shares_line` and draws the histogram of ``|values|`` with the format's ranges
    (:func:`~nvrepro.hybrid.figures.fp8.plot_fp8_format`)."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    from nvrepro.hybrid.figures.fp8 import plot_fp8_format

    shares = [format_shares(values, f, scale_shift) for f in ([fmt] if isinstance(fmt, str) else fmt)]
    for sh in shares:
        print(format_shares_line(sh))
    fig = plot_fp8_format(values, shares, name)
    display(fig)  # this figure only: plt.show() would also show any figure an earlier cell left open
    plt.close(fig)


def format_explorer_widget(values, name: str = "", shifts: tuple[int, int] = (-16, 8)):
    """ipywidgets controls (format, log2 of the scale over the current scale) wired to
    :func:`show_format_explorer` on ``values`` (e.g. ``fp8_training(...)["grad_sample"]["values"]``)."""
    import ipywidgets as widgets

    fmt = widgets.ToggleButtons(options=[("E4M3", "e4m3"), ("E5M2", "e5m2")], value="e4m3", description="format")
    shift = widgets.IntSlider(value=0, min=shifts[0], max=shifts[1], description="log2 scale",
                              tooltip="log2(scale / current scale): 0 is current scaling")

    def show(fmt: str, scale_shift: int) -> None:
        show_format_explorer(fmt, scale_shift, values, name)

    return widgets.interactive(show, fmt=fmt, scale_shift=shift)
