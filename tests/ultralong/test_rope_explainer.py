"""The RoPE explainer's tables, explorer callback and exercise checkers."""

import math

import matplotlib.pyplot as plt
import pytest
import torch

from nvrepro.ultralong import exercises
from nvrepro.ultralong.rope_scaling import rope_scaling_table, rope_summary, unseen_angle_fraction
from nvrepro.ultralong.figures import rope_explorer


def test_unseen_angle_fraction_closed_form():
    L = 100
    w = torch.tensor([2 * math.pi / 10, 2 * math.pi / (2 * L), 2 * math.pi / (8 * L)], dtype=torch.float64)
    # 10 turns in training: all seen. Half a turn, 4x longer: the other half is new. 1/8 of a turn,
    # 4x longer: 4/8 swept, 1/8 seen -> 3/8 new. Interpolated by 4: nothing new.
    assert unseen_angle_fraction(w, w, 4.0, L) == pytest.approx([0.0, 0.5, 0.375])
    assert unseen_angle_fraction(w / 4, w, 4.0, L) == pytest.approx([0.0, 0.0, 0.0])


def test_summary_of_the_ultralong_setting():
    a = exercises.ultralong_attention()
    s, L = a.rope_factor, a.rope_original_max_len
    table = rope_scaling_table(a.head_dim, a.rope_theta, s, L, a.rope_alpha, a.rope_beta)
    summary = rope_summary(table)
    # Rotations by hand: r_i = L / (2 pi theta^(2i/D)).
    r = [L / (2 * math.pi * a.rope_theta ** (2 * i / a.head_dim)) for i in range(a.head_dim // 2)]
    assert summary["linear"]["fastest_ratio"] == pytest.approx(1 / s) and summary["linear"]["max_unseen"] == 0
    assert summary["ntk"]["fastest_ratio"] == 1 and summary["ntk"]["slowest_ratio"] == pytest.approx(1 / s)
    assert summary["yarn"]["unchanged_pairs"] == sum(x > a.rope_beta for x in r)
    assert summary["yarn"]["interpolated_pairs"] == sum(x < a.rope_alpha for x in r)
    assert summary["yarn"]["max_unseen"] == 0 < summary["ntk"]["max_unseen"] < summary["none"]["max_unseen"]
    assert summary["yarn"]["attention_factor"] == pytest.approx(0.1 * math.log(s) + 1)


def test_explorer_callback_draws_three_panels_even_when_alpha_passes_beta():
    fig = rope_explorer(head_dim=64, theta=10000.0, original_max_len=512, s=16.0, alpha=8.0, beta=2.0)
    assert len(fig.axes) == 3 and all(ax.get_xlabel() for ax in fig.axes)
    plt.close(fig)


def test_exercise_checkers():
    a = exercises.ultralong_attention()
    assert exercises.check_pi_wavelength(None, verbose=False).ok is None
    assert exercises.check_pi_wavelength(2 * math.pi * a.rope_factor, verbose=False)
    wrong = exercises.check_pi_wavelength(2 * math.pi, verbose=False)
    assert wrong.ok is False and "before scaling" in wrong.message

    def todo(hd, theta, s):
        raise NotImplementedError

    def pi(hd, theta, s):
        return theta ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd) / s

    def ntk(hd, theta, s):
        return (theta * s ** (hd / (hd - 2))) ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)

    assert exercises.check_ntk_inv_freq(todo, verbose=False).ok is None
    assert "that is PI" in exercises.check_ntk_inv_freq(pi, verbose=False).message
    assert exercises.check_ntk_inv_freq(ntk, verbose=False)

    base = torch.tensor([a.rope_theta ** (-2 * i / a.head_dim) for i in range(a.head_dim // 2)])
    r = a.rope_original_max_len * base / (2 * math.pi)
    assert exercises.check_yarn_untouched(int((r > a.rope_beta).sum()), verbose=False)
    assert exercises.check_yarn_untouched(a.head_dim // 2, verbose=False).ok is False
    assert exercises.check_yarn_untouched(None, verbose=False).ok is None
