"""The machinery of the toy context-extension experiments (notebooks 02 and 03; UltraLong Sec. 3-4
at toy scale): profiles, training, rescaling and evaluation. The experiments themselves (``run``,
summaries, claims) are :mod:`nvrepro.ultralong.context_extension` (notebook 02) and
:mod:`nvrepro.ultralong.ablations` (notebook 03), which share the profiles here because notebook 03
starts from the same base and evaluates on the same grids.

1. The base: the toy Llama-like model of ``configs/ultralong/toy_base.yaml``, a language model *and*
   a retriever at its trained context ``L`` (:mod:`nvrepro.ultralong.base`, which trains it and
   measures both), on the corpus's own BPE. Its tokenizer is the one every probe and every loss of
   the extension arms uses (:func:`tokenizer`).
2. For each RoPE scaling (``configs/ultralong/toy_extend_{none,linear,ntk,yarn}.yaml``): copy the
   weights, change only the RoPE scaling and ``max_seq_len`` to ``s L``, and continue pretraining
   briefly (:mod:`nvrepro.ultralong.extension_recipe`: length-upsampled text packed to ``s L`` with a
   separator and no cross-document mask, interleaved with retrieval documents up to ``s L``). The
   same seed gives every arm the same data order.
3. Evaluate each arm: passkey accuracy on a grid of lengths x depths (the heatmaps), RULER-style
   accuracy per length, and the loss on short documents at ``L`` (before: the base model; after
   scaling alone; after the continued pretraining). Every arm answers the same probes.

In the paper profile, trained weights are cached under ``build/ultralong/`` keyed by everything
that determines them (YAML text, overrides, steps, seed, the parent's key, and the version of the
training code) by :mod:`nvrepro.core.tooling.weight_cache`, loaded with ``weights_only=True``; a fresh
clone simply trains them, and the smoke profile never reads or writes the cache. Notebook 03
reuses the base and the YaRN arm.
"""

from __future__ import annotations

from pathlib import Path

from nvrepro.core.lm.model import PatternLM
from nvrepro.core.tooling.paths import BUILD_DIR, CONFIGS_DIR
from nvrepro.core.tooling.timing import num_threads
from nvrepro.core.tooling.profiles import profile_settings
from nvrepro.core.tooling.validation import ConfigError
from nvrepro.core.tooling.weight_cache import use_cache
from nvrepro.core.training.arms import train_arm
from nvrepro.core.lm.config import model_config_from_yaml
from nvrepro.core.training.yaml_fit import datamodule_from_yaml, init_args_from_yaml, module_from_yaml, read_cli_yaml
from nvrepro.ultralong.base import BASE_YAML, TRAINING_CODE as BASE_TRAINING_CODE, train_base
from nvrepro.ultralong.evaluate import greedy_predictor, loss_by_position, niah_grid, ruler_scores, short_context_loss
from nvrepro.ultralong.rope_scaling import METHODS

CONFIGS = CONFIGS_DIR / "ultralong"
CACHE = BUILD_DIR / "ultralong"
# The code whose changes invalidate cached weights (nvrepro.core.tooling.weight_cache.code_version):
# the base's, and the continued-pretraining recipe; evaluation and experiment edits keep the arms.
TRAINING_CODE = (*BASE_TRAINING_CODE, "nvrepro.ultralong.extension_recipe")

# Steps and evaluation grids per profile; ``None`` steps = the YAML's trainer.max_steps; the base is
# nvrepro.ultralong.base's profile of the same name. ``samples`` probes per heatmap cell, so
# ``samples * len(depths)`` passkeys per length. Smoke scores two long blocks, the fewest a
# bootstrap interval over blocks takes, so the claims' interval path runs in the smoke test too.
# ``num_seeds``: training seeds of the headline comparison (YaRN, NTK-aware, none at s L), each with
# its own base (the seed draws the base's corpus split, BPE and data order); the first seed also
# gives the full grids of every method.
# ``further_factor``: the scale of notebook 02's step beyond s (the headline methods, first seed).
# RULER-style tasks: multikey only in the paper profile. The base answers 0 of 150 variable-tracking
# and 0 of 150 common-words probes at L (three training seeds, issue 19), so at s L those tasks
# could only add zeros to the pooled RULER-style share.
PROFILES = {
    "smoke": dict(extend_steps=1, depths=[0.5], samples=1, lengths_factor=[1, 8], short_blocks=2, long_blocks=2,
                  max_documents=200, ruler_tasks=["multikey"], num_seeds=1, further_factor=16),
    "paper": dict(extend_steps=None, max_documents=None, depths=[0.0, 0.25, 0.5, 0.75, 1.0], samples=10,
                  lengths_factor=[1, 2, 4, 8], short_blocks=32, long_blocks=8, ruler_tasks=["multikey"],
                  num_seeds=3, further_factor=16),
}


def plan(profile: str) -> dict:
    """The settings of ``profile`` (:data:`PROFILES`); a clear error for an unknown one."""
    return profile_settings(PROFILES, profile)


def arm_yaml(method: str) -> Path:
    """``configs/ultralong/toy_extend_<method>.yaml``."""
    if method not in METHODS:
        raise ConfigError(f"method: must be one of {', '.join(METHODS)}, got {method!r}")
    return CONFIGS / f"toy_extend_{method}.yaml"


def short_len() -> int:
    """The base's trained context ``L`` (``toy_base.yaml``'s ``max_seq_len``)."""
    return int(init_args_from_yaml(BASE_YAML, "model")[1]["model"]["max_seq_len"])


def data_overrides(p: dict) -> dict:
    """The ``data.init_args`` overrides of a profile's plan (a smaller corpus in smoke)."""
    return {} if p["max_documents"] is None else {"max_documents": p["max_documents"]}


def train(yaml: Path, *, seed: int, steps: int | None = None, init: tuple[str, dict] | None = None,
          model_overrides: dict | None = None, data_overrides: dict | None = None,
          cache: bool = False, progress: bool = False) -> tuple[str, PatternLM]:
    """Train the arm of ``yaml`` (from ``init = (key, state_dict)`` if given); returns ``(key, model)``.

    ``model_overrides`` replace keys of ``model.init_args.model`` (e.g. the RoPE scaling),
    ``data_overrides`` keys of ``data.init_args``; ``steps`` defaults to ``trainer.max_steps``.
    With ``cache`` (callers decide it with :func:`~nvrepro.core.tooling.weight_cache.use_cache`), weights
    are loaded from, or saved to, ``build/ultralong/`` (:func:`nvrepro.core.training.arms.train_arm`).
    """
    return train_arm(yaml, seed=seed, cache_dir=CACHE, steps=steps, init=init, model_overrides=model_overrides,
                     data_overrides=data_overrides, cache=cache, progress=progress, code=TRAINING_CODE)


def pretrain_base(profile: str = "smoke", seed: int = 0, cache: bool | None = None, progress: bool = False
                  ) -> tuple[str, PatternLM]:
    """The base of ``toy_base.yaml`` for training seed ``seed``: ``(key, model)``
    (:func:`nvrepro.ultralong.base.train_base`, the profile of the same name; weights cached in the
    paper profile only, :func:`~nvrepro.core.tooling.weight_cache.use_cache`)."""
    key, model, _ = train_base(profile, seed=seed, cache=use_cache(profile, cache), progress=progress)
    return key, model


def tokenizer(seed: int = 0, max_documents: int | None = None):
    """The base's BPE tokenizer for ``seed`` (trained on that seed's training split of the corpus)."""
    return datamodule_from_yaml(BASE_YAML, seed=seed, max_documents=max_documents).tokenizer


def short_docs(seed: int = 0, max_documents: int | None = None) -> tuple[list[list[int]], int]:
    """Validation documents (token ids of the base's tokenizer) of the base's corpus split for
    ``seed``, and the separator id."""
    dm = datamodule_from_yaml(BASE_YAML, seed=seed, max_documents=max_documents)
    _, val = dm._split_docs()
    return [dm.tokenizer.encode(d) for d in val], dm.sep_id


def rescale(model: PatternLM, method: str) -> PatternLM:
    """``model``'s weights in the architecture of ``toy_extend_<method>.yaml`` (scaling only, no training)."""
    module = module_from_yaml(arm_yaml(method), init_from=None)
    module.model.load_state_dict(model.state_dict())
    return module.model


def evaluate(model: PatternLM, profile: str, seed: int = 0, docs=None, tok=None, factors=None,
             progress: bool = False) -> dict:
    """Needle grid, RULER-style scores, short-context loss (mean and per block) and loss by
    position in the longest blocks of ``model`` (profile's grids), probes and text in the base's
    tokenizer ``tok`` (default: :func:`tokenizer` of ``seed``).

    Lengths are ``k L`` for ``k`` in ``factors`` (default: the profile's ``lengths_factor``; the
    headline scores ``[s]`` only); evaluation uses a seed offset from training's so no probe was
    seen in training, and every model evaluated with the same seed answers the same probes.
    """
    p, L0 = plan(profile), short_len()
    factors = list(p["lengths_factor"] if factors is None else factors)
    lengths = [int(k * L0) for k in factors]
    docs, sep = docs or short_docs(seed, p["max_documents"])
    tok = tok or tokenizer(seed, p["max_documents"])
    predict = greedy_predictor(model)
    with num_threads(1):
        niah = niah_grid(predict, lengths, p["depths"], p["samples"], seed=1000 + seed, tokenizer=tok,
                         progress=progress)
        ruler = ruler_scores(predict, lengths, p["ruler_tasks"], p["samples"] * len(p["depths"]), seed=1000 + seed,
                             tokenizer=tok, progress=progress)
        short = short_context_loss(model, docs, L0, sep, max_blocks=p["short_blocks"])
        by_pos = loss_by_position(model, docs, lengths[-1], sep, max_blocks=p["long_blocks"])
    return {"niah": niah, "ruler": ruler, "short_loss": short["loss"], "short_loss_per_block": short["per_block"],
            "loss_by_position": by_pos}


def arm_stage(yaml: str | Path, steps: int, seq_len: int) -> list[dict]:
    """The curriculum of the arm of ``yaml`` (one stage) with ``steps`` steps at ``seq_len`` tokens."""
    (stage,) = read_cli_yaml(yaml)["data"]["init_args"]["curriculum"]
    return [stage | {"steps": steps, "seq_len": seq_len}]


def stretched(yaml: str | Path, factor: float, steps: int) -> tuple[dict, dict]:
    """``(model_overrides, data_overrides)`` that train the arm of ``yaml`` at ``factor * L`` tokens
    for ``steps`` steps: ``max_seq_len`` and the rows at that length, and the RoPE scale ``factor``
    (the arm without scaling keeps its RoPE). Only the length and the scale change."""
    n = int(round(factor * short_len()))
    scaling = model_config_from_yaml(yaml).attention.rope_scaling
    model = {"max_seq_len": n, "attention": {} if scaling == "none" else {"rope_factor": float(factor)}}
    return model, {"seq_len": n, "curriculum": arm_stage(yaml, steps, n)}


def at_extended_length(evaluation: dict) -> dict:
    """The counts and per-block values of one :func:`evaluate` result at the longest length
    ``s L`` that the claims are judged on: passkey probes answered and asked (``niah_correct_at_sL``,
    ``niah_probes_at_sL``: every depth's samples pooled), RULER-style probes answered and asked
    (every task's samples pooled), and the loss in the last position bin of each long block
    (``late_loss_per_block``)."""
    niah, ruler = evaluation["niah"], evaluation["ruler"]
    return {"niah_correct_at_sL": sum(row[-1] for row in niah["correct"]),
            "niah_probes_at_sL": niah["samples"] * len(niah["depths"]),
            "ruler_correct_at_sL": sum(counts[-1] for counts in ruler["correct"].values()),
            "ruler_probes_at_sL": ruler["samples"] * len(ruler["correct"]),
            "late_loss_per_block": [row[-1] for row in evaluation["loss_by_position"]["loss_per_block"]]}
