"""Checkers of the exercises of notebooks 02 (c) and 03 (c), the setting-as-argument helper's
validation, and the needle explorer of notebook 02 (selection and plot).

The truths are computed here independently: YaRN's kept pairs from the closed-form pair index
``i(r) = D ln(L / (2 pi r)) / (2 ln theta)`` and a numpy re-implementation of the ramp; Wilson
intervals from their closed form."""

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest

from nvrepro.core.lm.config import model_config_from_yaml
from nvrepro.core.tooling.validation import ConfigError
from nvrepro.ultralong import exercises
from nvrepro.ultralong.explorer import cell_view, format_cell
from nvrepro.ultralong.extension import arm_yaml
from nvrepro.ultralong.figures import plot_niah_cell

Z95 = 1.959963984540054


def wilson_closed_form(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


# --- 02 (c): YaRN at another beta ---------------------------------------------------------------

def _arm():
    return model_config_from_yaml(arm_yaml("yarn")).attention


def _pair_index(r: float, a) -> float:
    return a.head_dim * math.log(a.rope_original_max_len / (2 * math.pi * r)) / (2 * math.log(a.rope_theta))


def _kept(beta: float, a) -> int:
    """Pairs 0 .. floor(i(beta)) keep their frequency (ramp 1), clamped to the pairs there are."""
    return min(max(math.floor(_pair_index(beta, a)) + 1, 0), a.head_dim // 2)


def _squeeze(beta: float, a) -> float:
    """sum_i ln(w_i / w'_i) of YaRN, re-implemented in numpy (ramp linear in i between the floored
    beta index and the ceiled alpha index)."""
    d = a.head_dim
    i = np.arange(d // 2, dtype=float)
    w = a.rope_theta ** (-2 * i / d)
    low = max(math.floor(_pair_index(beta, a)), 0)
    high = min(math.ceil(_pair_index(a.rope_alpha, a)), d - 1)
    g = 1 - np.clip((i - low) / (high - low), 0, 1)
    w2 = (1 - g) * w / a.rope_factor + g * w
    return float(np.log(w / w2).sum())


def test_kept_pairs_closed_form_matches_a_hand_count_at_the_toy_shape():
    # Hand count for L = 256, D = 32, theta = 1e4: r_i = 256 * 1e4^(-i/16) / (2 pi) is 40.7, 22.9,
    # 12.9, 7.2, 4.07, 2.3, ... so beta = 32 keeps pair 0 and beta = 4 keeps pairs 0-4.
    a = _arm()
    if (a.head_dim, a.rope_original_max_len, a.rope_theta) != (32, 256, 10000.0):
        pytest.skip("the toy arm's shape changed; the closed-form tests below still apply")
    assert _kept(32.0, a) == 1 and _kept(4.0, a) == 5


@pytest.mark.parametrize("beta", [32.0, 8.0, 2.0, "config"])
def test_check_yarn_beta_right_answer_passes(beta):
    a = _arm()
    beta = a.rope_beta if beta == "config" else beta
    old, new = _squeeze(a.rope_beta, a), _squeeze(beta, a)
    direction = "same" if math.isclose(old, new, abs_tol=1e-12) else ("more" if new > old else "less")
    check = exercises.check_yarn_beta(_kept(beta, a), direction, beta=beta, verbose=False)
    assert check.ok is True, check.message
    assert f"{_kept(beta, a)} of {a.head_dim // 2} pairs" in check.message


def test_check_yarn_beta_wrong_answers_fail_and_say_why():
    a = _arm()
    beta = 32.0
    kept = _kept(beta, a)
    direction = "more" if _squeeze(beta, a) > _squeeze(a.rope_beta, a) else "less"
    other = "less" if direction == "more" else "more"
    wrong_count = exercises.check_yarn_beta(kept + 1, direction, beta=beta, verbose=False)
    assert wrong_count.ok is False and f"you said {kept + 1} pairs kept" in wrong_count.message
    wrong_dir = exercises.check_yarn_beta(kept, other, beta=beta, verbose=False)
    assert wrong_dir.ok is False and f"interpolates {other!r}" in wrong_dir.message
    if _kept(a.rope_beta, a) != kept:  # the classic slip: the count at the config's beta
        slip = exercises.check_yarn_beta(_kept(a.rope_beta, a), direction, beta=beta, verbose=False)
        assert slip.ok is False and "config's beta" in slip.message
    assert exercises.check_yarn_beta(None, None, beta=beta, verbose=False).ok is None
    assert exercises.check_yarn_beta(float(kept), direction, beta=beta, verbose=False).ok is False
    assert exercises.check_yarn_beta(kept, "toward PI", beta=beta, verbose=False).ok is False
    bad = exercises.check_yarn_beta(kept, direction, beta=a.rope_alpha / 2, verbose=False)
    assert bad.ok is False and bad.message.startswith("beta:")


def test_extension_arm_rejects_bad_settings_before_training():
    with pytest.raises(ConfigError, match="rope_beta"):
        exercises.extension_arm("smoke", 0, method="ntk", rope_beta=32.0)
    with pytest.raises(ConfigError, match="beta"):
        exercises.extension_arm("smoke", 0, rope_beta=0.5 * _arm().rope_alpha)


# --- 03 (c): length upsampling --------------------------------------------------------------------

def _evaluation(correct_per_depth: list[int], samples: int, late: list[float]) -> dict:
    """An evaluate()-shaped dict with one length (s L) and one depth per entry."""
    return {"niah": {"lengths": [8], "depths": [i / max(1, len(correct_per_depth) - 1)
                                                 for i in range(len(correct_per_depth))],
                     "samples": samples, "correct": [[c] for c in correct_per_depth]},
            "ruler": {"lengths": [8], "samples": samples, "correct": {"multikey": [0]}},
            "loss_by_position": {"loss_per_block": [[5.0, x] for x in late]}}


def _ablation_result(recipe: dict, other: dict) -> dict:
    return {"arms": {"separator": recipe, "no_upsampling": other}}


def test_check_upsampling_decides_on_wilson_intervals():
    recipe = _evaluation([5, 5], 5, [4.0, 4.1, 4.2])  # 10/10
    masked = _evaluation([0, 0], 5, [4.5, 4.6, 4.4])  # 0/10
    lo_recipe, _ = wilson_closed_form(10, 10)
    _, hi_masked = wilson_closed_form(0, 10)
    assert lo_recipe > hi_masked  # so the mask lowers accuracy, decided
    res = _ablation_result(recipe, masked)
    assert exercises.check_upsampling(True, res, verbose=False).ok is True
    wrong = exercises.check_upsampling(False, res, verbose=False)
    assert wrong.ok is False and "you predicted False" in wrong.message

    # masked 10/10 against a recipe at 5/10: the masked arm's whole interval is above 0.5
    recipe_half = _evaluation([3, 2], 5, [4.0, 4.1])
    masked_full = _evaluation([5, 5], 5, [4.0, 4.1])
    assert wilson_closed_form(10, 10)[0] >= 0.5
    res_half = _ablation_result(recipe_half, masked_full)
    assert exercises.check_upsampling(False, res_half, verbose=False).ok is True
    assert exercises.check_upsampling(True, res_half, verbose=False).ok is False


def test_check_upsampling_undecided_cases():
    overlapping = _evaluation([2, 2], 5, [4.0, 4.1])  # 4/10: low ~0.17 < 0.3, recipe high > 0.4
    res = _ablation_result(_evaluation([2, 1], 5, [4.0, 4.1]), overlapping)  # 3/10
    assert wilson_closed_form(4, 10)[0] < 0.3 and wilson_closed_form(3, 10)[1] > 0.4
    assert exercises.check_upsampling(True, res, verbose=False).ok is None
    zeros = _ablation_result(_evaluation([0, 0], 5, [4.0, 4.1]), _evaluation([0, 0], 5, [4.2, 4.3]))
    none_retrieve = exercises.check_upsampling(True, zeros, verbose=False)
    assert none_retrieve.ok is None and "neither arm" in none_retrieve.message
    # the paired late-loss difference is reported: not upsampled minus upsampled = +0.2 on both blocks
    assert "+0.200" in none_retrieve.message
    assert exercises.check_upsampling(None, res, verbose=False).ok is None
    assert exercises.check_upsampling("yes", res, verbose=False).ok is False


# --- notebook 02's needle explorer -------------------------------------------------------------------

def _extension_result() -> dict:
    """Two methods, lengths 4 and 8 (L = 4), three depths, four probes per cell."""
    def arm(correct, ruler):
        samples = 4
        return {"eval": {"niah": {"lengths": [4, 8], "depths": [0.0, 0.5, 1.0], "samples": samples,
                                  "correct": correct,
                                  "accuracy": [[c / samples for c in row] for row in correct]},
                         "ruler": {"lengths": [4, 8], "samples": 2, "correct": ruler,
                                   "tasks": {t: [c / 2 for c in v] for t, v in ruler.items()}}}}
    return {"short_len": 4, "factor": 2, "lengths": [4, 8],
            "methods": {"none": arm([[4, 0], [3, 1], [4, 0]], {"multikey": [2, 0], "common_words": [1, 0]}),
                        "yarn": arm([[4, 2], [4, 3], [4, 4]], {"multikey": [2, 1], "common_words": [2, 2]})}}


def test_cell_view_selects_the_column_and_its_wilson_intervals():
    view = cell_view(_extension_result(), "yarn", 8)
    assert [round(e.value * e.n) for e in view["passkey"]] == [2, 3, 4]
    for e, k in zip(view["passkey"], [2, 3, 4]):
        assert e.n == 4
        assert (e.low, e.high) == pytest.approx(wilson_closed_form(k, 4), abs=1e-9)
    assert view["passkey_pooled"].value == pytest.approx(9 / 12)
    assert (view["passkey_pooled"].low, view["passkey_pooled"].high) == pytest.approx(wilson_closed_form(9, 12))
    assert {t: e.value for t, e in view["ruler"].items()} == {"multikey": 0.5, "common_words": 1.0}
    assert view["ruler_pooled"].value == pytest.approx(3 / 4) and view["factor"] == 2
    assert "3/4 = 0.75" in format_cell(view)


def test_plot_niah_cell_draws_the_selected_values():
    view = cell_view(_extension_result(), "none", 8)
    fig = plot_niah_cell(view)
    ax, ax_r = fig.axes[:2]
    bars = ax.containers[0]  # the per-depth errorbar
    line, _, (segments,) = bars
    assert list(line.get_xdata()) == [0.0, 0.5, 1.0]
    assert list(line.get_ydata()) == pytest.approx([0 / 4, 1 / 4, 0 / 4])
    for seg, k in zip(segments.get_segments(), [0, 1, 0]):
        assert (seg[0][1], seg[1][1]) == pytest.approx(wilson_closed_form(k, 4), abs=1e-9)
    heights = [p.get_height() for p in ax_r.patches]
    assert heights == pytest.approx([0.0, 0.0])  # multikey 0/2, common words 0/2 at length 8
    plt.close(fig)
    fig = plot_niah_cell(cell_view(_extension_result(), "none", 4))
    assert [p.get_height() for p in fig.axes[1].patches] == pytest.approx([1.0, 0.5])
    plt.close(fig)


def test_cell_view_names_the_bad_argument():
    result = _extension_result()
    with pytest.raises(ConfigError, match=r"^method: 'ntk'"):
        cell_view(result, "ntk", 8)
    with pytest.raises(ConfigError, match=r"^length: 16"):
        cell_view(result, "yarn", 16)


def test_extension_arm_passes_beta_to_the_training():
    """Smoke profile (a step, about 20 s on one thread): the override reaches the model, so the
    trained arm differs from the plain one; the result has the shape the checkers read."""
    import torch

    torch.set_num_threads(1)
    plain = exercises.extension_arm("smoke", 0)
    beta = exercises.extension_arm("smoke", 0, rope_beta=32.0)
    assert beta["loss_by_position"]["loss"][-1] != plain["loss_by_position"]["loss"][-1]
    check = exercises.check_upsampling(True, {"arms": {"separator": plain, "no_upsampling": beta}}, verbose=False)
    assert "passkey at sL" in check.message and "late-position loss" in check.message
