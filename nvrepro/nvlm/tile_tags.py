"""Tile tags (NVLM 1.0, arXiv 2409.11402, Sec. 4.1 and Table 1) and what they cost each architecture.

Dynamic high resolution cuts an image into a ``cols x rows`` grid of tiles plus a global thumbnail
(:func:`nvrepro.core.vision.tiling.tile_image`). Flattened into one sequence, the LLM cannot tell where
one tile ends and the next begins, or where a tile sits in the image; NVLM puts a text tag before each
tile. The paper compares (Table 1):

* ``"none"``: no tags;
* ``"1d"``: ``<tile_1>`` .. ``<tile_k>`` in row-major order, and ``<tile_global_thumbnail>`` (its choice);
* ``"2d_grid"``: ``<tile_x{col}_y{row}>`` (0-based), the thumbnail as in 1-D;
* ``"2d_bbox"``: ``<box>(x0,y0),(x1,y1)</box>``, the tile's box in thousandths of the image's width and
  height, the thumbnail as in 1-D.

In NVLM-X and NVLM-H the tiles reach the LLM through gated cross-attention; there a tag token must
attend only to its own tile's image tokens (:func:`tag_cross_attention_mask`), while ordinary text
attends to every image token.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from nvrepro.core.tooling.validation import ConfigError

TAG_STYLES = ("none", "1d", "2d_grid", "2d_bbox")
THUMBNAIL_TAG = "<tile_global_thumbnail>"
ARCHITECTURES = ("D", "X", "H")


def tile_tags(grid: tuple[int, int], style: str, thumbnail: bool = True) -> list[str]:
    """One tag per tile of the ``(cols, rows)`` grid (row-major), then the thumbnail's (when
    ``thumbnail``); ``"none"`` gives empty strings."""
    if style not in TAG_STYLES:
        raise ConfigError(f"tile_tag: must be one of {TAG_STYLES}, got {style!r}")
    cols, rows = grid
    if cols < 1 or rows < 1:
        raise ValueError(f"grid: needs at least one column and row, got {grid}")
    tags = []
    for k in range(cols * rows):
        c, r = k % cols, k // cols
        if style == "none":
            tags.append("")
        elif style == "1d":
            tags.append(f"<tile_{k + 1}>")
        elif style == "2d_grid":
            tags.append(f"<tile_x{c}_y{r}>")
        else:
            box = (c * 1000 // cols, r * 1000 // rows, (c + 1) * 1000 // cols, (r + 1) * 1000 // rows)
            tags.append(f"<box>({box[0]},{box[1]}),({box[2]},{box[3]})</box>")
    if thumbnail:
        tags.append("" if style == "none" else THUMBNAIL_TAG)
    return tags


def tag_cross_attention_mask(token_tile: Sequence[int] | torch.Tensor, tokens_per_tile: int,
                             num_tiles: int) -> torch.Tensor:
    """``(l, num_tiles * tokens_per_tile)`` bool, ``True`` where a text token may attend to an image
    token: ``token_tile[t]`` is ``k`` for a token of tile ``k``'s tag (it sees only tile ``k``'s
    tokens, which are ``k * tokens_per_tile .. (k + 1) * tokens_per_tile - 1`` in the context) and
    ``-1`` for ordinary text (it sees every image token)."""
    owner = torch.as_tensor(token_tile, dtype=torch.long)
    if owner.dim() != 1:
        raise ValueError(f"token_tile: expected a 1-D sequence, got shape {tuple(owner.shape)}")
    if tokens_per_tile < 1 or num_tiles < 1:
        raise ValueError(f"tokens_per_tile, num_tiles: must be >= 1, got {tokens_per_tile}, {num_tiles}")
    if len(owner) and (owner.min() < -1 or owner.max() >= num_tiles):
        raise ValueError(f"token_tile: entries must be -1 or a tile in [0, {num_tiles}), got {owner.tolist()}")
    image_tile = torch.arange(num_tiles * tokens_per_tile) // tokens_per_tile  # (m,)
    return (owner[:, None] == -1) | (owner[:, None] == image_tile[None, :])


def images_in_decoder(architecture: str, num_images: int, has_thumbnail: bool) -> list[bool]:
    """Which of ``num_images`` images (tiles, then the thumbnail if ``has_thumbnail``) go in the decoder:
    all for NVLM-D, none for NVLM-X, the global view for NVLM-H (the thumbnail, or the only tile of a
    one-tile image, which is the whole image)."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture: must be one of {ARCHITECTURES}, got {architecture!r}")
    if architecture == "D":
        return [True] * num_images
    if architecture == "X":
        return [False] * num_images
    global_view = num_images - 1 if has_thumbnail or num_images == 1 else None
    return [k == global_view for k in range(num_images)]


def image_token_counts(grid: tuple[int, int], tokens_per_tile: int, tag_tokens: int = 0,
                       thumbnail: bool = True) -> dict[str, dict[str, int]]:
    """Per architecture, the tokens one image adds to the decoder's sequence (``decoder``) and to the
    cross-attention context (``cross``), by :func:`images_in_decoder`: NVLM-D puts every tile and the
    thumbnail in the decoder, NVLM-X puts them all in the cross-attention context, NVLM-H puts the
    thumbnail (the global view) in the decoder and the regular tiles in the context. A one-tile image has
    no thumbnail. ``tag_tokens``: the text tokens of one image's tag (in the decoder in all three)."""
    cols, rows = grid
    tiles = cols * rows
    thumb = thumbnail and tiles > 1
    images = tiles + thumb
    counts = {}
    for arch in ARCHITECTURES:
        in_decoder = sum(images_in_decoder(arch, images, thumb))
        counts[arch] = {"decoder": in_decoder * tokens_per_tile + images * tag_tokens,
                        "cross": (images - in_decoder) * tokens_per_tile}
    return counts
