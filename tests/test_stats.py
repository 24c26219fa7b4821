"""greenery.chapter_kit.stats on cases worked out by hand (the arithmetic is in the comments; z = 1.96)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from greenery.chapter_kit import stats


def test_wilson_half():
    # 5 of 10: p = .5; centre (p + z²/2n) / (1 + z²/n) = .5; half-width
    # z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n) = 1.96·sqrt(.025 + .009604) / 1.38416 = .2634.
    low, high = stats.wilson(5, 10)
    assert (low, high) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))


def test_wilson_none_of_ten_is_not_a_zero_width_interval():
    # 0 of 10: centre = half-width = (z²/2n) / (1 + z²/n) = .19208 / 1.38416 = .13877: 0 to .2775.
    low, high = stats.wilson(0, 10)
    assert low == pytest.approx(0, abs=1e-9) and high == pytest.approx(0.2775, abs=1e-4)
    assert all(math.isnan(b) for b in stats.wilson(0, 0))


def test_newcombe_difference():
    # 5/10 - 0/10 = .5; low .5 - sqrt((.5 - .2366)² + (.2775 - 0)²) = .5 - .3826 = .1174;
    # high .5 + sqrt((.7634 - .5)² + (0 - 0)²) = .7634.
    low, high = stats.newcombe(5, 10, 0, 10)
    assert (low, high) == (pytest.approx(0.1174, abs=1e-3), pytest.approx(0.7634, abs=1e-3))


def test_chi_square_when_every_expected_count_is_five_or_more():
    # 10 of 20 vs 20 of 20: expected 15 successes and 5 failures per segment;
    # chi² = 25/15 + 25/5 + 25/15 + 25/5 = 13.33 on 1 dof; p = erfc(sqrt(13.33 / 2)) = .00026;
    # Cramér's V = sqrt(13.33 / 40) = .5774.
    test = stats.independence([10, 20], [20, 20])
    assert test.method == "chi-square" and test.dof == 1
    assert test.statistic == pytest.approx(40 / 3)
    assert test.p_value == pytest.approx(math.erfc(math.sqrt(20 / 3)))
    assert test.cramers_v == pytest.approx(math.sqrt(1 / 3))


def test_fisher_exact_for_two_small_segments():
    # 3 of 3 vs 0 of 3: of the C(6, 3) = 20 ways to place the 3 successes, only "all in one
    # segment" (2 ways, either segment) is as extreme: p = 2 / 20 = .1.
    test = stats.independence([3, 0], [3, 3])
    assert test.method == "Fisher's exact" and test.p_value == pytest.approx(0.1)


def test_permutation_for_several_small_segments():
    # 2 successes among three segments of 2: the most extreme table puts both in one segment;
    # 3 of the C(6, 2) = 15 placements do that: p = 3 / 15 = .2 (Monte Carlo, so within .015).
    test = stats.independence([2, 0, 0], [2, 2, 2])
    assert test.method.startswith("permutation") and test.p_value == pytest.approx(0.2, abs=0.015)
    assert stats.independence([2, 0, 0], [2, 2, 2]).p_value == test.p_value  # seeded: reproducible


def test_untestable_tables():
    assert stats.independence([3], [5]).method == "not testable"  # one segment
    assert stats.independence([0, 0], [5, 7]).p_value == 1.0  # nobody succeeded


def test_holm():
    # Sorted .01, .03, .04, .5 times 4, 3, 2, 1 = .04, .09, .08, .5; running maximum .04, .09, .09, .5.
    assert stats.holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert stats.holm([0.6, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1


def test_benjamini_hochberg():
    # Sorted .01, .03, .04, .5 times 4/1, 4/2, 4/3, 4/4 = .04, .06, .0533, .5; running minimum
    # from the top: .04, .0533, .0533, .5.
    assert stats.benjamini_hochberg([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.5])


def test_detectable_difference_and_its_inverse():
    # z(.975) + z(.8) = 1.95996 + .84162 = 2.80158; sqrt(.5·.5·(1/100 + 1/100)) = .070711: .1981.
    assert stats.detectable_difference(100, 100, 0.5) == pytest.approx(0.1981, abs=1e-4)
    # 2·.25·(2.80158 / .2)² = 98.1: 99 buyers per group.
    assert stats.buyers_needed(0.2, 0.5) == 99


def test_wilson_is_scipys_interval_to_the_last_bit():
    """stats.wilson computes scipy's Wilson interval without binomtest's unused p-value: the same
    floats, so no figure of the book moves."""
    from scipy.stats import binomtest

    cases = [(k, n) for n in range(1, 80) for k in range(n + 1)]
    cases += [(k, n) for n in (997, 5_092, 123_457) for k in (0, 1, 2, n // 3, n // 2, n - 1, n)]
    for confidence in (0.95, 0.9, 0.99):
        for k, n in cases:
            ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
            assert stats.wilson(k, n, confidence) == (float(ci.low), float(ci.high)), (k, n, confidence)
    with pytest.raises(ValueError):
        stats.wilson(11, 10)


def test_cramers_v_is_scipys_to_the_last_bit():
    """Cramér's V from the chi-square already computed is scipy's association(), which computes it again."""
    rng = np.random.default_rng(0)
    tables = [[(10, 20), (20, 20)], [(3, 3), (0, 3)], [(2, 2), (0, 2), (0, 2)], [(1, 7), (5, 9), (2, 2), (0, 4)]]
    tables += [[(int(k), int(k + f)) for k, f in rng.integers(1, 400, size=(segments, 2))]
               for segments in (2, 3, 4, 5) for _ in range(50)]
    for pairs in tables:
        table = np.array([[k, n - k] for k, n in pairs])
        expected = float(sps.contingency.association(table, method="cramer"))
        test = stats.independence([k for k, _ in pairs], [n for _, n in pairs])
        assert test.cramers_v == expected, pairs


def test_a_table_met_again_is_not_tested_again():
    # The window sweep meets the same segment counts at many windows: the second call returns the
    # remembered result (the same object), whatever the inputs' types and empty segments dropped.
    stats._independence.cache_clear()
    first = stats.independence([2, 0, 0], [2, 2, 2], seed=3)
    again = stats.independence((2.0, 0, 0, 0), [2, 2, 2, 0], seed=3)
    assert again is first and stats._independence.cache_info().hits == 1
    assert stats.independence([2, 0, 0], [2, 2, 2], seed=4) is not first  # another seed: another draw


def _scipy_permutation_p(table: np.ndarray, seed: int) -> float:
    """What stats._permutation_p returned before it kept the permutations: scipy's own test, as it called it."""
    labels = np.repeat(np.arange(len(table)), table.sum(axis=1))
    outcomes = np.concatenate([np.r_[np.ones(k), np.zeros(f)] for k, f in table])
    sizes = table.sum(axis=1)
    expected = sizes * outcomes.mean()
    onehot = (labels[:, None] == np.arange(len(table))[None, :]).astype(float)

    def statistic(shuffled, axis=-1):
        k = np.moveaxis(shuffled, axis, -1) @ onehot
        return (((k - expected) ** 2) / expected + ((sizes - k - (sizes - expected)) ** 2) / (sizes - expected)).sum(-1)

    return float(sps.permutation_test((outcomes,), statistic, permutation_type="pairings", vectorized=True,
                                      n_resamples=stats.PERMUTATIONS, batch=1_000, alternative="greater",
                                      rng=np.random.default_rng(seed)).pvalue)


def test_the_permutation_p_value_is_scipys_to_the_bit():
    """The permutations are drawn once per number of buyers and reused for every table of that size: the
    p-value is still exactly scipy.stats.permutation_test's, table by table and seed by seed (sizes of 7
    buyers or fewer are enumerated by scipy itself)."""
    rng = np.random.default_rng(1)
    checked = 0
    for _ in range(80):
        trials = rng.integers(1, 25, size=int(rng.integers(2, 5)))
        table = np.array([[k, n - k] for n, k in ((n, int(rng.integers(0, n + 1))) for n in trials)])
        if table[:, 0].sum() == 0 or table[:, 1].sum() == 0:
            continue
        chi2 = sps.chi2_contingency(table, correction=False)[0]
        seed = int(rng.integers(0, 2))
        assert stats._permutation_p(table, float(chi2), seed) == _scipy_permutation_p(table, seed), table.tolist()
        checked += 1
    assert checked > 50 and stats._DRAWN  # and some permutations were kept for the next table
