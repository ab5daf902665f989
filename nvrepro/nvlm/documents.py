"""Document-like images drawn with Pillow, with OCR-like and layout questions (the toy stand-in for
NVLM's OCR and document-understanding data: OCRBench, DocVQA, ChartQA).

A document is a form of ``cols x rows`` cells, each ``cell_size`` pixels square, so its aspect ratio
varies from 1:6 to 6:1 across documents. Each cell holds one entry, a label letter and a two-digit
value (``"C47"``), printed in Pillow's built-in 6 x 11 pixel bitmap font near the cell's top-left
corner (up to ``jitter`` pixels away), on a white page with light cell borders. With ``cell_size`` equal to the tile size, the dynamic
high-resolution tiler (:func:`~nvrepro.core.vision.tiling.tile_image`) cuts one tile per cell at full
resolution, while the thumbnail (and a low-resolution-only model's single tile) shrinks the page by
``max(cols, rows)``: a three-cell-wide form's characters become two pixels wide. That is the
"small text that needs high resolution to read".

Questions (answers in brackets):

* ``ocr``: ``"value of C?"`` [``"47"``]: find a label and read its value;
* ``layout``: ``"row 2 col 1?"`` [``"C47"``]: read the entry at a place in the layout (1-based);
* ``read``: ``"read"`` [``"C47 A12"``]: transcribe every entry in reading order (the OCR part of
  pretraining, NVLM's stage 1, on single-cell pages).

Everything is drawn from ``random.Random(seed)``: the same seed gives the same page, pixel for pixel.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from nvrepro.core.vision.tiling import candidate_grids

QUESTION_TYPES = ("ocr", "layout")  # what the experiments ask; "read" is the pretraining task
KINDS = QUESTION_TYPES + ("read",)
LABELS = string.ascii_uppercase


@dataclass(frozen=True)
class Document:
    """A rendered form: ``image``, its ``grid`` ``(cols, rows)`` and its ``entries`` (label, value) in
    row-major cell order."""

    image: Image.Image
    grid: tuple[int, int]
    entries: tuple[tuple[str, str], ...]

    def entry_at(self, col: int, row: int) -> tuple[str, str]:
        """The (label, value) of the cell at 0-based ``(col, row)``."""
        return self.entries[row * self.grid[0] + col]


@dataclass(frozen=True)
class Question:
    """A question about a document: ``kind`` (one of :data:`QUESTION_TYPES`), ``text`` and ``answer``."""

    kind: str
    text: str
    answer: str


def _font() -> ImageFont.ImageFont:
    # The bitmap font compiled into Pillow: no file to find, the same glyphs everywhere.
    return ImageFont.load_default_imagefont()


def render_document(rng: random.Random, cell_size: int = 32, max_cells: int = 6, jitter: int = 0) -> Document:
    """A random form: a grid drawn uniformly from the grids of at most ``max_cells`` cells (InternVL's
    candidate grids), distinct labels, two-digit values, each entry ``jitter`` pixels or less (at random)
    right of and below its cell's top-left corner (at most as far as the cell allows)."""
    if max_cells < 1:
        raise ValueError(f"max_cells: must be >= 1, got {max_cells}")
    font = _font()
    x0, y0, x1, y1 = font.getbbox("W00")
    text_w, text_h = x1 - x0, y1 - y0
    if cell_size < text_w + 3 or cell_size < text_h + 3:
        raise ValueError(f"cell_size: an entry needs {text_w + 3} x {text_h + 3} pixels, got {cell_size}")
    if jitter < 0:
        raise ValueError(f"jitter: must be >= 0, got {jitter}")
    cols, rows = rng.choice(candidate_grids(max_cells))
    labels = rng.sample(LABELS, cols * rows)
    entries = tuple((label, f"{rng.randrange(10, 100)}") for label in labels)
    image = Image.new("RGB", (cols * cell_size, rows * cell_size), "white")
    draw = ImageDraw.Draw(image)
    for k, (label, value) in enumerate(entries):
        c, r = k % cols, k // cols
        left, top = c * cell_size, r * cell_size
        draw.rectangle((left, top, left + cell_size - 1, top + cell_size - 1), outline=(200, 200, 200))
        x = left + 2 + rng.randrange(min(jitter, cell_size - text_w - 3) + 1)
        y = top + 2 + rng.randrange(min(jitter, cell_size - text_h - 3) + 1)
        draw.text((x - x0, y - y0), label + value, fill="black", font=font)
    return Document(image, (cols, rows), entries)


def ask(document: Document, rng: random.Random, kind: str | None = None) -> Question:
    """A question about ``document`` of ``kind`` (``None``: either, with equal chance) and its answer."""
    if kind is None:
        kind = rng.choice(QUESTION_TYPES)
    if kind not in KINDS:
        raise ValueError(f"kind: must be one of {KINDS}, got {kind!r}")
    if kind == "read":
        return Question(kind, "read", " ".join(label + value for label, value in document.entries))
    cols, rows = document.grid
    col, row = rng.randrange(cols), rng.randrange(rows)
    label, value = document.entry_at(col, row)
    if kind == "ocr":
        return Question(kind, f"value of {label}?", value)
    return Question(kind, f"row {row + 1} col {col + 1}?", label + value)
