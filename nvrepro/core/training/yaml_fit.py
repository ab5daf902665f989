"""Build in Python the objects a LightningCLI YAML describes, as ``nvrepro fit --config FILE`` does.

A notebook that trains an experiment arm reads the same YAML a student passes to the shell, so
the figure and the command line cannot drift apart::

    module = module_from_yaml(path)                  # model.class_path(**model.init_args)
    data = datamodule_from_yaml(path, seed=1)        # data.class_path(**init_args, seed=1)
    trainer = L.Trainer(**trainer_kwargs_from_yaml(path, max_steps=10))
    result = fit_from_yaml(path, seed=0, trainer={"max_steps": 10})   # all of the above + fit

Only the plain ``class_path`` / ``init_args`` layout that LightningCLI reads and writes is
supported (no jsonargparse interpolation). Overrides replace top-level ``init_args`` keys (or
trainer keys); an unknown key raises :class:`~nvrepro.core.lm.config.ConfigError` naming it and the
keys the class accepts. For the model section alone, see
:func:`nvrepro.core.lm.config.model_config_from_yaml`.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import yaml

from nvrepro.core.tooling.validation import ConfigError
from nvrepro.core.training.fitting import quiet_fit


def read_cli_yaml(path) -> dict[str, Any]:
    """The parsed YAML at ``path`` (a dict; ``{}`` for an empty file)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config: no such file {str(path)!r}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"config: {str(path)!r} must hold a mapping, got {type(data).__name__}")
    return data


def import_class(class_path: str):
    """``"package.module.Class"`` -> the class; a clear error when it does not import."""
    module_name, _, name = str(class_path).rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as err:
        raise ConfigError(f"class_path: cannot import {class_path!r} ({err})") from None


def init_args_from_yaml(path, section: str) -> tuple[str, dict[str, Any]]:
    """``(class_path, init_args)`` of the ``model`` or ``data`` section of a LightningCLI YAML."""
    node = read_cli_yaml(path).get(section)
    if not isinstance(node, dict) or "class_path" not in node:
        raise ConfigError(f"{section}: {str(path)!r} has no {section}.class_path "
                          f"(a LightningCLI YAML names its {section} class there)")
    return node["class_path"], dict(node.get("init_args") or {})


def _merge(cls, args: dict[str, Any], overrides: dict[str, Any], where: str) -> dict[str, Any]:
    params = inspect.signature(cls.__init__).parameters
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
    allowed = sorted(n for n in params if n != "self")
    for key in list(args) + list(overrides):
        if key not in params and not takes_kwargs:
            raise ConfigError(f"{where}.{key}: unknown argument of {cls.__name__}; "
                              f"allowed: {allowed}")
    return {**args, **overrides}


def instantiate_from_yaml(path, section: str, **overrides):
    """``class_path(**{**init_args, **overrides})`` of ``section`` (``"model"`` or ``"data"``)."""
    class_path, args = init_args_from_yaml(path, section)
    cls = import_class(class_path)
    return cls(**_merge(cls, args, overrides, f"{section}.init_args"))


def module_from_yaml(path, **overrides):
    """The LightningModule of a YAML (e.g. a :class:`~nvrepro.core.training.module.CausalLMModule`)."""
    return instantiate_from_yaml(path, "model", **overrides)


def datamodule_from_yaml(path, **overrides):
    """The LightningDataModule of a YAML, with ``overrides`` replacing ``init_args`` keys."""
    return instantiate_from_yaml(path, "data", **overrides)


def trainer_kwargs_from_yaml(path, **overrides) -> dict[str, Any]:
    """Keyword arguments for ``lightning.Trainer`` from the YAML's ``trainer`` section.

    Every key must be a ``Trainer`` argument (checked, so a typo fails here as in the CLI).
    """
    node = read_cli_yaml(path).get("trainer") or {}
    if not isinstance(node, dict):
        raise ConfigError(f"trainer: {str(path)!r} must hold a mapping under 'trainer'")
    return _merge(L.Trainer, node, overrides, "trainer")


# --- training an arm from its YAML, quietly, as a notebook wants it ----------------------

# Trainer settings for a run inside a notebook or test (with nvrepro.core.training.fitting.quiet_fit: no
# logger files, checkpoints or bars): no sanity pass, whose numbers would join the curve.
QUIET_TRAINER = dict(num_sanity_val_steps=0)


class MetricCurve(L.Callback):
    """Lightning callback: the logged ``metrics`` at every validation, against the global step.

    ``curve`` is ``{"step": [...], name: [...] for each name}`` (plain floats; NaN if not logged).
    """

    def __init__(self, metrics: tuple[str, ...] = ("val/loss",)):
        self.metrics = tuple(metrics)
        self.curve: dict[str, list] = {"step": [], **{m: [] for m in self.metrics}}

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        self.curve["step"].append(int(trainer.global_step))
        for m in self.metrics:
            value = trainer.callback_metrics.get(m)
            self.curve[m].append(float("nan") if value is None else float(value))


@dataclass
class FitResult:
    """What :func:`fit_from_yaml` returns: the trained module, its data, the validation curve."""

    module: Any
    datamodule: Any
    curve: dict[str, list]
    seconds: float
    steps: int


def fit_from_yaml(path, seed: int, *, trainer: dict | None = None, data: dict | None = None,
                  datamodule=None, metrics: tuple[str, ...] = ("val/loss",)) -> FitResult:
    """Train the module of a LightningCLI YAML on its data with a Lightning ``Trainer``.

    The run ``nvrepro fit --config PATH --seed_everything SEED`` would make, with
    :data:`QUIET_TRAINER` and ``trainer`` overriding the YAML's trainer settings, ``data``
    overriding the data ``init_args`` (``seed`` is set to ``seed`` when the data module takes
    one), and ``datamodule`` (already built, e.g. shared between arms) replacing the YAML's.
    Same seed, same thread count -> the same numbers.
    """
    L.seed_everything(seed, verbose=False)
    if datamodule is None:
        cls = import_class(init_args_from_yaml(path, "data")[0])
        takes_seed = "seed" in inspect.signature(cls.__init__).parameters
        datamodule = datamodule_from_yaml(path, **({"seed": seed} if takes_seed else {}), **(data or {}))
    module = module_from_yaml(path)
    callback = MetricCurve(metrics)
    kwargs = trainer_kwargs_from_yaml(path, **{**QUIET_TRAINER, **(trainer or {})})
    callbacks = list(kwargs.pop("callbacks", None) or []) + [callback]
    kwargs.pop("enable_progress_bar", None)  # the caller shows its own progress
    outcome = quiet_fit(module, datamodule=datamodule, callbacks=callbacks, **kwargs)
    return FitResult(module, datamodule, callback.curve, outcome.seconds, outcome.steps)
