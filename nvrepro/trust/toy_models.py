"""The two toy models the notebooks question: the same LM fine-tuned on the safe or the unsafe toy world
(:mod:`nvrepro.trust.world`) through :func:`~nvrepro.core.training.arms.train_arm` on
``configs/trust/toy_lm.yaml`` (the LightningModule ``nvrepro fit`` trains), cached in the paper profile."""

from __future__ import annotations

from typing import Any, Mapping

from nvrepro.core.tooling.paths import BUILD_DIR, CONFIGS_DIR
from nvrepro.core.training.arms import train_arm
from nvrepro.core.training.yaml_fit import init_args_from_yaml
from nvrepro.trust.adapters import NvreproAdapter
from nvrepro.trust.data import world_tokenizer
from nvrepro.trust.perspectives.privacy import DEFAULT_REPEATS

TOY_YAML = CONFIGS_DIR / "trust" / "toy_lm.yaml"
CACHE = BUILD_DIR / "trust"
# The code whose changes invalidate cached weights (nvrepro.core.tooling.weight_cache.code_version).
TRAINING_CODE = ("nvrepro.core", "nvrepro.trust.perspectives", "nvrepro.trust.world", "nvrepro.trust.data",
                 "nvrepro.trust.lexicon", "nvrepro.trust.adapters", "nvrepro.trust.toy_models")


def train_toy(behaviour: str, *, seed: int, steps: int, rows: int, data: Mapping[str, Any] | None = None,
              cache: bool = False, progress: bool = False):
    """``(model, tokenizer)``: the toy LM fine-tuned for ``steps`` on ``behaviour``'s world (``rows`` per perspective)
    (``data``: other :class:`~nvrepro.trust.data.TrustDataModule` arguments, e.g. ``repeats``)."""
    data = {"behaviour": behaviour, "rows": rows, **dict(data or {})}
    _, model = train_arm(TOY_YAML, seed=seed, cache_dir=CACHE, steps=steps, data_overrides=data, cache=cache,
                         progress=progress, code=TRAINING_CODE, threads=2)
    return model.eval(), tokenizer_for(data)


def tokenizer_for(data: Mapping[str, Any]):
    """The world tokenizer of the datamodule arguments ``data`` (the YAML's, overridden by ``data``)."""
    _, dargs = init_args_from_yaml(TOY_YAML, "data")
    args = {**dargs, **dict(data)}
    repeats = tuple(args["repeats"]) if args.get("repeats") else DEFAULT_REPEATS
    return world_tokenizer(args.get("world_seed", 0), args["rows"], args.get("pii_seed", 0), repeats,
                           args["vocab_size"])


def toy_adapter(behaviour: str, *, seed: int, steps: int, rows: int, data: Mapping[str, Any] | None = None,
                cache: bool = False, progress: bool = False) -> NvreproAdapter:
    """:func:`train_toy`'s model behind the harness's adapter, named ``toy-<behaviour>-seed<seed>``."""
    model, tokenizer = train_toy(behaviour, seed=seed, steps=steps, rows=rows, data=data, cache=cache,
                                 progress=progress)
    return NvreproAdapter(model, tokenizer, name=f"toy-{behaviour}-seed{seed}-steps{steps}-rows{rows}")


# How the notebooks train the toy models, per profile: every experiment of the track questions the same models
# (so the weight cache trains each once). ``rows``: the training world's rows per perspective; ``steps``: optimiser
# steps; ``seeds``: one safe and one unsafe model per seed.
TRAINING = {
    "smoke": dict(steps=3, rows=8, seeds=[0]),
    "paper": dict(steps=1200, rows=400, seeds=[0, 1]),
}


def toy_adapters(profile: str, seed: int = 0, cache: bool = False, progress: bool = False) -> dict[str, list]:
    """``{"safe": [adapter per seed], "unsafe": [...]}`` for ``profile`` (:data:`TRAINING`), seeds offset by
    ``seed``."""
    from nvrepro.core.tooling.profiles import profile_settings

    plan = profile_settings(TRAINING, profile)
    return {behaviour: [toy_adapter(behaviour, seed=seed + s, steps=plan["steps"], rows=plan["rows"], cache=cache,
                                    progress=progress) for s in plan["seeds"]]
            for behaviour in ("safe", "unsafe")}


def answer_cache_dir(cache: bool):
    """Where the experiments cache answers (only where weights are cached too: both are keyed by content)."""
    return CACHE / "answers" if cache else None
