"""The generated clips checked from their pixels (positions found by colour), not from the generator's
own bookkeeping: friction slows the object in forward clips, the quarters reassemble into one disc, and
an occluded object comes out (or not) as the truth says."""

import random

import numpy as np
import pytest

from nvrepro.cosmos.clips import COLOURS, CORNERS, arrow_of_time, object_permanence, spatial_puzzle


def _object_x(frame: np.ndarray, colour: str) -> float | None:
    """Mean column of the pixels of ``colour`` (None when there are none)."""
    hit = np.all(frame.astype(int) == np.array(COLOURS[colour]), axis=-1)
    return float(np.nonzero(hit)[1].mean()) if hit.any() else None


@pytest.mark.parametrize("make", [arrow_of_time, spatial_puzzle, object_permanence])
def test_same_generator_state_gives_the_same_clip(make):
    a, b = make(random.Random(5)), make(random.Random(5))
    assert np.array_equal(a.frames, b.frames) and a.truth == b.truth and a.captions == b.captions
    assert a.frames.dtype == np.uint8 and a.frames.shape[1:] == (32, 32, 3)


def test_arrow_of_time_forward_slows_down_and_reversed_speeds_up():
    truths = []
    for seed in range(60):
        clip = arrow_of_time(random.Random(seed))
        xs = [_object_x(f, clip.facts["colour"]) for f in clip.frames]
        steps = np.abs(np.diff(xs))
        assert steps.max() >= 2 and sorted(steps)[0] == 0  # it moves, and one step is at rest
        if clip.truth == "forward":
            assert np.all(np.diff(steps) < 0), (xs, clip.truth)
        else:
            assert np.all(np.diff(steps) > 0), (xs, clip.truth)
        moves = set(np.sign(np.diff(xs))) - {0}
        assert len(moves) == 1  # one direction throughout
        truths.append(clip.truth)
    assert 15 < truths.count("forward") < 45


def test_spatial_puzzle_quarters_reassemble_into_one_centred_disc():
    for seed in range(30):
        clip = spatial_puzzle(random.Random(seed))
        assert sorted(clip.truth) == sorted(CORNERS)
        placed = {corner: clip.frames[k] for k, corner in enumerate(clip.truth)}
        full = np.concatenate([np.concatenate([placed["top-left"], placed["top-right"]], 1),
                               np.concatenate([placed["bottom-left"], placed["bottom-right"]], 1)], 0)
        disc = None
        for colour in COLOURS.values():
            mask = np.all(full.astype(int) == np.array(colour), axis=-1)
            if mask.sum() > 300:
                disc = mask
        assert disc is not None
        ys, xs = np.nonzero(disc)
        # the disc's centre lies near the middle of the reassembled frame, so it spans all four quarters
        assert abs(xs.mean() - 32) < 10 and abs(ys.mean() - 32) < 10
        assert disc[:32, :32].any() and disc[:32, 32:].any() and disc[32:, :32].any() and disc[32:, 32:].any()


def test_object_permanence_from_pixels():
    seen = set()
    for seed in range(80):
        clip = object_permanence(random.Random(seed))
        colour = clip.facts["colour"]
        xs = [_object_x(f, colour) for f in clip.frames]
        behind = len(clip.frames) // 2
        assert xs[0] is not None and xs[behind] is None  # seen first, hidden behind the wall
        after = clip.frames[-1]
        violation = clip.facts["violation"]
        seen.add(violation)
        if violation is None:
            assert clip.truth == "plausible" and xs[-1] is not None
            # constant speed: it comes out where the first two frames say
            assert abs((xs[-1] - xs[0]) / (len(xs) - 1) - (xs[1] - xs[0])) <= 1.5
        else:
            assert clip.truth == "implausible" and xs[-1] is None
            others = [c for c in COLOURS if c != colour and _object_x(after, c) is not None]
            assert (violation == "changes") == bool(others)
    assert seen == {None, "vanishes", "changes"}


def test_bad_sizes_and_frame_counts_are_refused():
    with pytest.raises(ValueError, match="size"):
        arrow_of_time(random.Random(0), size=8)
    with pytest.raises(ValueError, match="frames"):
        arrow_of_time(random.Random(0), frames=2)
    with pytest.raises(ValueError, match="frames"):
        object_permanence(random.Random(0), frames=9)
