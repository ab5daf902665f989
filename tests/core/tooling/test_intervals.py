"""Two-sample bootstrap intervals (the others are tested with the claims)."""

import pytest


def test_two_sample_bootstrap_difference_agrees_with_welch():
    """For normal samples the percentile bootstrap of a difference of means is close to Welch's t
    interval (an independent closed form); a constant shift moves it exactly."""
    import numpy as np
    from scipy import stats

    from nvrepro.core.tooling.intervals import bootstrap_difference

    rng = np.random.default_rng(4)
    a, b = rng.normal(1.0, 1.0, 200), rng.normal(0.5, 2.0, 300)
    est = bootstrap_difference(a, b)
    welch = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert est.value == pytest.approx(a.mean() - b.mean())
    assert est.low == pytest.approx(welch.low, abs=0.05) and est.high == pytest.approx(welch.high, abs=0.05)
    shifted = bootstrap_difference(a + 3, b)
    assert shifted.low == pytest.approx(est.low + 3) and shifted.n == 200
    with pytest.raises(ValueError, match="b"):
        bootstrap_difference(a, [1.0])
