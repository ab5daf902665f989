"""The tiling explorer: pick an image size and a maximum tile count, see the grid InternVL's rule chooses,
the tiles and thumbnail, and what one image costs each architecture in tokens.

:func:`describe_tiling` does the work (plain text, testable); :func:`tiling_explorer` wraps it and
:func:`~nvrepro.nvlm.figures.show_tiles` in ipywidgets sliders.
"""

from __future__ import annotations

from PIL import Image

from nvrepro.core.vision.tiling import choose_grid, tile_image
from nvrepro.nvlm.tile_tags import image_token_counts, tile_tags

PAPER_TILE = 448  # InternViT-6B-448px
PAPER_TOKENS_PER_TILE = 256  # 32 x 32 patches, 2x2 pixel shuffle


def describe_tiling(width: int, height: int, max_tiles: int, tile_size: int = PAPER_TILE,
                    tokens_per_tile: int = PAPER_TOKENS_PER_TILE, tag_style: str = "1d") -> str:
    """Lines for one image: the chosen ``cols x rows`` grid, the tags, and per architecture the image
    tokens in the decoder and through cross-attention (tags not counted)."""
    cols, rows = choose_grid(width, height, tile_size, max_tiles)
    thumbnail = cols * rows > 1
    tags = [t for t in tile_tags((cols, rows), tag_style, thumbnail=thumbnail) if t]
    lines = [f"image {width} x {height} (aspect {width / height:.2f}), at most {max_tiles} tiles of {tile_size} px: "
             f"grid {cols} x {rows} (aspect {cols / rows:.2f}) = {cols * rows} tile(s)"
             + (" + thumbnail" if thumbnail else ", no thumbnail"),
             "tags: " + (" ".join(tags) if tags else "(none)"),
             f"tokens per image at {tokens_per_tile} per tile:"]
    for arch, c in image_token_counts((cols, rows), tokens_per_tile, thumbnail=thumbnail).items():
        lines.append(f"  NVLM-{arch}: {c['decoder']:>5,} in the decoder, {c['cross']:>5,} through cross-attention")
    return "\n".join(lines)


def tiling_explorer(image: Image.Image | None = None, tile_size: int = PAPER_TILE,
                    tokens_per_tile: int = PAPER_TOKENS_PER_TILE) -> object:
    """An ipywidgets box: sliders for width, height and maximum tiles (and a tag style); shows
    :func:`describe_tiling` and the tiles of ``image`` resized to that size (default: a blank page with a
    grid, so the crops are visible)."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    from nvrepro.nvlm.figures import show_tiles

    width = widgets.IntSlider(value=1344, min=tile_size // 2, max=6 * tile_size, step=32, description="width")
    height = widgets.IntSlider(value=896, min=tile_size // 2, max=6 * tile_size, step=32, description="height")
    max_tiles = widgets.IntSlider(value=6, min=1, max=12, description="max tiles")
    style = widgets.Dropdown(options=["1d", "2d_grid", "2d_bbox", "none"], value="1d", description="tags")
    out = widgets.Output()

    def page(w: int, h: int) -> Image.Image:
        if image is not None:
            return image.convert("RGB").resize((w, h))
        from PIL import ImageDraw

        blank = Image.new("RGB", (w, h), "white")
        draw = ImageDraw.Draw(blank)
        for x in range(0, w, 64):
            draw.line((x, 0, x, h), fill=(180, 180, 220))
        for y in range(0, h, 64):
            draw.line((0, y, w, y), fill=(220, 180, 180))
        return blank

    def show(change=None) -> None:
        out.clear_output(wait=True)
        with out:
            print(describe_tiling(width.value, height.value, max_tiles.value, tile_size, tokens_per_tile, style.value))
            tiles = tile_image(page(width.value, height.value), tile_size, max_tiles.value)
            tags = tile_tags(tiles.grid, style.value, thumbnail=tiles.thumbnail is not None)
            show_tiles(tiles, tags)
            plt.show()

    for w in (width, height, max_tiles, style):
        w.observe(show, names="value")
    show()
    box = widgets.VBox([widgets.HBox([width, height]), widgets.HBox([max_tiles, style]), out])
    display(box)
    return box
