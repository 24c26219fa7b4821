"""The book's statistics, on top of scipy.stats: intervals, tests, multiple-testing control.

Every function takes plain counts and returns plain numbers, so each is tested on a case
worked out by hand (tests/test_stats.py). Intervals and tests are two-sided at 95 % (or
1 - alpha) unless a caller says otherwise.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats as sps
from scipy.special import ndtri

# Below this expected count in any cell, the chi-square approximation is not trusted and an
# exact (2 x 2) or Monte Carlo permutation (larger tables) p-value is used instead.
MIN_EXPECTED = 5
PERMUTATIONS = 9_999  # below 8! (40,320): scipy enumerates every permutation of 7 buyers or fewer


def wilson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (sound for small samples and rates near 0 or 1).

    What `scipy.stats.binomtest(k, n).proportion_ci(method="wilson")` returns, by the same operations
    in the same order (Newcombe 1998; tests/test_stats.py checks they are equal to the last bit):
    binomtest first computes an exact p-value the interval never uses, about 1 ms a call, and the
    book asks for some 3,000 intervals (3 CPU seconds of the promos chapter alone)."""
    if trials == 0:
        return (math.nan, math.nan)
    k, n = int(successes), int(trials)
    if not 0 <= k <= n:
        raise ValueError(f"successes ({k}) must be between 0 and trials ({n})")
    p = k / n
    z = ndtri(0.5 + 0.5 * confidence)
    denom = 2 * (n + z**2)
    center = (2 * n * p + z**2) / denom
    q = 1 - p
    delta = z / denom * math.sqrt(4 * n * p * q + z**2)
    low = 0.0 if k == 0 else center - delta
    high = 1.0 if k == n else center + delta
    return (float(low), float(high))


def newcombe(k1: int, n1: int, k2: int, n2: int, confidence: float = 0.95) -> tuple[float, float]:
    """Interval of p1 - p2 by Newcombe's hybrid score method (his method 10: two Wilson intervals)."""
    if not n1 or not n2:
        return (math.nan, math.nan)
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1, confidence)
    l2, u2 = wilson(k2, n2, confidence)
    return (p1 - p2 - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
            p1 - p2 + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


@dataclass(frozen=True)
class Test:
    """One test of independence between segments and an outcome."""

    method: str  # "chi-square", "Fisher's exact" or "permutation (chi-square statistic)"
    statistic: float  # the chi-square statistic (the odds ratio for Fisher's exact test)
    dof: int
    p_value: float
    cramers_v: float  # effect size: 0 no association, 1 the segment decides the outcome


def independence(successes: list[int], trials: list[int], seed: int = 0) -> Test:
    """Do the success rates differ across segments? One test over all segments at once.

    Chi-square test of the segments x (success, failure) table when every expected count is at
    least MIN_EXPECTED; otherwise Fisher's exact test for two segments, or a Monte Carlo
    permutation test of the chi-square statistic (seeded, so the book is reproducible).
    Segments without buyers are dropped; fewer than two segments, or an outcome that never
    (or always) happens, cannot be tested: p = 1.
    """
    pairs = tuple((int(k), int(n)) for k, n in zip(successes, trials, strict=True) if n > 0)
    return _independence(pairs, int(seed))


@lru_cache(maxsize=4096)
def _independence(pairs: tuple[tuple[int, int], ...], seed: int) -> Test:
    """`independence` of non-empty segments' (successes, trials), remembered: the window sweep of the
    indicators chapters meets the same table at many windows, and a permutation p-value costs
    milliseconds (the result is a frozen value, the same for the same counts and seed)."""
    table = np.array([[k, n - k] for k, n in pairs])
    if len(pairs) < 2 or table[:, 0].sum() == 0 or table[:, 1].sum() == 0:
        return Test("not testable", math.nan, 0, 1.0, math.nan)
    chi2, p, dof, expected = sps.chi2_contingency(table, correction=False)
    # Cramér's V as scipy.stats.contingency.association(table, method="cramer") works it out, from the same
    # chi-square it would compute again (the same call): the same operations, so the same float.
    v = math.sqrt(chi2 / table.sum() / min(table.shape[1] - 1, table.shape[0] - 1))
    if expected.min() >= MIN_EXPECTED:
        return Test("chi-square", float(chi2), int(dof), float(p), v)
    if len(pairs) == 2:
        odds, p = sps.fisher_exact(table)
        return Test("Fisher's exact", float(odds), 1, float(p), v)
    return Test("permutation (chi-square statistic)", float(chi2), int(dof),
                _permutation_p(table, float(chi2), seed), v)


def _permutation_p(table: np.ndarray, observed: float, seed: int) -> float:
    """p-value of the chi-square statistic when outcomes are shuffled across buyers (margins fixed): what
    scipy.stats.permutation_test (pairings, vectorised, batches of 1,000, "greater") returns, to the bit.

    Its cost was drawing the permutations (rng.permuted), and with the same seed and the same number of
    buyers they are the same permutations whatever the table: the window sweep meets the same cohort size
    at many windows and indicators, so they are drawn once per size (`_permutations`, the very draws scipy
    makes from the same generator) and only the statistic is computed per table. A size small enough for
    scipy to enumerate every permutation, or too large to keep, goes to scipy itself."""
    labels = np.repeat(np.arange(len(table)), table.sum(axis=1))
    outcomes = np.concatenate([np.r_[np.ones(k), np.zeros(f)] for k, f in table])
    sizes = table.sum(axis=1)
    expected = sizes * outcomes.mean()
    onehot = (labels[:, None] == np.arange(len(table))[None, :]).astype(float)

    def chi_square(k):  # from the successes per segment, per resample
        return (((k - expected) ** 2) / expected + ((sizes - k - (sizes - expected)) ** 2) / (sizes - expected)).sum(-1)

    def statistic(shuffled, axis=-1):
        return chi_square(np.moveaxis(shuffled, axis, -1) @ onehot)

    n = len(outcomes)
    if math.factorial(min(n, 8)) <= PERMUTATIONS or n * PERMUTATIONS * 4 > _PERMUTATIONS_BYTES:  # 8! > 9,999
        result = sps.permutation_test((outcomes,), statistic, permutation_type="pairings", vectorized=True,
                                      n_resamples=PERMUTATIONS, batch=_BATCH, alternative="greater",
                                      rng=np.random.default_rng(seed))
        assert abs(result.statistic - observed) < 1e-6 * max(1.0, observed)
        return float(result.pvalue)
    statistic_observed = statistic(outcomes, axis=-1)
    assert abs(statistic_observed - observed) < 1e-6 * max(1.0, observed)
    # The successes per segment of each resample, counted as whole numbers (exact, as the float product
    # above), from one byte per buyer rather than a float: then the same formula, on the same values.
    # Every resample at once (9,999 x buyers bytes): the same values as batch by batch (each resample's
    # statistic is summed over its own segments alone). `take` reads the int32 indices as they are (indexing
    # would first copy them to 64 bits), and a segment's count fits in 32 bits (at most 1,600 buyers here).
    ones, starts = outcomes.astype(np.int8), np.r_[0, np.cumsum(sizes)[:-1]]
    shuffled = ones.take(_permutations(n, seed), mode="clip")  # every index is in range: no check needed
    null = chi_square(np.add.reduceat(shuffled, starts, axis=1, dtype=np.int32).astype(float))
    gamma = abs(np.finfo(statistic_observed.dtype).eps * 100 * statistic_observed)
    count = np.count_nonzero(null >= statistic_observed - gamma) + 1
    return float(min(max(np.float64(count) / (PERMUTATIONS + 1), 0.0), 1.0))


_BATCH = 1_000
_PERMUTATIONS_BYTES = 64 * 1024 * 1024  # the permutations kept, all sizes together (int32): 1,600 buyers' at most
_DRAWN: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()  # least recently used first


def _permutations(n: int, seed: int) -> np.ndarray:
    """The permutations scipy.stats.permutation_test draws for one sample of `n` (pairings, batches of
    _BATCH) from `default_rng(seed)`, batch by batch as it draws them, in one array (a resample a row);
    kept (read-only) for the next table of the same size while they fit in _PERMUTATIONS_BYTES with the
    others kept."""
    if (n, seed) in _DRAWN:
        _DRAWN.move_to_end((n, seed))
        return _DRAWN[(n, seed)]
    rng = np.random.default_rng(seed)
    indices = np.tile(np.arange(n), (_BATCH, 1, 1))
    drawn = np.empty((PERMUTATIONS, n), dtype=np.int32)
    for start in range(0, PERMUTATIONS, _BATCH):
        size = min(_BATCH, PERMUTATIONS - start)
        drawn[start:start + size] = rng.permuted(indices, axis=-1)[:size, 0, :]
    drawn.flags.writeable = False
    _DRAWN[(n, seed)] = drawn
    while sum(kept.nbytes for kept in _DRAWN.values()) > _PERMUTATIONS_BYTES:
        _DRAWN.popitem(last=False)
    return drawn


def holm(p_values):
    """Holm's step-down adjustment (controls the family-wise error rate), in the input's order: a list
    for a list; for an array, each row along the last axis is one family (vectorised for many series)."""
    p = np.asarray(p_values, dtype=float)
    m = p.shape[-1]
    order = np.argsort(p, axis=-1, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * np.take_along_axis(p, order, axis=-1), axis=-1)
    adjusted = np.empty_like(p)
    np.put_along_axis(adjusted, order, np.minimum(stepped, 1.0), axis=-1)
    return adjusted.tolist() if p.ndim == 1 else adjusted


def benjamini_hochberg(p_values: list[float]) -> list[float]:
    """Benjamini-Hochberg adjustment (controls the false discovery rate), via scipy."""
    if not len(p_values):
        return []
    return sps.false_discovery_control(np.asarray(p_values, dtype=float), method="bh").tolist()


def _z(alpha: float) -> float:
    """The two-sided critical value at level alpha: `isf`, exact for a small alpha, where
    `ppf(1 - alpha / 2)` would round 1 - alpha / 2 to 1 and return infinity."""
    return float(sps.norm.isf(alpha / 2))


def detectable_difference(n1: int, n2: int, rate: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest true difference between two proportions near `rate` that groups of n1 and n2
    would detect with the given power in a two-sided test at level alpha (normal approximation)."""
    if not n1 or not n2 or not 0 < rate < 1:
        return math.nan
    z = _z(alpha) + sps.norm.ppf(power)
    return float(z * math.sqrt(rate * (1 - rate) * (1 / n1 + 1 / n2)))


def buyers_needed(difference: float, rate: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Buyers per group needed to detect `difference` around `rate` (the inverse of the above)."""
    z = _z(alpha) + sps.norm.ppf(power)
    return math.ceil(2 * rate * (1 - rate) * (z / difference) ** 2)
