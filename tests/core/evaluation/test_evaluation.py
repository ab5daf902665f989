"""Answer metrics against SQuAD's definitions worked by hand; intervals against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nvrepro.core.evaluation import Estimate, bootstrap_mean, exact_match, normalize_answer, token_f1, wilson

# --- answers -------------------------------------------------------------------------------


def test_normalisation_drops_case_punctuation_articles_and_extra_space():
    assert normalize_answer("  The  Eiffel-Tower!  ") == "eiffeltower"
    assert normalize_answer("A cat, an owl and THE dog.") == "cat owl and dog"
    assert normalize_answer("theatre") == "theatre"  # articles only as whole words


def test_exact_match_takes_the_best_gold():
    assert exact_match("The Eiffel Tower", "eiffel tower!") == 1.0
    assert exact_match("Paris, France", ["France", "paris france"]) == 1.0
    assert exact_match("Paris", ["France", "Lyon"]) == 0.0


def test_token_f1_by_hand():
    # "the cat sat" -> [cat, sat]; "a cat sat on the mat" -> [cat, sat, on, mat]: P = 1, R = 1/2
    assert token_f1("the cat sat", "a cat sat on the mat") == pytest.approx(2 * 1 * 0.5 / 1.5)
    # multiset overlap: [cat, cat, dog] vs [cat, dog, dog] share cat once and dog once: P = R = 2/3
    assert token_f1("cat cat dog", "cat dog dog") == pytest.approx(2 / 3)
    assert token_f1("nothing shared", "other words") == 0.0
    assert token_f1("x y", ["x", "x y z"]) == pytest.approx(0.8)  # best gold: P = 1, R = 2/3


def test_empty_answers_follow_squad2():
    assert token_f1("the", "an") == 1.0 and exact_match("", "a") == 1.0  # both normalise to ""
    assert token_f1("", "cat") == 0.0 and token_f1("cat", "") == 0.0


def test_answer_errors_are_clear():
    with pytest.raises(ValueError, match="gold: at least one"):
        exact_match("x", [])
    with pytest.raises(TypeError, match="answer: expected a string"):
        normalize_answer(3)


# --- intervals -----------------------------------------------------------------------------


def wilson_closed_form(k: int, n: int, z: float) -> tuple[float, float]:
    """Wilson (1927): (p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@pytest.mark.parametrize("k,n", [(0, 10), (5, 10), (10, 10), (3, 25), (187, 256)])
def test_wilson_matches_the_closed_form(k, n):
    est = wilson(k, n)
    low, high = wilson_closed_form(k, n, 1.959963984540054)
    assert (est.low, est.high) == (pytest.approx(low, abs=1e-9), pytest.approx(high, abs=1e-9))
    assert est.value == k / n and est.n == n and est.method == "wilson"


def test_wilson_published_values_and_judgement():
    # 0 of 10 and 5 of 10 at 95%: the textbook intervals (0, 0.2775) and (0.2366, 0.7634)
    assert wilson(0, 10).high == pytest.approx(0.2775, abs=1e-4)
    assert (wilson(5, 10).low, wilson(5, 10).high) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    # 3 of 10 is not "above 0.25" on its interval, 90 of 100 is
    assert not wilson(3, 10).above(0.25) and wilson(90, 100).above(0.75)
    assert wilson(1, 100).below(0.1) and not wilson(1, 100).below(0.05)  # upper end 0.0545
    assert not wilson(3, 10).below(0.25)


def test_wilson_errors_name_the_field():
    with pytest.raises(ValueError, match="n: must be a positive"):
        wilson(0, 0)
    with pytest.raises(ValueError, match="successes: must be"):
        wilson(11, 10)
    with pytest.raises(ValueError, match="confidence"):
        wilson(1, 10, confidence=1.0)


def test_bootstrap_of_a_normal_sample_matches_the_normal_interval():
    values = np.random.default_rng(1).normal(2.0, 1.0, size=400)
    est = bootstrap_mean(values, seed=0, n_resamples=4000)
    half = 1.96 * values.std(ddof=1) / math.sqrt(values.size)  # the large-sample closed form
    assert est.value == pytest.approx(values.mean())
    assert est.low == pytest.approx(values.mean() - half, abs=0.02)
    assert est.high == pytest.approx(values.mean() + half, abs=0.02)
    assert est.method == "bootstrap-BCa" and est.n == 400


def test_bootstrap_is_seeded_and_handles_degenerate_samples():
    seeds = [0.51, 0.50, 0.76, 0.49, 0.55]
    assert bootstrap_mean(seeds, seed=3) == bootstrap_mean(seeds, seed=3)
    assert bootstrap_mean(seeds, seed=3) != bootstrap_mean(seeds, seed=4)
    flat = bootstrap_mean([0.7, 0.7, 0.7])
    assert flat.low == flat.value == flat.high == pytest.approx(0.7) and flat.method == "constant"
    pct = bootstrap_mean(seeds, method="percentile")
    assert pct.method == "bootstrap-percentile" and pct.low <= pct.value <= pct.high


def test_bootstrap_errors_and_sidecar_form():
    with pytest.raises(ValueError, match="values: need a 1-D sequence of at least 2"):
        bootstrap_mean([1.0])
    with pytest.raises(ValueError, match="values: must all be finite"):
        bootstrap_mean([1.0, float("nan")])
    d = Estimate(0.5, 0.2, 0.8, 0.95, 10, "wilson").to_dict()
    assert d == {"value": 0.5, "low": 0.2, "high": 0.8, "confidence": 0.95, "n": 10, "method": "wilson"}


# --- eval_mode -----------------------------------------------------------------------------


def test_eval_mode_restores_the_training_flag_and_disables_autograd():
    import torch

    from nvrepro.core.evaluation import eval_mode

    torch.manual_seed(0)
    linear = torch.nn.Linear(8, 8)
    layer = torch.nn.Sequential(linear, torch.nn.Dropout(0.5))
    x = torch.ones(64, 8)
    for flag in (True, False):
        layer.train(flag)
        with eval_mode(layer) as m:
            y = m(x)
            assert not m.training and not y.requires_grad  # no graph is built
            assert torch.equal(y, linear(x).detach())  # dropout is off
        assert layer.training is flag
    layer.train(True)
    with pytest.raises(RuntimeError, match="boom"), eval_mode(layer):
        raise RuntimeError("boom")
    assert layer.training  # restored on error too
