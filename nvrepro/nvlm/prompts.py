"""Token sequences for NVLM-D, -X and -H: where each tile's tag and tokens go.

One example is ``<bos>``, the image block, the question, ``<sep>``, the answer, ``<eos>``; only the
answer and ``<eos>`` are supervised. (A pretrained tokenizer without ``<bos>`` starts at the image
block; one without ``<sep>`` ends the question with a newline.) The image block is, for each image in order (tiles row-major, then
the thumbnail), its tag (:func:`~nvrepro.nvlm.tile_tags.tile_tags`) followed, if the image sits in the
decoder, by ``T`` placeholders that the model fills with the image's projected tokens:

* NVLM-D: every image in the decoder;
* NVLM-X: none (tags only; the images reach the LLM through cross-attention);
* NVLM-H: the global view (the thumbnail, or the only tile when there is one) in the decoder.

:class:`Example` also records which image owns each tag token (``token_tile``), the cross-attention
mask's input. Text-only examples have no image block.
"""

from __future__ import annotations

from dataclasses import dataclass

from nvrepro.nvlm.tile_tags import images_in_decoder, tile_tags


@dataclass
class Example:
    """Token ids, labels (pre-shifted: ``labels[t]`` is the target at position ``t``, ``-100`` where
    unsupervised), ``token_tile`` (image index for tag tokens, ``-1`` otherwise), one
    ``image_in_decoder`` flag per image, and the question ``kind`` (for per-kind scores)."""

    input_ids: list[int]
    labels: list[int]
    token_tile: list[int]
    image_in_decoder: list[bool]
    kind: str


def build_example(tokenizer, question: str, answer: str, kind: str, *, grid: tuple[int, int] | None,
                  has_thumbnail: bool, architecture: str, tag_style: str, tokens_per_tile: int,
                  image_token_id: int) -> Example:
    """The :class:`Example` of one question about an image tiled as ``grid`` (``None``: text-only)."""
    ids = [] if tokenizer.bos_id is None else [tokenizer.bos_id]
    owner = [-1] * len(ids)
    in_decoder: list[bool] = []
    if grid is not None:
        tags = tile_tags(grid, tag_style, thumbnail=has_thumbnail)
        in_decoder = images_in_decoder(architecture, len(tags), has_thumbnail)
        for k, (tag, decoder) in enumerate(zip(tags, in_decoder)):
            tag_ids = tokenizer.encode(tag)
            ids += tag_ids
            owner += [k] * len(tag_ids)
            if decoder:
                ids += [image_token_id] * tokens_per_tile
                owner += [-1] * tokens_per_tile
        ids.append(tokenizer.encode("\n")[0])
        owner.append(-1)
    sep = tokenizer.encode("\n") if tokenizer.sep_id is None else [tokenizer.sep_id]
    prompt = ids + tokenizer.encode(question) + sep
    target = tokenizer.encode(answer) + [tokenizer.eos_id]
    ids = prompt + target
    owner += [-1] * (len(ids) - len(owner))
    labels = [-100] * (len(prompt) - 1) + target + [-100]
    return Example(ids, labels, owner, in_decoder, kind)
