"""``nvrepro trust --config FILE [--out DIR]``: run the harness on one model and write its report.

The YAML (examples in ``configs/trust/``)::

    model:                     # how to reach the model (nvrepro.trust.adapters.adapter_from_config), or
      kind: endpoint           #   kind: toy, behaviour: safe|unsafe, seed, steps, rows (a toy model of the notebooks)
      base_url: http://localhost:8000/v1
      model: my-model
    perspectives: all          # or a list of names (nvrepro.trust.registry.NAMES)
    probes: {seed: 0, size: 4, split: test}
    generation:                # per perspective, overrides of its GenerationSettings
      toxicity: {num_samples: 25, temperature: 1.0, max_new_tokens: 20}
    sources:                   # per perspective, a real dataset instead of synthetic probes (DatasetSource)
      toxicity: {path: json, data_files: [/data/realtoxicityprompts/prompts.jsonl]}
    cache_dir: build/trust/answers   # answers cached per (model, probe, settings); null: no cache
    out_dir: build/trust/report      # report.json and radar.png

Every key is checked: an unknown one is an error that names it.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nvrepro.core.tooling.paths import BUILD_DIR
from nvrepro.core.tooling.validation import ConfigError, dataclass_from_dict, require


@dataclass
class ProbeSettings:
    """Synthetic probes: ``split`` (``"test"``), ``seed`` and ``size`` (about ``size`` probes per cell)."""

    seed: int = 0
    size: int = 4
    split: str = "test"


@dataclass
class TrustRunConfig:
    """A ``nvrepro trust`` YAML (module docstring)."""

    model: dict
    perspectives: Any = "all"
    probes: ProbeSettings = field(default_factory=ProbeSettings)
    generation: dict = field(default_factory=dict)
    sources: dict = field(default_factory=dict)
    cache_dir: str | None = str(BUILD_DIR / "trust" / "answers")
    out_dir: str = str(BUILD_DIR / "trust" / "report")

    def __post_init__(self):
        require(isinstance(self.model, dict) and "kind" in self.model, "model",
                "must be a mapping with a 'kind' (nvrepro, transformers, endpoint or toy)")
        self.probes = dataclass_from_dict(ProbeSettings, self.probes, prefix="probes")


def load_config(path: str | Path) -> TrustRunConfig:
    """The validated config at ``path``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config: no file at {path}")
    data = yaml.safe_load(path.read_text()) or {}
    return dataclass_from_dict(TrustRunConfig, data)


def adapter_for(model: dict):
    """The adapter of a config's ``model`` section; ``kind: toy`` trains (or loads from the weight cache) a toy
    model of the notebooks."""
    if model.get("kind") == "toy":
        from nvrepro.trust.toy_models import toy_adapter

        known = {"kind", "behaviour", "seed", "steps", "rows"}
        unknown = sorted(set(model) - known)
        require(not unknown, f"model.{unknown[0] if unknown else ''}", f"unknown key for kind toy; allowed: {sorted(known)}")
        return toy_adapter(model.get("behaviour", "safe"), seed=int(model.get("seed", 0)),
                           steps=int(model.get("steps", 1200)), rows=int(model.get("rows", 400)), cache=True,
                           progress=True)
    from nvrepro.trust.adapters import adapter_from_config

    return adapter_from_config(model)


def run(config: TrustRunConfig, out_dir: str | Path | None = None):
    """Run the harness as ``config`` says; write ``report.json`` and ``radar.png`` to ``out_dir`` (default the
    config's); return the :class:`~nvrepro.trust.harness.TrustReport`."""
    from nvrepro.trust.figures import plot_radar, score_table
    from nvrepro.trust.harness import evaluate

    adapter = adapter_for(config.model)
    report = evaluate(adapter, config.perspectives, seed=config.probes.seed, size=config.probes.size,
                      split=config.probes.split, generation=config.generation, sources=config.sources,
                      cache_dir=config.cache_dir, progress=True)
    out = Path(out_dir or config.out_dir)
    report.save(out / "report.json")
    if len(report.scores) >= 3:
        fig = plot_radar({report.model: report.scores}, title="DecodingTrust scores")
        fig.savefig(out / "radar.png", dpi=150, bbox_inches="tight")
    print(score_table({report.model: report.scores}))
    print(f"report: {out / 'report.json'}")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nvrepro trust", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the run's YAML (see configs/trust/)")
    parser.add_argument("--out", default=None, help="where report.json and radar.png go (default: the config's out_dir)")
    args = parser.parse_args(argv)
    try:
        run(load_config(args.config), args.out)
    except ConfigError as err:
        print(f"nvrepro trust: {err}")
        return 2
    return 0
