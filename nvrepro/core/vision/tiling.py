"""Dynamic high-resolution tiling (InternVL 1.5's rule, used by NVLM 1.0, arXiv 2409.11402 Sec. 3.1).

An image of ``W x H`` pixels is resized to a grid of ``cols x rows`` square tiles of ``tile_size`` pixels
and cut into them, plus one global **thumbnail** (the whole image resized to one tile) when there is
more than one tile. The grid is the one among all ``cols x rows`` with ``min_tiles <= cols * rows <=
max_tiles`` whose aspect ratio ``cols / rows`` is closest to ``W / H``; on a tie, the grid with more
tiles wins while the image's area exceeds half of that grid's area (more tiles only when the image
has the pixels to fill them). Candidates are visited by tile count, so the first of equally close
grids with the same count is kept.

Tiles are returned in row-major order (left to right, top to bottom): tile ``k`` is at column ``k %
cols``, row ``k // cols``; NVLM's 1-D tile tags ``<tile_1> .. <tile_k>`` follow this order, and the
thumbnail comes last.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from PIL import Image

from nvrepro.core.tooling.validation import ConfigError

# ImageNet normalization, what InternViT (NVLM's encoder) was trained with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@lru_cache(maxsize=64)
def candidate_grids(max_tiles: int, min_tiles: int = 1) -> tuple[tuple[int, int], ...]:
    """Every ``(cols, rows)`` with ``min_tiles <= cols * rows <= max_tiles``, by increasing tile count."""
    _check_counts(max_tiles, min_tiles)
    grids = [(c, r) for c in range(1, max_tiles + 1) for r in range(1, max_tiles + 1)
             if min_tiles <= c * r <= max_tiles]
    return tuple(sorted(grids, key=lambda g: g[0] * g[1]))


def _check_counts(max_tiles: int, min_tiles: int) -> None:
    if not isinstance(max_tiles, int) or max_tiles < 1:
        raise ConfigError(f"max_tiles: must be an integer >= 1, got {max_tiles!r}")
    if not isinstance(min_tiles, int) or not 1 <= min_tiles <= max_tiles:
        raise ConfigError(f"min_tiles: must be an integer in [1, max_tiles={max_tiles}], got {min_tiles!r}")


def choose_grid(width: int, height: int, tile_size: int, max_tiles: int, min_tiles: int = 1) -> tuple[int, int]:
    """The ``(cols, rows)`` grid for a ``width x height`` image (module docstring); a clear error for an
    image smaller than one tile or a tile count below 1."""
    if not isinstance(tile_size, int) or tile_size < 1:
        raise ConfigError(f"tile_size: must be a positive integer, got {tile_size!r}")
    if width < 1 or height < 1:
        raise ValueError(f"image: needs a positive size, got {width}x{height}")
    if width < tile_size and height < tile_size:
        raise ValueError(f"image: {width}x{height} is smaller than one {tile_size}-pixel tile; tiling would only "
                         "upsample it (resize it, or use a smaller tile_size)")
    aspect = width / height
    area = width * height
    best, best_diff = (1, 1), float("inf")
    for cols, rows in candidate_grids(max_tiles, min_tiles):
        diff = abs(aspect - cols / rows)
        if diff < best_diff:
            best, best_diff = (cols, rows), diff
        elif diff == best_diff and area > 0.5 * tile_size * tile_size * cols * rows:
            best = (cols, rows)
    return best


@dataclass
class Tiles:
    """A tiled image: ``tiles`` (row-major, each ``tile_size`` square), the ``grid`` ``(cols, rows)``
    and the ``thumbnail`` (``None`` for a single tile)."""

    tiles: list[Image.Image]
    grid: tuple[int, int]
    thumbnail: Image.Image | None

    @property
    def images(self) -> list[Image.Image]:
        """The tiles, then the thumbnail: what the encoder sees, in order."""
        return self.tiles + ([self.thumbnail] if self.thumbnail is not None else [])


def tile_image(image: Image.Image, tile_size: int, max_tiles: int, min_tiles: int = 1,
               thumbnail: bool = True, resample: int = Image.Resampling.BICUBIC) -> Tiles:
    """Cut ``image`` into the :func:`choose_grid` tiles (RGB), plus a thumbnail when there is more than
    one tile and ``thumbnail``."""
    image = image.convert("RGB")
    cols, rows = choose_grid(image.width, image.height, tile_size, max_tiles, min_tiles)
    resized = image.resize((cols * tile_size, rows * tile_size), resample=resample)
    tiles = [resized.crop((c * tile_size, r * tile_size, (c + 1) * tile_size, (r + 1) * tile_size))
             for r in range(rows) for c in range(cols)]
    thumb = image.resize((tile_size, tile_size), resample=resample) if thumbnail and len(tiles) > 1 else None
    return Tiles(tiles, (cols, rows), thumb)


def normalize(pixels: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """uint8 (or 0..255) pixels ``(..., 3, H, W)`` -> float32 scaled to [0, 1] and normalized per channel."""
    mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return (pixels.float() / 255.0 - mean) / std


def to_tensor(images: list[Image.Image], mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """RGB images of one size -> ``(N, 3, H, W)`` float32, scaled to [0, 1] and normalized per channel."""
    if not images:
        raise ValueError("images: need at least one image")
    arr = np.stack([np.asarray(im.convert("RGB"), dtype=np.uint8) for im in images])
    return normalize(torch.from_numpy(arr).permute(0, 3, 1, 2), mean, std)
