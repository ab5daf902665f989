"""The toy's three training stages, shared by the Cosmos notebooks (after Cosmos-Reason1's post-training stages).

The paper trains the projector on captions with a pretrained ViT and LLM frozen, then general SFT, then
Physical AI SFT, then Physical AI RL. The toy has no pretrained ViT or LLM, so:

1. :func:`caption`: ViT, projector and LM learn to describe single frames (an object's colour, shape
   and position; where a quarter's disc sits): the stand-in for vision pretraining and general SFT;
2. :func:`sft`: from there, with the ViT frozen, supervised fine-tuning on the tasks' questions with
   rule-written reasoning traces (Physical AI SFT);
3. :func:`rl`: GRPO from the SFT weights (Physical AI RL), returning the per-step curves too.

All three go through :func:`~nvrepro.core.training.arms.train_arm` on ``configs/cosmos/``'s YAMLs (the
toy trains the very LightningModules that ``nvrepro fit`` does), cached in the paper profile.
:func:`test_set` is the held-out set every stage is scored on.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from nvrepro.core.tooling.paths import BUILD_DIR, CONFIGS_DIR
from nvrepro.core.training.arms import train_arm
from nvrepro.core.training.yaml_fit import init_args_from_yaml
from nvrepro.cosmos.data import ClipQA

CONFIGS = CONFIGS_DIR / "cosmos"
SFT_YAML = CONFIGS / "toy_sft.yaml"
RL_YAML = CONFIGS / "toy_rl.yaml"
CACHE = BUILD_DIR / "cosmos"
# The code whose changes invalidate cached weights (nvrepro.core.tooling.weight_cache.code_version).
TRAINING_CODE = ("nvrepro.core", "nvrepro.cosmos.clips", "nvrepro.cosmos.data", "nvrepro.cosmos.grpo",
                 "nvrepro.cosmos.module", "nvrepro.cosmos.ontology", "nvrepro.cosmos.rewards",
                 "nvrepro.cosmos.sampling", "nvrepro.cosmos.tasks", "nvrepro.cosmos.training")
CAPTION_LR = 2e-3  # stage 1 learns the ViT from scratch: a higher rate than fine-tuning
TEST_SEED = 20_000  # the held-out clips: one set for every stage and seed

State = tuple[str, Mapping[str, Any]]


def _optim(yaml, **changes) -> dict:
    _, margs = init_args_from_yaml(yaml, "model")
    return {**margs.get("optim", {}), **changes}


def caption(*, seed: int, steps: int, num_train: int, cache: bool = False, progress: bool = False) -> State:
    """Stage 1 (module docstring): ``(key, state_dict)`` of the model trained to caption frames."""
    key, model = train_arm(SFT_YAML, seed=seed, cache_dir=CACHE, steps=steps,
                           data_overrides=dict(stage="caption", num_train=num_train),
                           module_overrides=dict(optim=_optim(SFT_YAML, lr=CAPTION_LR)), cache=cache,
                           progress=progress, code=TRAINING_CODE, threads=2)
    return key, model.state_dict()


def sft(init: State, *, seed: int, steps: int, num_train: int, tasks: Sequence[str] | None = None,
        cache: bool = False, progress: bool = False) -> State:
    """Stage 2 from ``init``: ``(key, state_dict)`` after SFT on ``tasks`` (default all) with the ViT frozen."""
    key, model = train_arm(SFT_YAML, seed=seed, cache_dir=CACHE, steps=steps, init=init,
                           model_overrides=dict(freeze_vision=True),
                           data_overrides=dict(num_train=num_train, tasks=list(tasks) if tasks else None),
                           cache=cache, progress=progress, code=TRAINING_CODE, threads=2)
    return key, model.state_dict()


def rl(init: State, *, seed: int, steps: int, grpo: Mapping[str, Any] | None = None, cache: bool = False,
       progress: bool = False) -> tuple[State, list[dict[str, float]]]:
    """Stage 3, GRPO from ``init`` with ``grpo`` overriding the YAML's settings: ``((key, state_dict),
    history)``, ``history`` one ``{reward, accuracy, format, kl, length, loss}`` per step."""
    _, margs = init_args_from_yaml(RL_YAML, "model")
    settings = {**margs.get("grpo", {}), **(grpo or {})}
    key, model, history = train_arm(RL_YAML, seed=seed, cache_dir=CACHE, steps=steps, init=init,
                                    module_overrides=dict(grpo=settings, seed=seed), cache=cache,
                                    progress=progress, code=TRAINING_CODE, threads=2, record="history")
    return (key, model.state_dict()), history


def test_set(num: int, tasks: Sequence[str] | None = None) -> ClipQA:
    """The held-out questions (the same clips, questions and option orders for every stage and seed)."""
    _, dargs = init_args_from_yaml(SFT_YAML, "data")
    return ClipQA(num, "test", seed=TEST_SEED, tasks=tasks, frame_size=dargs["frame_size"],
                  tokens_per_frame=dargs["tokens_per_frame"])
