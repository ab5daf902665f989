"""A decoder-only vision-language model: images as tokens in the LM's sequence (LLaVA / InternVL style).

Each image (a tile, a thumbnail, a video frame) is encoded by the ViT, pixel-shuffled ``f x f`` and
projected to the LM's width by the MLP projector: ``T = (S / P / f)^2`` tokens per image
(:attr:`VisionLMConfig.tokens_per_tile`). Those tokens replace, in order, the ``image_token_id``
placeholders of the prompt, so the LM sees text and image tokens in one sequence. NVLM-D (NVLM 1.0,
Sec. 4.2) and Cosmos-Reason1 (Sec. 4.1: ViT -> 2x2 downsample -> 2-layer MLP -> Nemotron-H) are this
model; NVLM-X and -H extend it with cross-attention (:mod:`nvrepro.nvlm.model`).

With a cache the prompt (with its images) is prefilled once and later tokens decode as plain text:
``model.generate(input_ids, n, pixel_values=...)`` passes the images to the prefill only; any pattern
(``M``, ``*``, ``-``) works.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from nvrepro.core.lm.config import ModelConfig
from nvrepro.core.lm.model import PatternLM, register_model_class
from nvrepro.core.tooling.validation import dataclass_from_dict, require, require_positive_int
from nvrepro.core.vision.pixel_shuffle import pixel_shuffle
from nvrepro.core.vision.projector import MLPProjector
from nvrepro.core.vision.vit import ViTConfig, ViTEncoder


@dataclass
class VisionLMConfig(ModelConfig):
    """An LM (``pattern``, widths) plus the vision side: the ViT (``vision``), the pixel-shuffle factor
    (``shuffle``), the projector's hidden width (``projector_hidden``; ``None``: ``d_model``), its linear
    layers (``projector_layers``: 1 or 2) and whether they have biases (``projector_bias``), the
    placeholder id of an image token (``image_token_id``) and whether the ViT is frozen
    (``freeze_vision``)."""

    vision: ViTConfig = field(default_factory=ViTConfig)
    shuffle: int = 2
    projector_hidden: int | None = None
    projector_layers: int = 2
    projector_bias: bool = True
    image_token_id: int = 260
    freeze_vision: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.vision, dict):
            self.vision = dataclass_from_dict(ViTConfig, self.vision, "vision")
        super().__post_init__()

    def validate(self) -> None:
        super().validate()
        require_positive_int(self.shuffle, "shuffle")
        require(self.vision.grid % self.shuffle == 0, "shuffle",
                f"must divide the ViT's {self.vision.grid} x {self.vision.grid} token grid, got {self.shuffle}")
        require(self.projector_hidden is None or (isinstance(self.projector_hidden, int) and self.projector_hidden > 0),
                "projector_hidden", f"must be a positive int or null, got {self.projector_hidden!r}")
        require(self.projector_layers in (1, 2), "projector_layers", f"must be 1 or 2, got {self.projector_layers!r}")
        require(0 <= self.image_token_id < self.vocab_size, "image_token_id",
                f"must be an id in [0, vocab_size={self.vocab_size}), got {self.image_token_id}")

    @property
    def tokens_per_tile(self) -> int:
        """LM tokens per image after the pixel shuffle."""
        return (self.vision.grid // self.shuffle) ** 2

    def info_lines(self) -> list[str]:
        """What ``nvrepro info`` adds: the LM tokens one image costs."""
        v = self.vision
        return [f"image tokens: {self.tokens_per_tile} per image ({v.image_size} px, {v.patch_size}-px patches: "
                f"{v.grid} x {v.grid}, then {self.shuffle}x{self.shuffle} pixel shuffle)"]


# The fields VisionLMConfig adds to ModelConfig (what a text-only view of the config drops).
VISION_FIELDS = ("vision", "shuffle", "projector_hidden", "projector_layers", "projector_bias", "image_token_id",
                 "freeze_vision")


class VisionLM(PatternLM):
    """A :class:`PatternLM` with a ViT and an MLP projector (module docstring).

    ``forward(input_ids (b, l), cache=None, doc_ids=None, *, inputs_embeds=None, context=None,
    pixel_values=None, image_mask=None) -> logits (b, l, V)``: ``pixel_values (b, n, 3, S, S)`` are up
    to ``n`` images per sample, ``image_mask (b, n)`` bool says which exist (default: all); every
    existing image's ``T`` tokens fill, in order, ``T`` placeholders of its sample. Without
    ``pixel_values`` it is the text LM.
    """

    def __init__(self, cfg: VisionLMConfig):
        super().__init__(cfg)
        self.vision = ViTEncoder(cfg.vision)
        self.projector = MLPProjector(cfg.vision.d_model * cfg.shuffle ** 2, cfg.d_model, cfg.projector_hidden,
                                      cfg.projector_layers, cfg.projector_bias)
        if cfg.freeze_vision:
            self.vision.requires_grad_(False)

    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``(N, 3, S, S)`` -> ``(N, T, d_model)``: ViT, pixel shuffle, projector."""
        patches = self.vision(pixel_values)  # (N, G, G, C)
        shuffled = pixel_shuffle(patches, self.cfg.shuffle)  # (N, G/f, G/f, C f^2)
        return self.projector(shuffled.flatten(1, 2))

    def embed_with_images(self, input_ids: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """``(b, l, d_model)``: the embedded ``input_ids`` with the placeholders replaced, in row-major
        (sample, position) order, by ``features (N, T, d_model)`` (each sample's images in order)."""
        placeholders = input_ids == self.cfg.image_token_id
        expected = features.shape[0] * features.shape[1]
        if int(placeholders.sum()) != expected:
            raise ValueError(f"input_ids: {int(placeholders.sum())} image placeholders (id {self.cfg.image_token_id}) "
                             f"but the images need {expected} ({features.shape[0]} images x {features.shape[1]} tokens)")
        embeds = self.embed(input_ids.masked_fill(placeholders, 0))
        return embeds.masked_scatter(placeholders[..., None], features.to(embeds.dtype))

    def check_pixels(self, input_ids: torch.Tensor | None, pixel_values: torch.Tensor,
                     image_mask: torch.Tensor | None) -> torch.Tensor:
        """The ``(b, n)`` bool mask of existing images, after checking ``pixel_values``' shape."""
        if input_ids is None:
            raise ValueError("pixel_values: give images with input_ids (their placeholders say where they go)")
        if pixel_values.dim() != 5 or pixel_values.shape[0] != input_ids.shape[0]:
            raise ValueError(f"pixel_values: expected (batch={input_ids.shape[0]}, n, 3, S, S), "
                             f"got {tuple(pixel_values.shape)}")
        b, n = pixel_values.shape[:2]
        if image_mask is None:
            return torch.ones(b, n, dtype=torch.bool, device=pixel_values.device)
        return image_mask.bool()

    def forward(self, input_ids: torch.Tensor | None = None, cache=None, doc_ids: torch.Tensor | None = None, *,
                inputs_embeds: torch.Tensor | None = None, context=None,
                pixel_values: torch.Tensor | None = None, image_mask: torch.Tensor | None = None) -> torch.Tensor:
        if pixel_values is None:
            if input_ids is not None and bool((input_ids == self.cfg.image_token_id).any()):
                raise ValueError("pixel_values: input_ids hold image placeholders but no images were given")
            return super().forward(input_ids, cache, doc_ids, inputs_embeds=inputs_embeds, context=context)
        if inputs_embeds is not None:
            raise ValueError("pixel_values: give images with input_ids, not inputs_embeds")
        valid = self.check_pixels(input_ids, pixel_values, image_mask)
        embeds = self.embed_with_images(input_ids, self.encode_images(pixel_values[valid]))
        return super().forward(None, cache, doc_ids, inputs_embeds=embeds, context=context)


register_model_class(VisionLMConfig, VisionLM)
