"""Two-sample bootstrap intervals (the others are tested with the claims)."""

import math

import pytest
from scipy import stats

from nvrepro.core.tooling.intervals import seed_difference, seed_interval


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


def test_stratified_bootstrap_of_a_mean_matches_the_normal_interval():
    import numpy as np

    from nvrepro.core.tooling.intervals import stratified_bootstrap

    values = np.random.default_rng(3).normal(2.0, 1.0, size=400)
    est = stratified_bootstrap([range(400)], lambda idx: float(values[idx].mean()), n_resamples=2000)
    half = 1.96 * values.std(ddof=1) / np.sqrt(400)  # closed-form normal interval of a mean
    assert est.value == pytest.approx(values.mean())
    assert (est.high - est.low) / 2 == pytest.approx(half, rel=0.12)
    assert est.low < values.mean() < est.high


def test_stratified_bootstrap_keeps_every_stratum_whole():
    from nvrepro.core.tooling.intervals import stratified_bootstrap

    strata = [[0, 1, 2], [3, 4], [5]]
    seen = []

    def count_per_stratum(idx):
        seen.append([sum(i in s for i in idx) for s in strata])
        return 0.0

    est = stratified_bootstrap(strata, count_per_stratum, n_resamples=50)
    assert all(c == [3, 2, 1] for c in seen)  # each resample keeps every stratum's size
    assert (est.low, est.high, est.n) == (0.0, 0.0, 6)
    with pytest.raises(ValueError, match="strata"):
        stratified_bootstrap([[], [1]], count_per_stratum)


T_975 = {2: 12.706204736174705, 3: 4.302652729749464}  # Student-t quantiles by n (tables)


def test_seed_interval_is_student_t():
    est = seed_interval([1.0, 2.0, 3.0])
    half = T_975[3] * 1.0 / math.sqrt(3)  # sd of 1, 2, 3 is 1
    assert (est.value, est.low, est.high, est.n, est.method) == pytest.approx((2.0, 2 - half, 2 + half, 3, "student-t"))
    est = seed_interval([0.5, -0.5])  # sd sqrt(0.5)
    assert est.high == pytest.approx(T_975[2] * math.sqrt(0.5) / math.sqrt(2))
    assert seed_interval([0.25, 0.25, 0.25]).low == 0.25
    with pytest.raises(ValueError, match="values"):
        seed_interval([1.0])


def test_seed_difference_is_welchs_interval():
    a, b = [0.8, 0.6, 0.7], [0.2, 0.5, 0.1]
    # Welch written out: se^2 = s_a^2/n_a + s_b^2/n_b, Satterthwaite's degrees of freedom
    va, vb = stats.tvar(a) / 3, stats.tvar(b) / 3
    df = (va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 2)
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    d = seed_difference(a, b)
    assert d.value == pytest.approx(0.7 - 0.8 / 3)
    assert (d.low, d.high) == pytest.approx((d.value - half, d.value + half))
    assert seed_difference([0.5, 0.5], [0.25, 0.25]).low == pytest.approx(0.25)
    with pytest.raises(ValueError, match="at least 2"):
        seed_difference([0.5], [0.1, 0.2])
