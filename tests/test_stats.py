"""Tests for seqrec.evaluation.stats: hand-computed cases, exact enumerations, agreement with scipy.

Monte-Carlo comparisons use fixed seeds, so each test is deterministic; the tolerances are set
from the Monte-Carlo standard error so that a correct implementation passes for (almost) any
seed, while a wrong percentile, a wrong p-value formula or an off-by-one fails.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest
import scipy.stats

from seqrec.evaluation import stats
from seqrec.evaluation.stats import (
    TableCI,
    bootstrap_ci,
    bootstrap_table,
    format_ci,
    holm,
    paired_bootstrap_ci,
    paired_permutation_test,
    seed_summary,
    verdict,
    verdict_from_test,
)


def quantile_mc_se(values: np.ndarray, level: float, n_resamples: int) -> float:
    """Monte-Carlo SE of the ``level`` quantile of the bootstrap means from ``n_resamples`` draws.

    Asymptotically ``sqrt(level (1 - level) / N) / f(q)``, with ``f`` the density of the bootstrap
    distribution at the quantile. That distribution is close to normal with sd
    ``se = std(values) / sqrt(n)`` (the exact bootstrap SE of a mean), so
    ``f(q) = phi(z_level) / se``.
    """
    se = np.std(values) / math.sqrt(values.size)
    z = scipy.stats.norm.ppf(level)
    return math.sqrt(level * (1 - level) / n_resamples) * se / scipy.stats.norm.pdf(z)


# --------------------------------------------------------------------------- bootstrap_ci


def test_bootstrap_two_values_hand_computed():
    # The mean of a resample of [0, 1] is 0, 0.5 or 1 with probabilities 1/4, 1/2, 1/4. With
    # 10,000 resamples about 2,500 (sd 43) are 0 and 2,500 are 1, while the 2.5 % / 97.5 %
    # percentiles sit at order statistics ~250 / ~9,750: they are exactly 0 and 1 unless
    # fewer than 251 resamples hit an end (a 50-sd event).
    assert bootstrap_ci(np.array([0.0, 1.0])) == (0.5, 0.0, 1.0)
    # At 40 % confidence the percentiles (30 % and 70 %) fall inside the big 0.5 atom.
    assert bootstrap_ci([0.0, 1.0], confidence=0.4) == (0.5, 0.5, 0.5)


def test_bootstrap_constant_single_empty_and_nan():
    assert bootstrap_ci(np.full(37, 0.1)) == (0.1, 0.1, 0.1)  # zero-width, exactly the constant
    assert bootstrap_ci([0.25]) == (0.25, 0.25, 0.25)
    assert bootstrap_ci([math.nan, 0.25, math.nan]) == (0.25, 0.25, 0.25)
    for empty in ([], [math.nan, math.nan]):
        assert all(math.isnan(v) for v in bootstrap_ci(empty))
    # NaN users are dropped, not counted as 0: same result as on the non-NaN values alone.
    rng = np.random.default_rng(3)
    x = rng.random(200)
    with_nan = np.insert(x, [0, 50, 50, 200], math.nan)
    assert bootstrap_ci(with_nan) == bootstrap_ci(x)
    assert bootstrap_ci(with_nan)[0] == pytest.approx(x.mean(), rel=1e-12)


def test_bootstrap_bernoulli_matches_exact_binomial_quantiles():
    # For 0/1 values with k ones out of n, the resampled mean is exactly Binomial(n, k/n) / n.
    # Its atoms are 1/n = 0.002 apart, while the Monte-Carlo SE of a 2.5 % quantile from
    # 10,000 resamples is ~0.03 bootstrap SE ~ 0.0006; the linearly interpolated percentile
    # lies between two neighbouring order statistics, so it must be within one atom of the
    # exact quantile (the smallest atom with CDF >= level).
    n, k = 500, 150
    values = np.zeros(n)
    values[np.random.default_rng(0).choice(n, k, replace=False)] = 1.0
    mean, low, high = bootstrap_ci(values)
    assert mean == pytest.approx(k / n)
    exact_low = scipy.stats.binom.ppf(0.025, n, k / n) / n
    exact_high = scipy.stats.binom.ppf(0.975, n, k / n) / n
    assert abs(low - exact_low) <= 1 / n + 1e-12
    assert abs(high - exact_high) <= 1 / n + 1e-12
    assert low < mean < high


@pytest.mark.parametrize("kind", ["uniform", "bernoulli", "skewed"])
def test_bootstrap_agrees_with_scipy_percentile(kind):
    rng = np.random.default_rng(11)
    n, n_boot = 500, 10_000
    values = {
        "uniform": rng.random(n),
        "bernoulli": (rng.random(n) < 0.2).astype(float),
        "skewed": rng.exponential(size=n) ** 2,  # a long right tail, like per-user ndcg
    }[kind]
    mean, low, high = bootstrap_ci(values, n_resamples=n_boot, seed=1)
    ref = scipy.stats.bootstrap(
        (values,),
        np.mean,
        method="percentile",
        n_resamples=n_boot,
        confidence_level=0.95,
        rng=np.random.default_rng(2),
    ).confidence_interval
    # Both endpoints estimate the same quantile of the same bootstrap distribution from two
    # independent sets of 10,000 resamples: the difference has SE sqrt(2) * quantile SE; allow
    # 4 of those (a spurious failure is a ~1e-4 event). For n = 500 that tolerance is ~0.15
    # bootstrap SE, far below e.g. the shift a wrong percentile level (2.5 -> 5) would cause.
    tol = 4 * math.sqrt(2) * quantile_mc_se(values, 0.025, n_boot)
    assert abs(low - ref.low) <= tol
    assert abs(high - ref.high) <= tol
    assert mean == pytest.approx(values.mean(), rel=1e-12)
    assert low < mean < high
    # The width is close to the normal-theory 2 * 1.96 * SE (within 10 %: skewness and MC noise
    # move a percentile interval only a few percent at n = 500).
    se = np.std(values) / math.sqrt(n)
    assert (high - low) == pytest.approx(2 * 1.96 * se, rel=0.1)


def test_bootstrap_coverage_is_sane():
    # 200 data sets of 200 Bernoulli(0.3) users: the 95 % interval should contain 0.3 about
    # 95 % of the time (percentile intervals under-cover slightly at small n). The binomial SE
    # of a coverage estimate from 200 trials is 0.015, so [0.88, 0.99] is > 4 SE below and
    # ~2.7 SE above the nominal 0.95 (coverage cannot exceed ~0.96 here).
    rng = np.random.default_rng(7)
    covered = 0
    trials = 200
    for t in range(trials):
        values = (rng.random(200) < 0.3).astype(float)
        _, low, high = bootstrap_ci(values, n_resamples=2_000, seed=t)
        covered += low <= 0.3 <= high
    assert 0.88 <= covered / trials <= 0.99


def test_bootstrap_is_seeded_percentile_of_resampled_means():
    # The definition, written out unchunked: default_rng(seed), an [N, n] matrix of user
    # indices drawn with replacement, the mean of each row, then numpy's linear percentiles.
    # Pins the seed usage and the interpolation (e.g. method="lower" would differ).
    values = np.random.default_rng(6).random(50)
    rng = np.random.default_rng(13)
    means = values[rng.integers(0, 50, size=(2_000, 50))].mean(axis=1)
    low, high = np.percentile(means, [5.0, 95.0])
    mean, got_low, got_high = bootstrap_ci(values, n_resamples=2_000, confidence=0.9, seed=13)
    assert (got_low, got_high) == pytest.approx((low, high), rel=1e-12, abs=0)
    assert mean == pytest.approx(values.mean(), rel=1e-12)


def test_bootstrap_determinism_and_chunking(monkeypatch):
    values = np.random.default_rng(5).random(301)
    first = bootstrap_ci(values, seed=4)
    assert bootstrap_ci(values, seed=4) == first
    other = bootstrap_ci(values, seed=5)
    assert other[0] == first[0]  # the mean does not depend on the seed
    assert other[1:] != first[1:]  # the endpoints (generally) do
    # Memory-safe chunking must not change the draws: a tiny, odd chunk gives the same answer.
    monkeypatch.setattr(stats, "_CHUNK_ENTRIES", 997)
    assert bootstrap_ci(values, seed=4) == first


def test_bootstrap_rejects_bad_arguments():
    with pytest.raises(ValueError):
        bootstrap_ci(np.ones((3, 2)))
    with pytest.raises(ValueError):
        bootstrap_ci([0.0, 1.0], confidence=1.0)
    with pytest.raises(ValueError):
        bootstrap_ci([0.0, 1.0], n_resamples=0)


# --------------------------------------------------------------------------- paired_bootstrap_ci


def test_paired_bootstrap_is_bootstrap_of_differences_and_narrower():
    rng = np.random.default_rng(8)
    user_effect = rng.random(1000)  # large between-user variance shared by both methods
    a = user_effect + rng.normal(0.01, 0.02, 1000)
    b = user_effect.copy()
    a[3] = math.nan  # dropped as a pair
    b[10] = math.nan
    keep = ~(np.isnan(a) | np.isnan(b))
    assert paired_bootstrap_ci(a, b, seed=3) == bootstrap_ci(a[keep] - b[keep], seed=3)
    mean, low, high = paired_bootstrap_ci(a, b)
    assert mean == pytest.approx(np.nanmean(a[keep] - b[keep]))
    assert verdict(low, high) == "ahead"
    # Pairing cancels the user effect (sd ~0.29 vs 0.02): the paired interval is > 5x narrower
    # than either unpaired interval.
    _, la, ha = bootstrap_ci(a)
    assert (high - low) * 5 < ha - la
    with pytest.raises(ValueError):
        paired_bootstrap_ci(a, b[:-1])


# --------------------------------------------------------------------------- permutation test


def brute_force_p(a, b) -> float:
    """Exact two-sided sign-flip p-value over all 2**n sign vectors, in rational arithmetic."""
    d = [Fraction(x) - Fraction(y) for x, y in zip(a, b)]
    observed = abs(sum(d))
    hits = sum(
        abs(sum(s * x for s, x in zip(signs, d))) >= observed
        for signs in itertools.product((1, -1), repeat=len(d))
    )
    return hits / 2 ** len(d)


def sign_flip_distribution(d: list[int]) -> Counter:
    """Exact null distribution of sum(s_i d_i) for integer d (counts over all 2**n signs)."""
    dist = Counter({0: 1})
    for v in d:
        nxt: Counter = Counter()
        for total, count in dist.items():
            nxt[total + v] += count
            nxt[total - v] += count
        dist = nxt
    return dist


def test_permutation_exact_matches_brute_force_random_floats():
    rng = np.random.default_rng(21)
    a = rng.random(8)
    b = a + rng.normal(0.1, 0.15, 8)
    # 2**8 = 256 <= 10,000 resamples, so the exact enumeration path is used; no ties.
    assert paired_permutation_test(a, b) == brute_force_p(a, b)
    assert paired_permutation_test(b, a) == brute_force_p(a, b)  # two-sided: symmetric


def test_permutation_exact_with_ties_zeros_and_nan():
    # Metric-like values with many exact ties between sign vectors (differences are multiples
    # of 0.1, which are inexact in binary): the float tolerance must count them as ties.
    # Without the tolerance this case gives 0.207 instead of the exact 0.2266.
    a_txt = ["0.8", "0.4", "0.0", "0.9", "0.9", "0.0", "0.5", "0.8", "0.7", "0.3"]
    b_txt = ["0.4", "0.8", "0.8", "0.1", "0.0", "0.1", "0.3", "0.1", "0.0", "0.3"]  # last: zero
    a = np.array([float(x) for x in a_txt] + [math.nan, 0.2])
    b = np.array([float(x) for x in b_txt] + [0.5, math.nan])
    expected = brute_force_p([Fraction(x) for x in a_txt], [Fraction(x) for x in b_txt])
    assert expected == 0.2265625  # 58 of 256 sign vectors of the 9 non-zero users
    assert paired_permutation_test(a, b) == expected


def test_permutation_monte_carlo_matches_exact_distribution():
    # 30 users with integer differences (scaled by 0.1 like metric values): 2**30 sign vectors,
    # so Monte Carlo is used; the exact p comes from the convolution of the sign-flip null.
    d = [4, 2, 1, -2, -1, -4, -4, -4, -3, 4, 2, 5, 1, 2, 5, 3, 2, 1, 1, 5, -2, 4, 2, -4, -1, 4,
         1, -4, 3, 3]  # fmt: skip
    dist = sign_flip_distribution(d)
    exact = sum(c for s, c in dist.items() if abs(s) >= abs(sum(d))) / 2 ** len(d)
    assert exact == pytest.approx(0.1435, abs=1e-4)
    b = np.linspace(0.2, 0.5, 30)
    a = b + 0.1 * np.array(d)
    n_boot = 10_000
    p = paired_permutation_test(a, b, n_resamples=n_boot, seed=0)
    # Binomial SE of a p-value from 10,000 sign vectors is sqrt(p (1 - p) / N) = 0.0035; allow
    # 4 SE plus the 1/(N + 1) added by the "+1" correction.
    assert abs(p - exact) <= 4 * math.sqrt(exact * (1 - exact) / n_boot) + 1 / (n_boot + 1)
    assert p >= 1 / (n_boot + 1)


def test_permutation_agrees_with_scipy():
    rng = np.random.default_rng(4)
    n = 40
    b = rng.random(n)
    a = b + rng.normal(0.03, 0.15, n)
    n_mine, n_scipy = 10_000, 50_000
    p = paired_permutation_test(a, b, n_resamples=n_mine, seed=0)
    ref = scipy.stats.permutation_test(
        (a, b),
        lambda x, y, axis: np.mean(x - y, axis=axis),
        permutation_type="samples",  # swaps a_i and b_i, i.e. flips the sign of d_i
        vectorized=True,
        n_resamples=n_scipy,
        alternative="two-sided",
        rng=np.random.default_rng(1),
    ).pvalue
    assert 0.01 < ref < 0.5  # a p-value where the comparison is informative
    # Both estimate P(|T| >= |t_obs|) under the same symmetric null. Mine has binomial variance
    # p (1 - p) / N; scipy's doubles a one-sided estimate, variance p (2 - p) / N. Allow 4 SE of
    # the difference plus the two "+1" corrections.
    se = math.sqrt(ref * (1 - ref) / n_mine + ref * (2 - ref) / n_scipy)
    assert abs(p - ref) <= 4 * se + 1 / n_mine + 1 / n_scipy


def test_permutation_extremes_and_determinism(monkeypatch):
    rng = np.random.default_rng(9)
    b = rng.random(200)
    a = b + 0.05 + rng.normal(0, 0.02, 200)  # every user better: no flip is as extreme
    p = paired_permutation_test(a, b, n_resamples=2_000)
    assert p == 1 / 2_001  # the smallest possible Monte-Carlo p-value
    assert p < 0.01
    assert paired_permutation_test(b, b) == 1.0  # identical samples
    assert paired_permutation_test([0.1, 0.2, math.nan], [0.1, 0.2, 0.3]) == 1.0
    assert math.isnan(paired_permutation_test([math.nan], [0.1]))
    # One non-zero user: sign vectors {+, -} are both as extreme -> exact p = 1.
    assert paired_permutation_test([0.5, 0.2], [0.1, 0.2]) == 1.0
    # Determinism, seed dependence and chunk-size independence of the Monte-Carlo path.
    a2 = b + rng.normal(0.0, 0.2, 200)
    first = paired_permutation_test(a2, b, seed=1)
    assert 0.05 < first < 0.95
    assert paired_permutation_test(a2, b, seed=1) == first
    assert paired_permutation_test(a2, b, seed=2) != first
    monkeypatch.setattr(stats, "_CHUNK_ENTRIES", 997)
    assert paired_permutation_test(a2, b, seed=1) == first


def test_permutation_switches_to_exact_only_when_cheaper():
    rng = np.random.default_rng(12)
    a = rng.random(8)
    b = a + rng.normal(0.05, 0.1, 8)
    exact = brute_force_p(a, b)
    assert paired_permutation_test(a, b, n_resamples=256) == exact  # 2**8 <= 256: exact
    mc = paired_permutation_test(a, b, n_resamples=255)  # Monte Carlo with 255 draws
    assert (mc * 256) == pytest.approx(round(mc * 256))  # of the form (1 + k) / 256
    # binomial SE with 255 draws is at most 0.031; 4 SE + the +1 correction
    assert abs(mc - exact) <= 4 * 0.032 + 1 / 256


# --------------------------------------------------------------------------- holm


def holm_reference(p: list[float]) -> list[float]:
    """Textbook Holm with explicit loops: adj_(i) = min(1, max_{j<=i} (m - j + 1) p_(j))."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    out = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, (m - rank) * p[i])
        out[i] = min(1.0, running)
    return out


def test_holm_hand_computed():
    # Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> max(0.06, 0.04).
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02], rtol=1e-12)
    np.testing.assert_allclose(holm([0.5, 0.4, 0.01]), [0.8, 0.8, 0.03], rtol=1e-12)
    np.testing.assert_allclose(holm([0.9, 0.6]), [1.0, 1.0])  # capped at 1


def test_holm_random_monotone_and_nan():
    rng = np.random.default_rng(2)
    p = rng.random(25) ** 3
    p[[3, 7]] = p[5]  # ties
    adjusted = holm(p)
    np.testing.assert_allclose(adjusted, holm_reference(list(p)), rtol=1e-12)
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(adjusted[order]) >= 0)  # monotone in the raw p-values
    assert np.all(adjusted >= p) and np.all(adjusted <= 1)
    # NaN stays NaN and does not count towards m.
    with_nan = holm([0.01, math.nan, 0.04, math.nan])
    assert np.isnan(with_nan[[1, 3]]).all()
    np.testing.assert_allclose(with_nan[[0, 2]], [0.02, 0.04], rtol=1e-12)
    assert holm([]).shape == (0,)
    assert np.isnan(holm([math.nan])).all()


# --------------------------------------------------------------------------- small helpers


def test_verdicts():
    assert verdict(0.001, 0.02) == "ahead"
    assert verdict(-0.02, -0.001) == "behind"
    assert verdict(-0.01, 0.02) == "not separable"
    assert verdict(0.0, 0.02) == "not separable"  # touching 0 is not excluding it
    assert verdict(math.nan, math.nan) == "not separable"
    assert verdict_from_test(0.001, 0.02, 0.01) == "ahead"
    assert verdict_from_test(-0.02, -0.001, 0.049) == "behind"
    assert verdict_from_test(0.001, 0.02, 0.05) == "not separable"  # p must be < alpha
    assert verdict_from_test(0.001, 0.02, 0.08, alpha=0.1) == "ahead"
    assert verdict_from_test(-0.01, 0.02, 0.001) == "not separable"  # CI contains 0
    assert verdict_from_test(0.001, 0.02, math.nan) == "not separable"


def test_format_ci():
    assert format_ci(0.19604, 0.19018, 0.20191) == "0.1960 [0.1902, 0.2019]"
    assert format_ci(0.5, 0.25, 0.75, digits=2) == "0.50 [0.25, 0.75]"
    assert format_ci(-0.0012, -0.003, 0.0007) == "-0.0012 [-0.0030, 0.0007]"
    assert format_ci(math.nan, math.nan, math.nan) == "nan"


def test_seed_summary():
    mean, sd, n = seed_summary([0.2, 0.4, math.nan, 0.3])
    assert n == 3 and isinstance(n, int)
    assert mean == pytest.approx(0.3)
    assert sd == pytest.approx(0.1)  # sqrt(((0.1)^2 + 0 + (0.1)^2) / 2)
    mean, sd, n = seed_summary([0.25])
    assert (mean, n) == (0.25, 1) and math.isnan(sd)
    mean, sd, n = seed_summary([math.nan])
    assert n == 0 and math.isnan(mean) and math.isnan(sd)


# --------------------------------------------------------------------------- bootstrap_table


def test_bootstrap_table_columns_agree_with_bootstrap_ci():
    rng = np.random.default_rng(31)
    n, n_boot = 500, 10_000
    columns = [
        rng.random(n),
        (rng.random(n) < 0.2).astype(float),
        rng.exponential(size=n) ** 2,  # long right tail, like per-user ndcg
    ]
    table = bootstrap_table(np.stack(columns, axis=1), n_resamples=n_boot, seed=0)
    assert isinstance(table, TableCI)
    assert table.mean.shape == table.low.shape == table.high.shape == (3,)
    for j, values in enumerate(columns):
        mean, low, high = bootstrap_ci(values, n_resamples=n_boot, seed=1)  # independent draws
        assert table.mean[j] == pytest.approx(mean, rel=1e-12)
        # Same bootstrap distribution (a column without NaN follows bootstrap_ci's procedure),
        # two independent sets of 10,000 resamples: each endpoint differs by Monte-Carlo error
        # only, SE sqrt(2) * quantile SE; 4 of those (~0.15 bootstrap SE) as in the scipy test.
        tol = 4 * math.sqrt(2) * quantile_mc_se(values, 0.025, n_boot)
        assert abs(table.low[j] - low) <= tol, j
        assert abs(table.high[j] - high) <= tol, j
        assert table.low[j] < table.mean[j] < table.high[j]


def test_bootstrap_table_nan_column():
    # 20 % of the users have no value (nan). The mean is over the others. Resampling all users
    # and averaging over the present ones gives a mean of M draws from the non-nan values with
    # M ~ Binomial(n, 0.8) instead of exactly m = 0.8 n: its sd is larger by a relative
    # (1 - 0.8) / (2 n 0.8) ~ 6e-5 for n = 2000, i.e. ~1e-4 bootstrap SE at the endpoints,
    # negligible next to the 4 * sqrt(2) * quantile-SE Monte-Carlo tolerance (~0.15 SE).
    rng = np.random.default_rng(32)
    n, n_boot = 2000, 10_000
    values = rng.random(n) ** 2
    values[rng.random(n) < 0.2] = np.nan
    present = values[~np.isnan(values)]
    full = rng.random(n)
    table = bootstrap_table(np.stack([values, full], axis=1), n_resamples=n_boot, seed=0)
    assert table.mean[0] == pytest.approx(np.nanmean(values), rel=1e-12)
    assert table.mean[1] == pytest.approx(full.mean(), rel=1e-12)
    _, low, high = bootstrap_ci(present, n_resamples=n_boot, seed=1)
    tol = 4 * math.sqrt(2) * quantile_mc_se(present, 0.025, n_boot)
    assert abs(table.low[0] - low) <= tol
    assert abs(table.high[0] - high) <= tol
    assert np.isfinite(table.low).all() and np.isfinite(table.high).all()


def test_bootstrap_table_constant_and_all_nan_columns():
    rng = np.random.default_rng(33)
    n = 300
    constant = np.full(n, 0.1)
    constant_with_nan = np.where(rng.random(n) < 0.3, np.nan, 0.7)
    all_nan = np.full(n, np.nan)
    varying = rng.random(n)
    table = bootstrap_table(np.stack([constant, constant_with_nan, all_nan, varying], axis=1))
    # every resample of a constant column has the same mean: a zero-width interval (low == mean
    # == high exactly). The mean itself is a float sum / count, so it equals the constant only up
    # to summation rounding (300 terms: well within 1e-12 relative). No value at all gives nan.
    for j, v in ((0, 0.1), (1, 0.7)):
        assert table.low[j] == table.mean[j] == table.high[j]
        assert table.mean[j] == pytest.approx(v, rel=1e-12)
    assert np.isnan([table.mean[2], table.low[2], table.high[2]]).all()
    assert table.low[3] < table.mean[3] < table.high[3]
    # a 1-D input is one column
    one = bootstrap_table(constant)
    assert one.mean.shape == (1,) and one.low[0] == one.high[0] == one.mean[0]


def test_bootstrap_table_bernoulli_matches_exact_binomial_quantiles():
    # As test_bootstrap_bernoulli_matches_exact_binomial_quantiles: with k ones of n, a resampled
    # mean is exactly Binomial(n, k/n) / n; atoms are 1/n apart and the MC SE of the percentile
    # (~0.0006) is far below one atom, so each endpoint is within one atom of the exact quantile.
    n, k = 500, 150
    values = np.zeros(n)
    values[np.random.default_rng(0).choice(n, k, replace=False)] = 1.0
    other = np.random.default_rng(1).random(n)
    table = bootstrap_table(np.stack([other, values], axis=1))
    assert table.mean[1] == pytest.approx(k / n)
    exact_low = scipy.stats.binom.ppf(0.025, n, k / n) / n
    exact_high = scipy.stats.binom.ppf(0.975, n, k / n) / n
    assert abs(table.low[1] - exact_low) <= 1 / n + 1e-12
    assert abs(table.high[1] - exact_high) <= 1 / n + 1e-12


def test_bootstrap_table_resamples_the_same_users_for_every_column():
    # a takes values k/64 and b = a - 1/4: both are exact in binary, so a - b is exactly 1/4 for
    # every user and the (a - b) column's CI is exactly [1/4, 1/4] (a paired difference).
    rng = np.random.default_rng(34)
    n = 400
    a = rng.integers(16, 64, size=n) / 64
    b = a - 0.25
    d = a - b
    assert (d == 0.25).all()
    table = bootstrap_table(np.stack([a, b, d, 2 * a], axis=1), n_resamples=5_000, seed=3)
    assert (table.mean[2], table.low[2], table.high[2]) == (0.25, 0.25, 0.25)
    # All columns share each resample's users, so every resampled mean of b is that of a minus
    # 1/4 and of 2a twice that of a; linear-interpolation percentiles commute with these
    # increasing affine maps, so the bounds match up to float rounding (1e-12). Independent
    # draws per column would differ by Monte-Carlo noise of ~1e-4 here.
    assert table.low[1] == pytest.approx(table.low[0] - 0.25, abs=1e-12)
    assert table.high[1] == pytest.approx(table.high[0] - 0.25, abs=1e-12)
    assert table.low[3] == pytest.approx(2 * table.low[0], abs=1e-12)
    assert table.high[3] == pytest.approx(2 * table.high[0], abs=1e-12)
    assert table.low[0] < table.high[0]


def test_bootstrap_table_determinism_chunking_and_arguments(monkeypatch):
    values = np.random.default_rng(35).random((301, 3))
    values[::7, 1] = np.nan
    first = bootstrap_table(values, seed=4)
    again = bootstrap_table(values, seed=4)
    for x, y in zip(first, again):
        np.testing.assert_array_equal(x, y)
    other = bootstrap_table(values, seed=5)
    np.testing.assert_array_equal(other.mean, first.mean)  # the mean does not depend on the seed
    assert not np.array_equal(other.low, first.low)
    # "whatever the chunk size": a tiny, odd chunk draws the same users. The count @ values
    # products then run on matrices of other shapes, so BLAS may sum in another order: equal up
    # to float rounding (1e-12 relative), whereas different draws would move the bounds by
    # Monte-Carlo noise (~1e-3 relative here, cf. the seed-5 run above).
    monkeypatch.setattr(stats, "_CHUNK_ENTRIES", 997)
    for x, y in zip(bootstrap_table(values, seed=4), first):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=0)
    assert np.abs(other.low - first.low).max() > 1e-6
    with pytest.raises(ValueError):
        bootstrap_table(np.ones((3, 2, 2)))
    with pytest.raises(ValueError):
        bootstrap_table(values, confidence=1.0)
    with pytest.raises(ValueError):
        bootstrap_table(values, n_resamples=0)
    empty = bootstrap_table(np.empty((0, 2)))
    assert np.isnan(np.concatenate(empty)).all()
