"""The toy's two training stages, shared by every NVLM notebook (NVLM 1.0, Sec. 4.4 and 5).

The paper starts from a pretrained InternViT and a pretrained LLM, trains the projector (and, for X and
H, the cross-attention layers) in a pretraining stage, then fine-tunes the LLM and projector on an SFT
blend with the ViT frozen. The toy has no pretrained ViT, so:

1. :func:`pretrain`: ViT, projector and LLM learn to transcribe single-cell pages (``"read"`` ->
   ``"C47"``; one tile, no tag): what the pretrained vision encoder and the captioning/OCR pretraining
   bring;
2. :func:`finetune`: from those weights, with the ViT frozen (``freeze_vision``), the arm's own SFT on
   forms with its tiling and tags (and, for the retention experiment, text-only instructions).

Both go through :func:`~nvrepro.core.training.arms.train_arm` on the YAMLs of ``configs/nvlm/`` (so the
toy trains the very LightningModule that ``nvrepro fit`` does), cached in the paper profile.
:func:`test_set` is the held-out set every arm is scored on: the same forms and questions for every arm
and seed (so scores pair up), each tiled and tagged the arm's way.
"""

from __future__ import annotations

from typing import Any, Mapping

from nvrepro.core.tooling.paths import BUILD_DIR, CONFIGS_DIR
from nvrepro.core.training.arms import train_arm
from nvrepro.core.training.yaml_fit import init_args_from_yaml
from nvrepro.nvlm.data import DocumentQA

CONFIGS = CONFIGS_DIR / "nvlm"
CACHE = BUILD_DIR / "nvlm"
# The code whose changes invalidate cached weights (nvrepro.core.tooling.weight_cache.code_version).
TRAINING_CODE = ("nvrepro.core", "nvrepro.nvlm.data", "nvrepro.nvlm.documents", "nvrepro.nvlm.evaluation",
                 "nvrepro.nvlm.model", "nvrepro.nvlm.module", "nvrepro.nvlm.prompts", "nvrepro.nvlm.text_tasks",
                 "nvrepro.nvlm.tile_tags", "nvrepro.nvlm.training")
PRETRAIN_LR = 2e-3  # stage 1 learns the ViT from scratch: a higher rate than fine-tuning
TEST_SEED = 10_000  # the held-out forms: one set for every arm and seed


def toy_yaml(architecture: str):
    """``configs/nvlm/toy_<d|x|h>.yaml``."""
    if architecture not in ("D", "X", "H"):
        raise ValueError(f"architecture: must be 'D', 'X' or 'H', got {architecture!r}")
    return CONFIGS / f"toy_{architecture.lower()}.yaml"


def _optim(yaml, **changes) -> dict:
    _, margs = init_args_from_yaml(yaml, "model")
    return {**margs.get("optim", {}), **changes}


def train_text(architecture: str, *, seed: int, steps: int, num_train: int, cache: bool = False,
               progress: bool = False) -> tuple[str, Mapping[str, Any]]:
    """The LLM before it sees images (the retention experiment's starting point): the NVLM of
    ``architecture`` trained on text-only instructions alone (its vision side gets no gradient).
    Returns ``(key, state_dict)``."""
    key, model = train_arm(toy_yaml(architecture), seed=seed, cache_dir=CACHE, steps=steps,
                           data_overrides=dict(text_fraction=1.0, num_train=num_train), cache=cache,
                           progress=progress, code=TRAINING_CODE, threads=2)
    return key, model.state_dict()


def pretrain(architecture: str, *, seed: int, steps: int, num_train: int, cache: bool = False,
             progress: bool = False, init: tuple[str, Mapping[str, Any]] | None = None,
             freeze_llm: bool = False) -> tuple[str, Mapping[str, Any]]:
    """Stage 1 (module docstring): ``(key, state_dict)`` of the trained NVLM of ``architecture``; from
    ``init`` when given, with the LLM frozen when ``freeze_llm`` (as the paper's pretraining stage)."""
    yaml = toy_yaml(architecture)
    key, model = train_arm(yaml, seed=seed, cache_dir=CACHE, steps=steps, init=init,
                           model_overrides=dict(freeze_vision=False, freeze_llm=freeze_llm),
                           data_overrides=dict(max_cells=1, max_tiles=1, tile_tag="none", question_kind="read",
                                               num_train=num_train),
                           module_overrides=dict(optim=_optim(yaml, lr=PRETRAIN_LR)), cache=cache,
                           progress=progress, code=TRAINING_CODE, threads=2)
    return key, model.state_dict()


def finetune(architecture: str, init: tuple[str, Mapping[str, Any]], *, seed: int, steps: int, num_train: int,
             tile_tag: str = "1d", max_tiles: int = 6, text_fraction: float = 0.0, cache: bool = False,
             progress: bool = False, model_overrides: Mapping[str, Any] | None = None):
    """Stage 2 (module docstring) from ``init = (key, state_dict)``: ``(key, model)``."""
    return train_arm(toy_yaml(architecture), seed=seed, cache_dir=CACHE, steps=steps, init=init,
                     model_overrides=dict(freeze_vision=True, **(model_overrides or {})),
                     data_overrides=dict(tile_tag=tile_tag, max_tiles=max_tiles, text_fraction=text_fraction,
                                         num_train=num_train),
                     cache=cache, progress=progress, code=TRAINING_CODE, threads=2)


def test_set(architecture: str, num: int, *, tile_tag: str = "1d", max_tiles: int = 6, text_only: bool = False,
             question_kind: str | None = None) -> DocumentQA:
    """The held-out forms (or, with ``text_only``, instructions) as an arm of ``architecture`` sees them."""
    _, dargs = init_args_from_yaml(toy_yaml(architecture), "data")
    return DocumentQA(num, "test", seed=TEST_SEED, architecture=architecture, tile_tag=tile_tag, max_tiles=max_tiles,
                      tile_size=dargs["tile_size"], tokens_per_tile=dargs["tokens_per_tile"],
                      image_token_id=dargs.get("image_token_id", 260), text_only=text_only,
                      question_kind=question_kind)
