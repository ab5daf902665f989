"""``nvrepro export-hf`` / ``nvrepro import-hf``: Lightning checkpoints <-> transformers NemotronH.

The conversion itself (configs, weight names, dtype) is :mod:`nvrepro.core.lm.hf`; this module adds
what needs the training side: reading and writing the checkpoints :class:`CausalLMModule` loads.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

import torch

from nvrepro.core.lm.config import ModelConfig, model_config_from_yaml
from nvrepro.core.lm.hf import CONFIG_FILE, WEIGHTS_FILE, export_hf, import_hf, to_hf_config
from nvrepro.core.lm.model import PatternLM, build_model
from nvrepro.core.tooling.validation import ConfigError


def lightning_checkpoint(model: PatternLM) -> dict[str, Any]:
    """A checkpoint ``CausalLMModule.load_from_checkpoint(path, weights_only=True)`` loads:
    tensors under ``state_dict`` (prefixed ``model.``) and the config as a plain dict."""
    import lightning

    from nvrepro.core.training.module import OptimConfig

    return {"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
            "hyper_parameters": {"model": model.cfg.to_dict(), "optim": dataclasses.asdict(OptimConfig())},
            "pytorch-lightning_version": lightning.__version__}


def model_from_checkpoint(path, cfg: ModelConfig | None = None) -> PatternLM:
    """A :class:`PatternLM` from a Lightning checkpoint (or a bare state dict), loaded weights_only.

    The config is ``cfg`` if given, else the checkpoint's ``hyper_parameters["model"]``; if both
    exist they must agree (a :class:`ConfigError` names the first field that differs).
    """
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    state = ckpt.get("state_dict", ckpt)
    stored = ckpt.get("hyper_parameters", {}).get("model")
    if cfg is None and stored is None:
        raise ConfigError(f"config: {str(path)!r} stores no model config; pass --config")
    if stored is not None:
        stored_cfg = ModelConfig.from_dict(stored)
        if cfg is not None and cfg != stored_cfg:
            name = next(k for k, v in cfg.to_dict().items() if stored_cfg.to_dict()[k] != v)
            raise ConfigError(f"{name}: --config says {getattr(cfg, name)!r} but the checkpoint was "
                              f"trained with {getattr(stored_cfg, name)!r}")
        cfg = cfg or stored_cfg
    if any(k.startswith("model.") for k in state):  # CausalLMModule keeps the LM under .model
        state = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
    model = PatternLM(cfg)
    model.load_state_dict(state)
    return model


def _yaml_seed(path) -> int:
    import yaml

    return int((yaml.safe_load(Path(path).read_text()) or {}).get("seed_everything") or 0)


def export_main(argv: list[str] | None = None) -> int:
    """``nvrepro export-hf --config YAML [--ckpt FILE] --out DIR [--dtype float32|bfloat16]``."""
    parser = argparse.ArgumentParser(prog="nvrepro export-hf",
                                     description="Write a model as a transformers NemotronH directory.")
    parser.add_argument("--config", help="a YAML under configs/ (needed unless --ckpt stores its config)")
    parser.add_argument("--ckpt", help="a Lightning checkpoint of CausalLMModule (loaded weights_only)")
    parser.add_argument("--out", required=True, help="output directory (config.json + model.safetensors)")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default=None,
                        help="stored weight dtype (default: the model's, float32)")
    parser.add_argument("--seed", type=int, default=None,
                        help="without --ckpt: init seed (default: the YAML's seed_everything, else 0)")
    args = parser.parse_args(argv)
    if not args.config and not args.ckpt:
        parser.error("give --config, --ckpt, or both")
    try:
        cfg = model_config_from_yaml(args.config) if args.config else None
        if cfg is not None:
            to_hf_config(cfg)  # refuse an inexpressible config before building (maybe 8B) weights
        if args.ckpt:
            model = model_from_checkpoint(args.ckpt, cfg)
            source = f"checkpoint {args.ckpt}"
        else:
            seed = args.seed if args.seed is not None else _yaml_seed(args.config)
            torch.manual_seed(seed)
            model = build_model(cfg)
            source = f"freshly initialised weights (no --ckpt; seed {seed})"
        out = export_hf(model, args.out, args.dtype)
    except (ConfigError, FileNotFoundError, ValueError, KeyError, RuntimeError) as err:
        print(f"nvrepro export-hf: {err}", file=sys.stderr)
        return 2
    print(f"wrote {out / CONFIG_FILE} and {out / WEIGHTS_FILE} from {source}\n"
          f"load with: transformers.NemotronHForCausalLM.from_pretrained({str(out)!r})")
    return 0


def import_main(argv: list[str] | None = None) -> int:
    """``nvrepro import-hf --hf DIR --out FILE``: a NemotronH directory as a checkpoint nvrepro loads."""
    parser = argparse.ArgumentParser(prog="nvrepro import-hf",
                                     description="Read a transformers NemotronH directory into nvrepro.")
    parser.add_argument("--hf", required=True, help="directory with config.json and *.safetensors")
    parser.add_argument("--out", "--out-ckpt", dest="out", required=True,
                        help="checkpoint to write (CausalLMModule.load_from_checkpoint reads it)")
    args = parser.parse_args(argv)
    try:
        model = import_hf(args.hf)
    except (ConfigError, FileNotFoundError, KeyError) as err:
        print(f"nvrepro import-hf: {err}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(lightning_checkpoint(model), out)
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {out}: pattern {model.cfg.pattern!r}, {n:,} parameters\n"
          f"load with: CausalLMModule.load_from_checkpoint({str(out)!r}, weights_only=True)")
    return 0
