"""The FP8 study of ``notebooks/hybrid/04_fp8_training.ipynb``: BF16 vs FP8 recipes, toy hybrid.

Nemotron-H (arXiv 2504.03624, Sec. 2.4, Fig. 5) trains in FP8 with per-tensor current scaling,
E4M3 weights/activations, E5M2 gradients, and the first and last 4 layers in BF16, and reports a
training-loss gap to BF16 typically under 0.1% relative at 8B scale. :func:`fp8_training` trains
the toy hybrid of ``configs/hybrid/fp8_toy.yaml`` (the YAML ``nvrepro fit`` uses) four times from
the same initialisation on the same batches, changing only the FP8 config:

* ``bf16``: no FP8 (BF16 autocast everywhere: ``precision: bf16-mixed``, FP32 master weights);
* ``fp8_recipe``: the paper's recipe, first/last N layers in BF16 (N from the YAML);
* ``fp8_all``: every layer's linears in FP8 (N = 0);
* ``fp8_delayed``: the recipe's layers, but delayed (amax-history) scaling.

FP8 is emulated (:mod:`nvrepro.core.training.precision.emulated`): exact FP8 rounding, no speed-up; the
rest of every arm runs under the same BF16 autocast. The loss arrays are paired step by step, so
``(loss_arm - loss_bf16) / loss_bf16`` is the relative gap of the paper's Fig. 5.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Mapping

import lightning as L
import torch

from nvrepro.core.lm.config import ModelConfig
from nvrepro.core.data import TextDataModule
from nvrepro.core.training.fitting import quiet_fit
from nvrepro.core.lm.model import build_model
from nvrepro.core.training.module import CausalLMModule, causal_lm_loss
from nvrepro.core.training.precision import FP8Config, FP8Training, fp8_plan, record_fp8_stats
from nvrepro.core.training.precision.callback import fp8_section
from nvrepro.core.tooling.validation import ConfigError
from nvrepro.core.tooling.profiles import profile_settings
from nvrepro.core.training.yaml_fit import init_args_from_yaml, read_cli_yaml
from nvrepro.core.tooling.paths import CONFIGS_DIR, REPO_ROOT
from nvrepro.core.tooling.timing import num_threads
from nvrepro.core.tooling.claims import Claim, Judgement, finite
from nvrepro.core.tooling.intervals import bootstrap_mean
from nvrepro.core.tooling.claims import exact

FP8_TOY = CONFIGS_DIR / "hybrid" / "fp8_toy.yaml"
NEMOTRON_8B = CONFIGS_DIR / "hybrid" / "nemotron_h_8b.yaml"
ARMS = ("bf16", "fp8_recipe", "fp8_all", "fp8_delayed")
# The smoke profile shrinks widths, steps and data so that four runs take seconds; "paper" runs
# the YAML as written.
PROFILES: dict[str, dict] = {
    "smoke": dict(steps=16, max_documents=60, val_batches=2, seq_len=64, batch_size=4,
                  model=dict(d_model=32, mamba=dict(n_heads=2, head_dim=16, d_state=8, chunk_size=32),
                             attention=dict(n_heads=2, n_kv_heads=1, head_dim=16),
                             ffn=dict(hidden=64))),
    "paper": dict(steps=None, max_documents=None, val_batches=None, seq_len=None, batch_size=None,
                  model={}),
}


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = _merge(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def load_fp8_study(config_path: str | Path = FP8_TOY, profile: str = "paper") -> dict:
    """The pieces of a LightningCLI YAML the study needs, with the profile's overrides applied:
    ``{"model", "optim", "fp8", "data", "trainer"}`` as plain dicts."""
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
            "fp8": fp8, "data": data, "trainer": trainer}


def study_arms(fp8: dict) -> dict[str, FP8Config]:
    """The four arms from the YAML's FP8 section (its N, its history length)."""
    base = FP8Config(**fp8)
    return {
        "bf16": FP8Config(**{**fp8, "backend": "none"}),
        "fp8_recipe": base,
        "fp8_all": FP8Config(**{**fp8, "exclude_first_n": 0, "exclude_last_n": 0}),
        "fp8_delayed": FP8Config(**{**fp8, "recipe": "delayed"}),
    }


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
    """Train one arm from the seed's initialisation; returns the module and its record."""
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


def fp8_training(profile: str = "smoke", seed: int = 0, config_path: str | Path = FP8_TOY,
                 arms: tuple[str, ...] = ARMS, progress: bool | None = None,
                 threads: int | None = 1) -> dict:
    """Train the arms of :data:`ARMS` and measure FP8 underflow; returns plain data.

    ``{"profile", "seed", "config", "arms": {arm: {"fp8", "loss" (per step), "val_loss",
    "seconds", "fp8_linears"}}, "stats": [per-linear dicts from the fp8_recipe arm]}``.
    ``threads``: torch intra-op threads while training (default 1: on a shared CPU a spinning
    OpenMP pool is many times slower; ``None`` keeps torch's setting). Progress bars by default
    in the paper profile only.
    """
    cfg = load_fp8_study(config_path, profile)
    progress = profile == "paper" if progress is None else progress
    configs = study_arms(cfg["fp8"])
    data = TextDataModule(**cfg["data"])
    data.setup("fit")
    results, stats = {}, []
    with num_threads(threads) as used_threads:
        for arm in arms:
            module, results[arm] = train_arm(cfg, configs[arm], data, seed, progress)
            if arm == "fp8_recipe":
                stats = tensor_stats_by_layer(module, next(iter(data.val_dataloader())),
                                              cfg["trainer"]["precision"], results[arm]["fp8_linears"])
    config = {k: cfg[k] for k in ("model", "optim", "fp8", "data")}
    config["trainer"] = {k: cfg["trainer"].get(k) for k in ("max_steps", "precision", "limit_val_batches")}
    config["threads"] = used_threads
    config["config_path"] = str(Path(config_path).relative_to(REPO_ROOT)) \
        if Path(config_path).is_relative_to(REPO_ROOT) else str(config_path)
    return {"profile": profile, "seed": seed, "config": config, "arms": results, "stats": stats}


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


def loss_gaps(result: dict, window: int | None = None) -> dict:
    """Relative gaps to BF16 per FP8 arm, from :func:`fp8_training`'s result.

    * ``curve``: ``(loss_arm - loss_bf16) / loss_bf16`` per step, smoothed with a trailing mean of
      ``window`` steps (default a tenth of the run);
    * ``final``: the mean raw relative gap over the last fifth of the steps;
    * ``val``: relative gap of the held-out loss after training.
    """
    base = result["arms"]["bf16"]
    steps = len(base["loss"])
    window = window or max(1, steps // 10)
    tail = max(1, steps // 5)
    out = {}
    for arm, rec in result["arms"].items():
        if arm == "bf16":
            continue
        raw = relative_gaps(rec["loss"], base["loss"])
        out[arm] = {"curve": moving_average(raw, window), "final": sum(raw[-tail:]) / tail,
                    "val": (rec["val_loss"] - base["val_loss"]) / base["val_loss"]}
    return {"window": window, "tail_steps": tail, "arms": out}


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


# --- notebook 04's experiment and the claims of its figures --------------------------------------
run = fp8_training  # the notebook's experiment: run(profile, seed) -> plain data
LOSS_GAP_TOLERANCE = 0.001  # the paper's "training-loss gap typically under 0.1% relative"
BOOTSTRAP_SEED = 0  # resampling seed of the loss-gap interval (same metrics, same interval)


def mean_flushed(stats: list[dict]) -> dict[str, float]:
    """Mean over the block linears of ``stats`` (``fp8_training(...)["stats"]``) of the fraction of
    non-zero entries flushed to zero, per role and format: ``{"input_e4m3": ..., "grad_e5m2": ...}``."""
    return {f"{role}_{fmt}": sum(s[role][f"flushed_{fmt}"] for s in stats) / len(stats)
            for role in ("input", "weight", "grad") for fmt in ("e4m3", "e5m2")}


def judge_loss_gap(metrics: Mapping) -> Judgement:
    """The ``fp8_loss_gap`` claim: ``|gap| <`` :data:`LOSS_GAP_TOLERANCE` for the paper's recipe, where the
    gap is the mean paired relative gap ``(loss_fp8_recipe - loss_bf16) / loss_bf16`` over the
    last ``gaps.tail_steps`` logged training steps (``metrics["arms"][arm]["loss"]``).

    The interval is a bootstrap over those steps (:data:`BOOTSTRAP_SEED`): wholly inside
    ``(-tol, tol)`` holds, wholly outside fails, otherwise undecided. What it does and does not
    cover: it is the only interval the run's data allow (one seed per arm; more runs are not
    added), and it measures the batch-to-batch noise of the gap along this one pair of runs. The
    steps are consecutive, so they are not independent, but their gaps are nearly uncorrelated
    (lag-1 autocorrelation about 0.1 in the run of record). It does not measure how far two
    training trajectories drift apart from one seed to another, which the notebook shows can be as
    large as the gap itself: "held" means within the tolerance for this pair of runs only.
    """
    tail = int(metrics["gaps"]["tail_steps"])
    recipe, bf16 = metrics["arms"]["fp8_recipe"]["loss"][-tail:], metrics["arms"]["bf16"]["loss"][-tail:]
    if not all(finite(v) for v in bf16):
        return Judgement(None, "not judged: the BF16 baseline's loss is not finite in the tail")
    if not all(finite(v) for v in recipe):
        return Judgement(False, "the FP8 recipe's loss is not finite in the tail (training diverged)")
    gaps = relative_gaps(recipe, bf16)
    if len(gaps) < 2:
        return Judgement(None, f"not judged: {len(gaps)} step(s) in the tail, an interval needs 2")
    gap = bootstrap_mean(gaps, seed=BOOTSTRAP_SEED)
    tol = LOSS_GAP_TOLERANCE
    held = True if gap.above(-tol) and gap.below(tol) else False if gap.below(-tol) or gap.above(tol) else None
    return Judgement(held, f"mean relative gap over the last {tail} steps {100 * gap.value:+.3f}% "
                           f"[{100 * gap.low:+.3f}%, {100 * gap.high:+.3f}%] ({gap.confidence:.0%} {gap.method}) vs "
                           f"|gap| < {100 * tol:g}% (interval over the steps of one pair of runs: batch noise only, "
                           "not seed-to-seed variation)",
                     {"gap": gap, "tolerance": tol, "tail_steps": tail})


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
    "With Nemotron-H's FP8 recipe (current scaling, E4M3 weights/activations, E5M2 gradients, first and last layers "
    f"in BF16) the training-loss gap to BF16 is under {100 * LOSS_GAP_TOLERANCE:g}% relative (paper: 8B scale; tested "
    "here on the toy hybrid, FP8 emulated).",
    judge_loss_gap,
)
FP8_UNDERFLOW = Claim(
    "fp8_underflow",
    "Under per-tensor current scaling, E5M2 flushes fewer gradient entries to zero than E4M3 (its 5 exponent bits "
    "span ~2^32 vs ~2^18), which is why the recipe gives gradients E5M2.",
    judge_underflow,
)
