"""Short generated clips for Cosmos-Reason1's intuitive-physics tasks (from the paper's intuitive-physics benchmark), drawn with Pillow.

Every clip is a few ``size x size`` RGB frames, uint8 ``(n, size, size, 3)``, with its ground truth, drawn
from a :class:`random.Random` (the same generator state gives the same clip):

* :func:`arrow_of_time`: an object slides across the frame and friction brings it to rest (its steps
  shrink by the same amount each frame, constant deceleration, the last step 0); ``reversed`` clips play
  the frames backwards, so the object starts from rest and speeds up with nothing pushing it. Direction (left/right) is random, so only the
  change of speed tells the two apart.
* :func:`spatial_puzzle`: a frame (``2 size x 2 size``: a large disc near the centre, clutter around it)
  cut into its four quarters, shown in a shuffled order; which image held which corner is the puzzle
  (each quarter holds a quarter of the disc, whose curve points outwards).
* :func:`object_permanence`: an object moves at constant speed behind a wall; in a ``plausible`` clip the
  same object comes out where its speed says, otherwise it vanishes or a different object comes out.

Each frame also gets a short ``caption`` (the object's colour, shape and position, or the quarter's
corner): what the toy's first training stage learns to read.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

COLOURS = {"red": (230, 60, 50), "green": (60, 200, 80), "blue": (70, 110, 240), "yellow": (235, 210, 60)}
SHAPES = ("ball", "box")
CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")
WALL = (150, 150, 150)


@dataclass
class Clip:
    """``frames`` uint8 ``(n, S, S, 3)``; ``truth``: the task's ground truth (see each generator);
    ``captions``: one per frame; ``facts``: what the reasoning trace may cite."""

    frames: np.ndarray
    truth: object
    captions: list[str]
    facts: dict = field(default_factory=dict)


def _canvas(rng: random.Random, width: int, height: int) -> Image.Image:
    """A dark background with a little pixel noise (so a frame is never a flat colour)."""
    base = np.array([rng.randint(10, 50) for _ in range(3)], dtype=np.int16)
    noise = np.random.default_rng(rng.getrandbits(32)).integers(-8, 9, size=(height, width, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


def _draw_object(draw: ImageDraw.ImageDraw, shape: str, colour: str, cx: float, cy: float, radius: int) -> None:
    box = (round(cx - radius), round(cy - radius), round(cx + radius), round(cy + radius))
    if shape == "ball":
        draw.ellipse(box, fill=COLOURS[colour])
    else:
        draw.rectangle(box, fill=COLOURS[colour])


def _check_size(size: int, smallest: int) -> None:
    if not isinstance(size, int) or size < smallest:
        raise ValueError(f"size: frames must be at least {smallest} pixels, got {size!r}")


def arrow_of_time(rng: random.Random, size: int = 32, frames: int = 4) -> Clip:
    """Constant deceleration to rest: step ``k`` (frame ``k`` -> ``k + 1``) is ``(n - 2 - k) * slowdown``
    pixels for ``n`` frames, so the last step is 0. ``truth``: ``"forward"`` or ``"reversed"``."""
    _check_size(size, 24)
    if frames < 3:
        raise ValueError(f"frames: need at least 3 frames to see a change of speed, got {frames}")
    radius = 2
    steps_total = frames - 1
    while True:
        slowdown = rng.randint(2, 6)
        steps = [slowdown * (steps_total - 1 - k) for k in range(steps_total)]
        if sum(steps) <= size - 2 * radius - 4:
            break
    start = rng.randint(radius + 2, size - radius - 2 - sum(steps))
    xs = [start + sum(steps[:k]) for k in range(frames)]
    leftwards = rng.random() < 0.5
    if leftwards:
        xs = [size - 1 - x for x in xs]
    y = rng.randint(radius + 2, size - radius - 3)
    colour, shape = rng.choice(sorted(COLOURS)), rng.choice(SHAPES)
    background = _canvas(rng, size, size)
    images = []
    for x in xs:
        im = background.copy()
        _draw_object(ImageDraw.Draw(im), shape, colour, x, y, radius)
        images.append(im)
    truth = "reversed" if rng.random() < 0.5 else "forward"
    if truth == "reversed":
        images, xs = images[::-1], xs[::-1]
    captions = [f"{colour} {shape} x{x:02d}" for x in xs]
    shown_steps = [abs(b - a) for a, b in zip(xs, xs[1:])]
    return Clip(np.stack([np.asarray(im) for im in images]), truth, captions,
                {"steps": shown_steps, "xs": xs, "colour": colour, "shape": shape})


def spatial_puzzle(rng: random.Random, size: int = 32) -> Clip:
    """Four ``size``-pixel quarters of a ``2 size`` frame, shuffled. ``truth``: ``order``, the corner
    shown by image ``k`` (``order[k]`` in :data:`CORNERS`)."""
    _check_size(size, 16)
    full = 2 * size
    im = _canvas(rng, full, full)
    draw = ImageDraw.Draw(im)
    for _ in range(rng.randint(2, 4)):  # clutter: small boxes away from the centre
        w, h = rng.randint(2, size // 4), rng.randint(2, size // 4)
        x, y = rng.randint(0, full - w - 1), rng.randint(0, full - h - 1)
        draw.rectangle((x, y, x + w, y + h), fill=tuple(rng.randint(60, 200) for _ in range(3)))
    jitter = size // 5
    cx, cy = size + rng.randint(-jitter, jitter), size + rng.randint(-jitter, jitter)
    radius = rng.randint(size // 2, 3 * size // 4)
    draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=COLOURS[rng.choice(sorted(COLOURS))])
    pixels = np.asarray(im)
    quarters = {"top-left": pixels[:size, :size], "top-right": pixels[:size, size:],
                "bottom-left": pixels[size:, :size], "bottom-right": pixels[size:, size:]}
    order = list(CORNERS)
    rng.shuffle(order)
    opposite = {"top-left": "bottom-right", "top-right": "bottom-left", "bottom-left": "top-right",
                "bottom-right": "top-left"}
    captions = [f"disc at {opposite[c]}" for c in order]
    return Clip(np.stack([quarters[c] for c in order]), order, captions, {"order": order})


def object_permanence(rng: random.Random, size: int = 32, frames: int = 4) -> Clip:
    """An object at constant speed passes behind a wall in the middle. ``truth``: ``"plausible"`` (the
    same object comes out where its speed puts it) or ``"implausible"`` (it vanishes, or another
    object comes out); ``facts["violation"]``: ``None``, ``"vanishes"`` or ``"changes"``."""
    _check_size(size, 24)
    if frames < 3:
        raise ValueError(f"frames: need at least 3 frames (before, behind, after the wall), got {frames}")
    radius = 2
    wall_width = 2 * radius + 4
    wall_left = size // 2 - wall_width // 2
    centre = wall_left + wall_width / 2
    behind = frames // 2  # the frame where the object is fully behind the wall
    slowest = wall_width // 2 + 1  # slower, and the object would still be behind the wall a frame later
    fastest = int((centre - radius - 1) / behind)  # faster, and the first frame would cut it off
    if fastest < slowest:
        raise ValueError(f"frames: {frames} frames of an object crossing a {size}-pixel frame at a visible "
                         f"speed do not fit; use fewer frames or a larger size")
    speed = rng.randint(slowest, fastest)
    xs = [centre + (k - behind) * speed for k in range(frames)]
    hidden = [k == behind for k in range(frames)]
    leftwards = rng.random() < 0.5
    if leftwards:
        xs = [size - 1 - x for x in xs]
    y = rng.randint(radius + 3, size - radius - 4)
    colour, shape = rng.choice(sorted(COLOURS)), rng.choice(SHAPES)
    truth = "plausible" if rng.random() < 0.5 else "implausible"
    violation = None if truth == "plausible" else rng.choice(("vanishes", "changes"))
    other_colour = rng.choice(sorted(set(COLOURS) - {colour}))
    other_shape = rng.choice(SHAPES)
    background = _canvas(rng, size, size)
    images, captions = [], []
    for k, x in enumerate(xs):
        im = background.copy()
        draw = ImageDraw.Draw(im)
        seen_colour, seen_shape, visible = colour, shape, not hidden[k]
        if k > behind and violation == "vanishes":
            visible = False
        if k > behind and violation == "changes":
            seen_colour, seen_shape = other_colour, other_shape
        if visible:
            _draw_object(draw, seen_shape, seen_colour, x, y, radius)
        draw.rectangle((wall_left, 0, wall_left + wall_width - 1, size - 1), fill=WALL)
        images.append(im)
        captions.append(f"{seen_colour} {seen_shape} x{round(x):02d}" if visible else "wall only")
    return Clip(np.stack([np.asarray(im) for im in images]), truth, captions,
                {"violation": violation, "colour": colour, "shape": shape,
                 "emerged": None if violation == "vanishes" else f"{other_colour if violation else colour} "
                                                                 f"{other_shape if violation else shape}"})
