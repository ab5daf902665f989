"""One experiment arm: the module of a LightningCLI YAML, trained quietly, its weights cached.

Every paper's notebooks train several arms from YAMLs under ``configs/`` with a few overrides
(widths for a size sweep, a RoPE scaling, a smaller corpus in the smoke profile) and may start
from another arm's weights. :func:`train_arm` is that step once: it builds the YAML's module and
datamodule with the overrides, trains ``steps`` optimizer steps on one device with a fixed
number of threads (same seed and threads, same numbers), and, with ``cache``, loads or saves the
weights under ``cache_dir`` keyed by everything that determines them (the YAML text, the
overrides, steps, seed, threads, the key of the starting weights and the version of the ``code``
that trains; see
:mod:`nvrepro.core.tooling.weight_cache`). Returns ``(key, model)``: the key lets a later arm that
starts from these weights name them in its own key.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Mapping, Sequence

import lightning as L
from torch import nn

from nvrepro.core.tooling.timing import num_threads
from nvrepro.core.tooling.weight_cache import ALL_CODE, cache_key, cache_path, load_cached, save_cached
from nvrepro.core.training.fitting import quiet_fit
from nvrepro.core.training.yaml_fit import datamodule_from_yaml, init_args_from_yaml, module_from_yaml, read_cli_yaml


def merged_model_config(yaml: str | Path, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``model.init_args.model`` of ``yaml`` with ``overrides``; a nested mapping (``attention``,
    ``ffn``, ``mamba``) updates that sub-config key by key instead of replacing it."""
    _, margs = init_args_from_yaml(yaml, "model")
    model_cfg = copy.deepcopy(margs["model"])
    for key, value in (overrides or {}).items():
        if isinstance(value, Mapping) and isinstance(model_cfg.get(key), dict):
            model_cfg[key] = {**model_cfg[key], **value}
        else:
            model_cfg[key] = value
    return model_cfg


def train_arm(yaml: str | Path, *, seed: int, cache_dir: str | Path, steps: int | None = None,
              init: tuple[str, Mapping[str, Any]] | None = None, model_overrides: Mapping[str, Any] | None = None,
              data_overrides: Mapping[str, Any] | None = None, module_overrides: Mapping[str, Any] | None = None,
              trainer: Mapping[str, Any] | None = None, cache: bool = False, progress: bool = False,
              code: Sequence[str] = ALL_CODE, threads: int = 1, record: str | None = None
              ) -> tuple[str, nn.Module] | tuple[str, nn.Module, list[dict[str, float]]]:
    """Train the arm of ``yaml``; returns ``(key, model)`` (the module's ``.model``).

    ``model_overrides``: keys of ``model.init_args.model`` (:func:`merged_model_config`);
    ``module_overrides``: other ``model.init_args`` keys; ``data_overrides``: keys of
    ``data.init_args`` (``seed`` is set to ``seed``); ``steps``: optimizer steps (default: the YAML's
    ``trainer.max_steps``); ``init = (key, state_dict)``: starting weights; ``trainer``: extra
    ``Trainer`` keywords (default: no validation, gradient clipping at 1). With ``cache``
    (callers decide it with :func:`~nvrepro.core.tooling.weight_cache.use_cache`), weights are
    loaded from, or saved to, ``cache_dir``. ``threads``: torch's intra-op threads while training
    (part of the cache key: float sums differ with the thread count). ``record``: the name of a module
    attribute that training fills with a list of ``{metric: float}`` (e.g. a curve logged per step); it is
    cached with the weights and the call returns ``(key, model, record)``.
    """
    _, margs = init_args_from_yaml(yaml, "model")
    model_cfg = merged_model_config(yaml, model_overrides)
    steps = steps or int(read_cli_yaml(yaml)["trainer"]["max_steps"])
    data_overrides = {**(data_overrides or {}), "seed": seed}
    module_overrides = dict(module_overrides or {})
    if "init_from" in margs:  # the YAML's own starting checkpoint gives way to ``init``
        module_overrides.setdefault("init_from", None)
    parts = (Path(yaml).read_text(), model_cfg, data_overrides, module_overrides, steps, seed,
             init and init[0], dict(trainer or {}), threads) + ((record,) if record is not None else ())
    key, path = cache_key(*parts), cache_path(cache_dir, Path(yaml).stem, *parts, code=code)
    L.seed_everything(seed, verbose=False)
    module = module_from_yaml(yaml, model=model_cfg, **module_overrides)
    state = load_cached(path) if cache else None
    if state is not None and record is not None:
        state, curve = state["model"], [dict(row) for row in state["record"]]
        module.model.load_state_dict(state)
        return key, module.model, curve
    if state is not None:
        module.model.load_state_dict(state)
        return key, module.model
    if init is not None:
        module.model.load_state_dict(init[1])
    settings = {"limit_val_batches": 0, "gradient_clip_val": 1.0, **(trainer or {})}
    with num_threads(threads):
        quiet_fit(module, datamodule=datamodule_from_yaml(yaml, **data_overrides), progress=progress,
                  accelerator="auto", devices=1, max_steps=steps, **settings)
    if record is not None:
        curve = [{k: float(v) for k, v in row.items()} for row in getattr(module, record)]
        if cache:
            save_cached(path, {"model": module.model.state_dict(), "record": curve})
        return key, module.model, curve
    if cache:
        save_cached(path, module.model.state_dict())
    return key, module.model
