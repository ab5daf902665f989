"""Tile tags: the four styles on a grid by hand, the tag mask against a loop, token counts."""

import pytest
import torch

from nvrepro.core.tooling.validation import ConfigError
from nvrepro.nvlm.tile_tags import image_token_counts, tag_cross_attention_mask, tile_tags


def test_tag_styles_on_a_3x2_grid():
    assert tile_tags((3, 2), "1d") == [f"<tile_{k}>" for k in range(1, 7)] + ["<tile_global_thumbnail>"]
    assert tile_tags((3, 2), "2d_grid", thumbnail=False)[4] == "<tile_x1_y1>"  # row-major: tile 4 is (1, 1)
    assert tile_tags((3, 2), "2d_bbox", thumbnail=False)[5] == "<box>(666,500),(1000,1000)</box>"
    assert tile_tags((3, 2), "none") == [""] * 7
    with pytest.raises(ConfigError, match="tile_tag"):
        tile_tags((1, 1), "3d")


def test_tag_mask_lets_a_tag_see_only_its_tile():
    token_tile = [-1, 0, 0, -1, 2, 1, -1]
    mask = tag_cross_attention_mask(token_tile, tokens_per_tile=3, num_tiles=3)
    assert mask.shape == (7, 9)
    for t, owner in enumerate(token_tile):
        for j in range(9):
            assert bool(mask[t, j]) == (owner == -1 or j // 3 == owner), (t, j)
    with pytest.raises(ValueError, match="token_tile"):
        tag_cross_attention_mask([3], 2, 3)


def test_tag_mask_in_attention_blocks_other_tiles():
    """Through scaled dot-product attention, a tag's output does not change when another tile's
    image tokens change."""
    torch.manual_seed(0)
    mask = tag_cross_attention_mask([1], tokens_per_tile=2, num_tiles=3)
    q = torch.randn(1, 1, 1, 4)
    kv = torch.randn(1, 1, 6, 4)
    kv2 = kv.clone()
    kv2[..., 0:2, :] += 5.0  # tile 0
    kv2[..., 4:6, :] -= 5.0  # tile 2
    a = torch.nn.functional.scaled_dot_product_attention(q, kv, kv, attn_mask=mask)
    b = torch.nn.functional.scaled_dot_product_attention(q, kv2, kv2, attn_mask=mask)
    torch.testing.assert_close(a, b)


def test_token_counts_for_the_papers_six_tiles_and_thumbnail():
    """NVLM: 6 tiles + thumbnail of 256 tokens each (448-pixel tiles, 1,024 patches, 2x2 shuffle)."""
    counts = image_token_counts((3, 2), tokens_per_tile=256, tag_tokens=0)
    assert counts["D"] == {"decoder": 7 * 256, "cross": 0}
    assert counts["X"] == {"decoder": 0, "cross": 7 * 256}
    assert counts["H"] == {"decoder": 256, "cross": 6 * 256}
    assert image_token_counts((1, 1), 256, tag_tokens=3)["D"]["decoder"] == 256 + 3  # no thumbnail for one tile


def test_token_counts_agree_with_the_prompts_placeholders():
    from nvrepro.core.data.tokenizers import ByteTokenizer
    from nvrepro.core.vision.tiling import candidate_grids
    from nvrepro.nvlm.prompts import build_example

    for grid in candidate_grids(6):
        thumb = grid != (1, 1)
        counts = image_token_counts(grid, tokens_per_tile=16)
        for arch in ("D", "X", "H"):
            ex = build_example(ByteTokenizer(), "q", "a", "ocr", grid=grid, has_thumbnail=thumb, architecture=arch,
                               tag_style="1d", tokens_per_tile=16, image_token_id=260)
            assert ex.input_ids.count(260) == counts[arch]["decoder"]
            assert (len(ex.image_in_decoder) - sum(ex.image_in_decoder)) * 16 == counts[arch]["cross"]
