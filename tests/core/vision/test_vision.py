"""Vision core: tiling against transformers' GOT-OCR2 image processor (the InternVL crop-to-patches
rule) on many aspect ratios, pixel shuffle against an einops reference, the projector and ViT shapes,
and the errors."""

import numpy as np
import pytest
import torch
from einops import rearrange
from PIL import Image

from nvrepro.core.tooling.validation import ConfigError
from nvrepro.core.vision.pixel_shuffle import pixel_shuffle
from nvrepro.core.vision.projector import MLPProjector
from nvrepro.core.vision.tiling import candidate_grids, choose_grid, tile_image, to_tensor
from nvrepro.core.vision.vit import ViTConfig, ViTEncoder

transformers = pytest.importorskip("transformers")
from transformers.image_utils import PILImageResampling, SizeDict  # noqa: E402
from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import (  # noqa: E402
    GotOcr2ImageProcessorPil, get_optimal_tiled_canvas)

SIZES = [(w, h) for w in (64, 90, 128, 200, 333, 448, 640, 1000, 1920) for h in (64, 77, 150, 256, 480, 700, 1080)]


@pytest.mark.parametrize("max_tiles", [1, 2, 4, 6, 12])
def test_grid_matches_transformers_on_many_aspect_ratios(max_tiles):
    for w, h in SIZES:
        for tile in (32, 64):
            if w < tile and h < tile:
                continue
            theirs = get_optimal_tiled_canvas((h, w), (tile, tile), 1, max_tiles)  # (cols, rows)
            assert choose_grid(w, h, tile, max_tiles) == tuple(theirs), (w, h, tile, max_tiles)


def test_tiles_and_thumbnail_match_transformers_pixel_for_pixel():
    proc = GotOcr2ImageProcessorPil()
    rng = np.random.default_rng(0)
    for w, h in [(500, 300), (300, 500), (640, 64), (64, 640), (128, 128), (1000, 210)]:
        img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        theirs = proc.crop_image_to_patches(np.asarray(img), 1, 6, use_thumbnail=True,
                                            patch_size=SizeDict(height=64, width=64),
                                            resample=PILImageResampling.BICUBIC)
        ours = tile_image(img, 64, 6).images
        assert len(ours) == len(theirs), (w, h)
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_grid_rule_by_hand():
    assert candidate_grids(4) == ((1, 1), (1, 2), (2, 1), (1, 3), (3, 1), (1, 4), (2, 2), (4, 1))
    assert choose_grid(1000, 250, 100, 6) == (4, 1)   # 4:1 exactly
    assert choose_grid(300, 300, 100, 6) == (2, 2)    # square: more tiles while the image fills them
    assert choose_grid(120, 120, 100, 6) == (1, 1)    # a small square image stays one tile
    t = tile_image(Image.new("RGB", (1000, 250)), 100, 6)
    assert t.grid == (4, 1) and len(t.tiles) == 4 and t.thumbnail.size == (100, 100)
    assert tile_image(Image.new("RGB", (120, 120)), 100, 6).thumbnail is None


def test_tiling_errors():
    with pytest.raises(ValueError, match="smaller than one 64-pixel tile"):
        choose_grid(50, 40, 64, 6)
    with pytest.raises(ConfigError, match="max_tiles"):
        choose_grid(500, 400, 64, 0)
    with pytest.raises(ConfigError, match="min_tiles"):
        choose_grid(500, 400, 64, 2, min_tiles=3)
    with pytest.raises(ConfigError, match="tile_size"):
        choose_grid(500, 400, 0, 2)


def test_pixel_shuffle_matches_einops_and_internvl_order():
    x = torch.randn(2, 8, 6, 5)
    ref = rearrange(x, "b (i p) (j q) c -> b i j (p q c)", p=2, q=2)
    torch.testing.assert_close(pixel_shuffle(x), ref, rtol=0, atol=0)
    # token (i, j) holds input tokens (2i + p, 2j + q) in (p, q, c) order
    out = pixel_shuffle(x)
    torch.testing.assert_close(out[1, 2, 1].reshape(2, 2, 5), x[1, 4:6, 2:4], rtol=0, atol=0)
    with pytest.raises(ValueError, match="factor"):
        pixel_shuffle(torch.randn(1, 5, 4, 3))


def test_encoder_projector_shapes_and_normalization():
    cfg = ViTConfig(image_size=32, patch_size=8, d_model=16, n_layers=1, n_heads=2)
    enc = ViTEncoder(cfg)
    imgs = to_tensor(tile_image(Image.new("RGB", (64, 32), (255, 255, 255)), 32, 4).images)
    assert imgs.shape == (3, 3, 32, 32)  # 2 tiles + thumbnail
    torch.testing.assert_close(imgs[0, :, 0, 0], (1 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225]))
    tokens = enc(imgs)
    assert tokens.shape == (3, 4, 4, 16)
    shuffled = pixel_shuffle(tokens)
    assert shuffled.shape == (3, 2, 2, 64)
    assert MLPProjector(64, 24)(shuffled).shape == (3, 2, 2, 24)
    with pytest.raises(ValueError, match="images"):
        enc(torch.randn(1, 3, 16, 16))
    with pytest.raises(ConfigError, match="patch_size"):
        ViTConfig(image_size=30, patch_size=8)


def test_encoder_is_bidirectional():
    """Changing the last patch changes the first patch's output (no causal mask)."""
    torch.manual_seed(0)
    enc = ViTEncoder(ViTConfig(image_size=16, patch_size=8, d_model=16, n_layers=1, n_heads=2)).eval()
    x = torch.randn(1, 3, 16, 16)
    y = x.clone()
    y[..., 8:, 8:] += 1.0
    with torch.no_grad():
        assert not torch.allclose(enc(x)[0, 0, 0], enc(y)[0, 0, 0])
