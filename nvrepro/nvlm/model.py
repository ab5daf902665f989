"""The three NVLM architectures on one LM backbone (NVLM 1.0, arXiv 2409.11402, Sec. 4).

Every image arrives as a stack of tiles plus (for more than one tile) a global thumbnail
(:mod:`nvrepro.core.vision.tiling`). Each is encoded by the ViT, pixel-shuffled 2x2 and projected to
the LLM's width by the MLP projector: ``T = (S / P / 2)^2`` tokens per tile. What differs is where those
tokens go:

* **NVLM-D** (decoder-only): every tile's tokens sit in the decoder's sequence, in place of the
  ``image_token_id`` placeholders, each tile after its text tag;
* **NVLM-X** (cross-attention): no image token in the decoder; gated cross-attention layers (``X`` in
  the pattern, ``tanh`` gates at 0) attend to all tiles, and a tile tag's tokens attend only to their
  own tile (a :class:`~nvrepro.core.lm.layers.cross_attention.MaskedContext`);
* **NVLM-H** (hybrid): the thumbnail's tokens in the decoder, the regular tiles through gated
  cross-attention.

The model itself only follows per-image flags, so one class serves all three: ``image_in_decoder``
(b, n) says which images fill placeholders, the rest form the cross-attention context. Which images go
where is the prompt's business (:mod:`nvrepro.nvlm.prompts`), checked against ``architecture`` here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nvrepro.core.lm.config import ModelConfig
from nvrepro.core.lm.layers.cross_attention import MaskedContext
from nvrepro.core.lm.model import PatternLM, base_config, load_base_model, register_model_class
from nvrepro.core.multimodal.vlm import VISION_FIELDS, VisionLM, VisionLMConfig
from nvrepro.core.tooling.validation import require
from nvrepro.nvlm.tile_tags import ARCHITECTURES, image_token_counts

CROSS = "X"


@dataclass
class NVLMConfig(VisionLMConfig):
    """A :class:`~nvrepro.core.multimodal.vlm.VisionLMConfig` (the LM, the ViT, pixel shuffle, projector,
    image placeholder id, ``freeze_vision``; the paper freezes InternViT) plus ``architecture`` (``"D"``,
    ``"X"`` or ``"H"``) and whether the LLM is frozen (``freeze_llm``: its embedding, self-attention and
    FFN layers, norm and head; the cross-attention layers stay trainable; the paper's pretraining
    stage). The projector has 2 layers for NVLM-D and -H and 1 for NVLM-X in the paper.
    NVLM-X and NVLM-H need at least one ``X`` layer in the pattern, NVLM-D none."""

    architecture: str = "D"
    freeze_llm: bool = False

    def validate(self) -> None:
        require(self.architecture in ARCHITECTURES, "architecture",
                f"must be one of {ARCHITECTURES}, got {self.architecture!r}")
        if self.architecture == "D":
            require(CROSS not in self.pattern, "pattern",
                    f"NVLM-D puts image tokens in the decoder and has no cross-attention layer 'X', got {self.pattern!r}")
        else:
            require(CROSS in self.pattern, "pattern",
                    f"NVLM-{self.architecture} needs gated cross-attention layers 'X', got {self.pattern!r}")
        super().validate()

    def info_lines(self, grid: tuple[int, int] = (3, 2)) -> list[str]:
        """What ``nvrepro info`` adds: the image tokens of the paper's 6 tiles + thumbnail (a 3 x 2 grid) in
        the decoder and in cross-attention, for each architecture (tags not counted)."""
        counts = image_token_counts(grid, self.tokens_per_tile)
        tiles = grid[0] * grid[1]
        lines = [f"image tokens for {tiles} tiles + thumbnail ({self.tokens_per_tile} per tile; this config is "
                 f"NVLM-{self.architecture}):"]
        lines += [f"  NVLM-{arch}: {c['decoder']:>6,} in the decoder, {c['cross']:>6,} through cross-attention"
                  for arch, c in counts.items()]
        return lines

    @property
    def text_pattern(self) -> str:
        """The pattern without cross-attention layers: the text LM this model extends."""
        return self.pattern.replace(CROSS, "")


class NVLM(VisionLM):
    """A :class:`~nvrepro.core.multimodal.vlm.VisionLM` whose images may also go to cross-attention
    (module docstring).

    ``forward(input_ids (b, l), cache=None, doc_ids=None, *, inputs_embeds=None, context=None,
    pixel_values=None, image_mask=None, image_in_decoder=None, token_tile=None) -> logits (b, l, V)``.

    * ``pixel_values (b, n, 3, S, S)``: up to ``n`` images (tiles, then the thumbnail) per sample;
    * ``image_mask (b, n)`` bool: which of them exist (default: all);
    * ``image_in_decoder (b, n)`` bool: images whose ``T`` tokens replace, in order, the
      ``image_token_id`` placeholders of ``input_ids``; the others form the cross-attention context;
    * ``token_tile (b, l)`` long: ``k`` for the tokens of image ``k``'s tag (they attend only to image
      ``k`` in cross-attention), ``-1`` for other text (it attends to every context image).

    Without ``pixel_values`` it is the text LM (cross-attention layers see an empty context and add 0).
    """

    def __init__(self, cfg: NVLMConfig):
        super().__init__(cfg)
        if cfg.freeze_llm:
            for part in (self.embed, self.norm_f, self.lm_head, *(b for b in self.layers if b.kind != CROSS)):
                part.requires_grad_(False)

    def forward(self, input_ids: torch.Tensor | None = None, cache=None, doc_ids: torch.Tensor | None = None, *,
                inputs_embeds: torch.Tensor | None = None, context=None,
                pixel_values: torch.Tensor | None = None, image_mask: torch.Tensor | None = None,
                image_in_decoder: torch.Tensor | None = None, token_tile: torch.Tensor | None = None) -> torch.Tensor:
        cfg: NVLMConfig = self.cfg
        if pixel_values is None:
            if CROSS in cfg.pattern and context is None:
                batch = (input_ids if input_ids is not None else inputs_embeds).shape[0]
                param = self.embed.weight
                context = torch.zeros(batch, 0, cfg.d_model, device=param.device, dtype=param.dtype)
            return super().forward(input_ids, cache, doc_ids, inputs_embeds=inputs_embeds, context=context)
        if inputs_embeds is not None or context is not None:
            raise ValueError("pixel_values: give images with input_ids only (not inputs_embeds or context)")
        valid = self.check_pixels(input_ids, pixel_values, image_mask)
        b, n = valid.shape
        if image_in_decoder is None:
            image_in_decoder = torch.full((b, n), cfg.architecture == "D", dtype=torch.bool, device=valid.device)
        in_decoder = image_in_decoder.bool() & valid
        in_context = valid & ~image_in_decoder.bool()
        self._check_routing(in_decoder, in_context)

        features = self.encode_images(pixel_values[valid])  # (N valid, T, d), in (b, n) order
        per_slot = features.new_zeros(b, n, cfg.tokens_per_tile, cfg.d_model)
        per_slot[valid] = features
        # The decoder's images fill the placeholders in (sample, slot) order: the prompt puts them in
        # the sequence in that order.
        embeds = self.embed_with_images(input_ids, per_slot[in_decoder])
        if CROSS in cfg.pattern:
            context = self._context(per_slot, in_context, token_tile, input_ids.shape[1])
        return PatternLM.forward(self, None, cache, doc_ids, inputs_embeds=embeds, context=context)

    def _check_routing(self, in_decoder: torch.Tensor, in_context: torch.Tensor) -> None:
        arch = self.cfg.architecture
        if arch == "D" and bool(in_context.any()):
            raise ValueError("image_in_decoder: NVLM-D has no cross-attention; every image must be in the decoder")
        if arch == "X" and bool(in_decoder.any()):
            raise ValueError("image_in_decoder: NVLM-X puts no image in the decoder; every image goes to "
                             "cross-attention")

    @staticmethod
    def _context(per_slot: torch.Tensor, in_context: torch.Tensor, token_tile: torch.Tensor | None,
                 length: int) -> MaskedContext:
        """Cross-attention context ``(b, n T, d)`` and mask ``(b, l, n T)``: a token sees the context
        images, all of them for ordinary text, only its own for a tag token."""
        b, n, t, d = per_slot.shape
        states = per_slot.reshape(b, n * t, d)
        key_image = torch.arange(n, device=per_slot.device).repeat_interleave(t)  # (n T,)
        key_ok = in_context.repeat_interleave(t, dim=1)  # (b, n T)
        if token_tile is None:
            owner = torch.full((b, length), -1, dtype=torch.long, device=per_slot.device)
        else:
            if token_tile.shape != (b, length):
                raise ValueError(f"token_tile: expected shape (batch={b}, length={length}), got {tuple(token_tile.shape)}")
            owner = token_tile.long()
        sees = (owner[..., None] == -1) | (owner[..., None] == key_image)  # (b, l, n T)
        return MaskedContext(states, sees & key_ok[:, None, :])


register_model_class(NVLMConfig, NVLM)


NVLM_FIELDS = ("architecture", "freeze_llm", *VISION_FIELDS)


def text_config(cfg: NVLMConfig) -> ModelConfig:
    """The plain LM config of an NVLM config: its pattern without ``X`` layers, the same widths."""
    return base_config(cfg, CROSS, NVLM_FIELDS)


def load_text_model(nvlm: NVLM, text_lm: PatternLM) -> NVLM:
    """Start ``nvlm``'s LLM from a trained text LM (:func:`~nvrepro.core.lm.model.load_base_model`): the
    vision side and the cross-attention layers keep their initialisation."""
    return load_base_model(nvlm, text_lm, CROSS, NVLM_FIELDS)
