"""LM weights on disk: one writer, one reader, one way to start a model from a file.

Three layouts are read, all with ``torch.load(..., weights_only=True)`` (no pickled code runs):

* :func:`save_lm`'s file: ``{"model": config dict, "state_dict": LM weights}``;
* a Lightning checkpoint of a :class:`~nvrepro.core.training.module.CausalLMModule` (or a subclass):
  ``hyper_parameters["model"]`` and ``state_dict`` with ``model.``-prefixed keys;
* a bare LM state dict (no config), or ``{"state_dict": ...}`` alone.

:func:`load_lm` builds the model the file describes. :func:`init_from` loads a file's weights
into a model that already exists, keys and shapes strict; with ``same_config=True`` the file's
config must also equal the model's (distilling into a pruned student), while UltraLong's
extension arms load a short-context checkpoint into a model whose RoPE settings differ on purpose.
"""

from __future__ import annotations

from pathlib import Path

import torch

from nvrepro.core.lm.config import ConfigError, ModelConfig
from nvrepro.core.lm.model import PatternLM


def save_lm(model: PatternLM, path: str | Path) -> Path:
    """Write ``{"model": config dict, "state_dict": ...}``, loadable with ``weights_only=True``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.cfg.to_dict(), "state_dict": model.state_dict()}, path)
    return path


def _lm_keys(state: dict) -> dict:
    """The LM's own keys: a LightningModule's ``model.``-prefixed ones without the prefix."""
    if any(k.startswith("model.") for k in state):
        return {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
    return state


def read_lm_file(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[dict | None, dict]:
    """``(config dict or None, LM state dict)`` from any of the three layouts (module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint: no such file {str(path)!r}")
    raw = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(raw, dict):
        raise ValueError(f"checkpoint: {str(path)!r} holds a {type(raw).__name__}, not a dict of weights")
    if isinstance(raw.get("state_dict"), dict):  # save_lm, or a Lightning checkpoint
        cfg = (raw.get("hyper_parameters") or {}).get("model") if "hyper_parameters" in raw else raw.get("model")
        return cfg, _lm_keys(raw["state_dict"])
    if raw and all(isinstance(v, torch.Tensor) for v in raw.values()):  # bare state dict
        return None, _lm_keys(raw)
    raise ValueError(f"checkpoint: {str(path)!r} is neither a save_lm file, a CausalLMModule checkpoint "
                     f"nor a state dict (top-level keys: {sorted(raw)[:8]})")


def load_lm(path: str | Path, map_location: str | torch.device = "cpu") -> PatternLM:
    """The :class:`PatternLM` a :func:`save_lm` file or a ``CausalLMModule`` checkpoint describes."""
    cfg, state = read_lm_file(path, map_location)
    if cfg is None:
        raise ValueError(f"checkpoint: {str(path)!r} is a bare state dict with no model config; "
                         "build the model from its config and use init_from")
    model = PatternLM(ModelConfig.from_dict(cfg))
    model.load_state_dict(state, strict=True)
    return model


def config_differences(a: ModelConfig, b: ModelConfig) -> list[str]:
    """``["field: a vs b", ...]`` for every field (nested ones as ``section.field``) that differs."""
    da, db = a.to_dict(), b.to_dict()
    out = []
    for key in da:
        if isinstance(da[key], dict):
            out += [f"{key}.{k}: {da[key][k]!r} vs {db[key][k]!r}" for k in da[key] if da[key][k] != db[key][k]]
        elif da[key] != db[key]:
            out.append(f"{key}: {da[key]!r} vs {db[key]!r}")
    return out


def init_from(model: PatternLM, path: str | Path, *, same_config: bool = False, field: str = "init_from") -> PatternLM:
    """Load the weights of ``path`` into ``model`` (strict: every key, every shape) and return it.

    ``same_config``: the file must carry a config equal to ``model.cfg``; a :class:`ConfigError`
    naming ``field`` lists the differences otherwise.
    """
    cfg, state = read_lm_file(path)
    if same_config:
        if cfg is None:
            raise ConfigError(f"{field}: {str(path)!r} carries no model config to compare with the model's")
        diff = config_differences(model.cfg, ModelConfig.from_dict(cfg))
        if diff:
            raise ConfigError(f"model: {field} {str(path)!r} holds a different model than "
                              f"model.init_args.model (YAML vs checkpoint): {'; '.join(diff)}")
    model.load_state_dict(state, strict=True)
    return model
