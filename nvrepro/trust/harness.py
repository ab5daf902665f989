"""The harness: question a model with every perspective's probes and turn its answers into the paper's metrics
and 0-100 scores.

    report = evaluate(adapter, seed=0, size=4)      # all eight perspectives, synthetic test probes
    report.scores                                   # {"toxicity": 87.5, ...}

Probes come from each perspective's synthetic generator (``split="test"``: names and wordings a toy model never
saw in training) or, per perspective, from a real dataset (``sources``: a
:class:`~nvrepro.trust.datasets.DatasetSource` per perspective name, e.g. RealToxicityPrompts for toxicity).
Answers go through :func:`~nvrepro.trust.answer_cache.cached_answers`, so with a ``cache_dir`` a rerun with the
same model, probes and generation settings questions nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from nvrepro.core.tooling.paths import BUILD_DIR
from nvrepro.core.tooling.validation import ConfigError, dataclass_from_dict
from nvrepro.trust import registry
from nvrepro.trust.answer_cache import cached_answers
from nvrepro.trust.types import GenerationSettings, ModelAdapter, PerspectiveResult, Probe


def settings_for(name: str, overrides: Mapping[str, Any] | None = None) -> GenerationSettings:
    """Perspective ``name``'s default generation settings with ``overrides`` (keys of
    :class:`~nvrepro.trust.types.GenerationSettings`) applied; an unknown key names ``generation.<name>``."""
    base = registry.perspective(name).settings.to_dict()
    if not overrides:
        return GenerationSettings(**base)
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"generation.{name}: must be a mapping, got {type(overrides).__name__}")
    return dataclass_from_dict(GenerationSettings, {**base, **dict(overrides)}, prefix=f"generation.{name}")


# What a loader's normalised records (nvrepro.trust.datasets) lack to be a perspective's records: fields the
# perspective needs that the dataset cannot have. Enron has no repetition counts (the paper does not control
# them), so its people are marked 0.
_RECORD_GLUE = {
    ("ood_robustness", "ood_style"): lambda r: {**r, "task": "style"},
    ("ood_robustness", "ood_knowledge"): lambda r: {**r, "task": "knowledge"},
    ("privacy", "enron"): lambda r: {"id": r["id"], "scenario": "training_data", "name": r["name"],
                                     "pii_type": "email", "value": r["email"], "repeats": 0},
}
# Perspectives whose probes are built from generated items only (the paper's own demonstration sets are not
# among the loaders).
SYNTHETIC_ONLY = ("adversarial_demonstrations",)


def records_from_sources(name: str, sources: Any) -> list[dict]:
    """Perspective ``name``'s records from one dataset source or a list of them (each a
    :class:`~nvrepro.trust.datasets.DatasetSource` mapping; an optional ``dataset`` key names which dataset it
    holds, default the perspective's own, e.g. ``ood_style`` or ``ood_knowledge`` for OOD robustness)."""
    from nvrepro.trust.datasets import dataset_name, load_records

    if name in SYNTHETIC_ONLY:
        raise ConfigError(f"sources.{name}: no real-dataset loader for this perspective; its probes are synthetic")
    out = []
    for k, source in enumerate(sources if isinstance(sources, (list, tuple)) else [sources]):
        if not isinstance(source, Mapping):
            raise ConfigError(f"sources.{name}[{k}]: must be a mapping (a DatasetSource), got {type(source).__name__}")
        source = dict(source)
        dataset = dataset_name(source.pop("dataset", name))
        glue = _RECORD_GLUE.get((name, dataset), lambda r: r)
        out += [glue(r) for r in load_records(dataset, source)]
    return out


def probes_for(name: str, *, split: str = "test", seed: int = 0, size: int = 4, source: Any = None) -> list[Probe]:
    """The probes of perspective ``name``: synthetic (``split``, ``seed``, ``size``), or built from the records of
    real datasets when ``source`` is given (:func:`records_from_sources`)."""
    if source is None:
        return registry.perspective(name).make_probes(split, seed, size)
    return registry.module(name).probes_from_records(records_from_sources(name, source), seed)


SCORER_CACHE = BUILD_DIR / "trust" / "scorer"


def default_tools(names: Sequence[str], cache_dir: str | Path | None = SCORER_CACHE) -> dict[str, Any]:
    """The scorers the perspectives ``names`` need: the local toxicity scorer when toxicity is among them (its
    fitted head kept in ``cache_dir``, so it is trained once per checkout)."""
    if "toxicity" not in names:
        return {}
    from nvrepro.trust.toxicity_scorer import default_scorer

    return {"toxicity": default_scorer(cache_dir=cache_dir)}


def probes_at_least(name: str, split: str, seed: int, rows: int) -> list[Probe]:
    """Synthetic ``split`` probes of perspective ``name`` with the generator's ``size`` raised until they number
    at least ``rows``, or to the largest size the generator allows (perspectives differ a lot in probes per
    ``size``: the stereotype grid alone has hundreds of cells)."""
    p = registry.perspective(name)
    per_size = max(1, len(p.make_probes(split, seed, 1)))
    size = max(1, -(-rows // per_size))
    while True:
        try:
            return p.make_probes(split, seed, size)
        except ConfigError:  # the generator has fewer distinct items than asked for
            if size == 1:
                raise
            size = max(1, size * 3 // 4)


def balanced_test_probes(name: str, seed: int, rows: int, max_size: int = 64) -> list[Probe]:
    """About ``rows`` test probes of perspective ``name``, the same number from each of its scenarios: the
    generator's ``size`` is doubled until every scenario has ``ceil(rows / scenarios)`` probes (or ``max_size``, or
    the generator's limit, is reached), then each scenario is thinned to that many. A comparison across
    perspectives needs this, whose generators give very different counts per ``size`` and per scenario."""
    from collections import Counter

    make = registry.perspective(name).make_probes
    size, probes = 1, make("test", seed, 1)
    while True:
        counts = Counter(p.scenario for p in probes)
        need = -(-rows // len(counts))
        if min(counts.values()) >= need or size * 2 > max_size:
            break
        try:
            probes, size = make("test", seed, size * 2), size * 2
        except ConfigError:  # the generator has no more distinct items
            break
    return thin(probes, need, seed)


def thin(probes: Sequence[Probe], per_scenario: int | None, seed: int = 0) -> list[Probe]:
    """At most ``per_scenario`` probes of each scenario (a seeded sample, in the original order); ``None``: all.
    Keeps every scenario, which the metrics need (a quick run, e.g. the smoke profile)."""
    if per_scenario is None:
        return list(probes)
    import random

    by_scenario: dict[str, list[int]] = {}
    for i, p in enumerate(probes):
        by_scenario.setdefault(p.scenario, []).append(i)
    rng = random.Random(f"thin/{seed}/{per_scenario}")
    keep = sorted(i for idx in by_scenario.values() for i in (rng.sample(idx, per_scenario)
                                                               if len(idx) > per_scenario else idx))
    return [probes[i] for i in keep]


@dataclass
class TrustReport:
    """One model's outcome: per perspective its :class:`~nvrepro.trust.types.PerspectiveResult`, the generation
    settings used and how many probes it answered."""

    model: str
    results: dict[str, PerspectiveResult]
    settings: dict[str, dict] = field(default_factory=dict)

    @property
    def scores(self) -> dict[str, float]:
        """0-100 score per perspective (higher = more trustworthy), in the paper's order."""
        return {name: self.results[name].score for name in registry.NAMES if name in self.results}

    @property
    def average(self) -> float:
        """Mean of the perspective scores."""
        return sum(self.scores.values()) / len(self.scores)

    def to_dict(self, records: bool = True) -> dict[str, Any]:
        return {"model": self.model, "scores": self.scores, "average": self.average, "settings": self.settings,
                "results": {n: {**r.to_dict(), **({} if records else {"records": []})}
                            for n, r in self.results.items()}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrustReport":
        results = {n: PerspectiveResult(r["perspective"], dict(r["metrics"]), float(r["score"]), list(r["records"]))
                   for n, r in d["results"].items()}
        return cls(d["model"], results, dict(d.get("settings", {})))

    def save(self, path: str | Path) -> Path:
        """Write the report as JSON (with every probe's record) to ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path


def evaluate(adapter: ModelAdapter, perspectives: Sequence[str] | str | None = None, *, seed: int = 0,
             size: int = 4, split: str = "test", generation: Mapping[str, Mapping[str, Any]] | None = None,
             sources: Mapping[str, Any] | None = None, probes: Mapping[str, Sequence[Probe]] | None = None,
             tools: Mapping[str, Any] | None = None, cache_dir: str | Path | None = None,
             progress: bool = False) -> TrustReport:
    """Run ``perspectives`` (default all eight) on ``adapter``.

    ``generation``: per perspective name, overrides of its default :class:`GenerationSettings` (their ``seed``
    defaults to ``seed``); ``sources``: per perspective, a real dataset instead of synthetic probes; ``probes``:
    per perspective, ready probes (wins over both); ``tools``: scorers (default :func:`default_tools`);
    ``cache_dir``: where answers are cached (``None``: no cache)."""
    names = registry.check_names(perspectives)
    generation, sources, probes = dict(generation or {}), dict(sources or {}), dict(probes or {})
    for what, given in (("generation", generation), ("sources", sources), ("probes", probes)):
        for key in given:
            if key not in names:
                raise ConfigError(f"{what}.{key}: not one of the perspectives being run ({', '.join(names)})")
    tools = dict(tools) if tools is not None else default_tools(names)
    results, used = {}, {}
    for name in names:
        settings = settings_for(name, {"seed": seed, **generation.get(name, {})})
        chosen = list(probes[name]) if name in probes else probes_for(
            name, split=split, seed=seed, size=size, source=sources.get(name))
        if not chosen:
            raise ConfigError(f"probes.{name}: no probes to run")
        answers = cached_answers(adapter, chosen, settings, cache_dir=cache_dir, progress=progress)
        results[name] = registry.perspective(name).evaluate(chosen, answers, tools)
        used[name] = {**settings.to_dict(), "probes": len(chosen)}
    return TrustReport(adapter.name, results, used)
