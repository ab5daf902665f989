"""DP-FedAvg clipping and the noised mean: the L2 ball, no-ops inside it, the noise-free mean,
the noise's standard deviation on the mean (z C / m), errors naming the field."""

import numpy as np
import pytest
import torch

from nvrepro.core.tooling.validation import ConfigError
from nvrepro.fl.clipping import clip_update, dp_fedavg_aggregate, update_norm

SHAPES = [(3, 4), (5,), (2, 2, 2)]


def random_update(rng: np.random.Generator, norm: float, dtype=np.float32) -> list[np.ndarray]:
    """A list of arrays of SHAPES whose flat L2 norm is ``norm``."""
    arrays = [rng.normal(size=s) for s in SHAPES]
    scale = norm / np.sqrt(sum(float(np.sum(a**2)) for a in arrays))
    return [(a * scale).astype(dtype) for a in arrays]


def test_every_clipped_update_is_inside_the_ball():
    rng = np.random.default_rng(0)
    for norm in [0.0, 1e-8, 0.3, 0.999, 1.0, 1.001, 7.0, 1e6]:
        for clip in [0.1, 1.0, 5.0]:
            update = random_update(rng, norm, np.float64)
            clipped, original = clip_update(update, clip)
            assert original == pytest.approx(norm, rel=1e-9, abs=1e-12)
            assert update_norm(clipped) <= clip * (1 + 1e-9)
            if norm > clip:  # scaled onto the sphere, direction kept
                assert update_norm(clipped) == pytest.approx(clip, rel=1e-9)
                np.testing.assert_allclose(clipped[0] * norm / clip, update[0], rtol=1e-9)


def test_updates_inside_the_ball_are_unchanged_and_shapes_dtypes_kept():
    rng = np.random.default_rng(1)
    update = random_update(rng, 0.5)
    clipped, _ = clip_update(update, 1.0)
    for before, after in zip(update, clipped):
        assert after.shape == before.shape and after.dtype == before.dtype
        np.testing.assert_array_equal(after, before)
    zeros = [np.zeros(s, dtype=np.float32) for s in SHAPES]
    clipped, norm = clip_update(zeros, 1.0)
    assert norm == 0.0 and all(np.array_equal(a, b) for a, b in zip(clipped, zeros))


def test_the_input_is_not_modified():
    update = random_update(np.random.default_rng(2), 10.0)
    before = [a.copy() for a in update]
    clip_update(update, 1.0)
    assert all(np.array_equal(a, b) for a, b in zip(update, before))


def test_a_torch_state_dict_delta_is_clipped_as_one_vector():
    torch.manual_seed(0)
    update = {"w": torch.randn(4, 3) * 3, "b": torch.randn(3) * 3}
    flat = torch.cat([t.flatten() for t in update.values()])
    clipped, norm = clip_update(update, 1.0)
    assert set(clipped) == {"w", "b"} and clipped["w"].shape == (4, 3)
    assert norm == pytest.approx(float(flat.norm()), rel=1e-6)
    assert float(torch.cat([t.flatten() for t in clipped.values()]).norm()) == pytest.approx(1.0, rel=1e-5)


def test_noise_free_aggregate_is_the_mean_of_clipped_updates():
    rng = np.random.default_rng(3)
    updates = [random_update(rng, n) for n in (0.2, 0.9, 3.0, 50.0)]
    clipped = [clip_update(u, 1.0)[0] for u in updates]
    mean = dp_fedavg_aggregate(updates, 1.0, 0.0, rng=0)
    for i, shape in enumerate(SHAPES):
        assert mean[i].shape == shape and mean[i].dtype == np.float32
        np.testing.assert_allclose(mean[i], np.mean([c[i] for c in clipped], axis=0), rtol=1e-6, atol=1e-7)


def test_noise_std_on_the_mean_is_z_c_over_m():
    """Noise N(0, (z C)^2) on the SUM, divided by m: every coordinate of the mean carries std z C / m.
    Zero updates isolate the noise; 200 seeds x 33 coordinates = 6600 draws, so the sample std is
    within ~2% (1 / sqrt(2 * 6600) relative); 5% is generous."""
    z, clip, m = 1.3, 0.5, 8
    updates = [[np.zeros(s, dtype=np.float64) for s in SHAPES] for _ in range(m)]
    draws = np.concatenate([np.concatenate([a.ravel() for a in dp_fedavg_aggregate(updates, clip, z, rng=seed)])
                            for seed in range(200)])
    assert abs(draws.mean()) < 4 * z * clip / m / np.sqrt(draws.size)
    assert draws.std() == pytest.approx(z * clip / m, rel=0.05)


def test_seed_reproducible_and_generator_accepted():
    rng = np.random.default_rng(4)
    updates = [random_update(rng, 2.0) for _ in range(3)]
    first, again = dp_fedavg_aggregate(updates, 1.0, 1.0, rng=7), dp_fedavg_aggregate(updates, 1.0, 1.0, rng=7)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    out = dp_fedavg_aggregate(updates, 1.0, 1.0, rng=np.random.default_rng(7))
    assert all(np.array_equal(a, b) for a, b in zip(first, out))


def test_num_clients_is_the_divisor():
    """With Poisson sampling the server divides by the expected count, not the realised one."""
    updates = [[np.ones(2)] for _ in range(3)]  # norm sqrt(2) each, clipped to C = 10: unchanged
    assert np.allclose(dp_fedavg_aggregate(updates, 10.0, 0.0, num_clients=6)[0], 0.5)


@pytest.mark.parametrize("call, field", [
    (lambda: clip_update([np.ones(3)], 0.0), "clip_norm"),
    (lambda: clip_update([np.ones(3)], float("inf")), "clip_norm"),
    (lambda: dp_fedavg_aggregate([], 1.0, 1.0), "updates"),
    (lambda: dp_fedavg_aggregate([[np.ones(3)]], 1.0, -0.5), "noise_multiplier"),
    (lambda: dp_fedavg_aggregate([[np.ones(3)]], -1.0, 0.5), "clip_norm"),
    (lambda: dp_fedavg_aggregate([[np.ones(3)]], 1.0, 0.5, num_clients=0), "num_clients"),
    (lambda: dp_fedavg_aggregate([[np.ones(3)], [np.ones(4)]], 1.0, 0.5), r"updates\[1\]"),
])
def test_errors_name_the_field(call, field):
    with pytest.raises(ConfigError, match=rf"^{field}: "):
        call()
