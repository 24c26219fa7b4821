"""The standard library's quantiles behind the metric intervals (greenery.warehouse.distributions):
closed forms worked out by hand, then scipy's own functions on hand-picked shapes up to a hundred million."""

from __future__ import annotations

import math

import pytest
from scipy import special

from greenery.warehouse import distributions as d


def test_closed_forms():
    # Gamma of shape 1 is the exponential: P(1, x) = 1 - e^-x.
    for p in (0.025, 0.5, 0.975):
        assert d.gamma_quantile(1, p) == pytest.approx(-math.log1p(-p), rel=1e-14)
    # Student's t with 1 degree of freedom is Cauchy's: P(T > t) = 1/2 - atan(t)/pi.
    assert d.t_quantile_upper(0.025, 1) == pytest.approx(math.tan(math.pi * 0.475), rel=1e-13)
    # ... with 2: t = (1 - 2p) / sqrt(2 p (1 - p)).
    for p in (0.3, 0.025, 0.001):
        assert d.t_quantile_upper(p, 2) == pytest.approx((1 - 2 * p) / math.sqrt(2 * p * (1 - p)), rel=1e-13)
    assert d.t_upper_tail(0.0, 7) == 0.5
    assert d.normal_quantile(0.975) == pytest.approx(1.959963984540054, rel=1e-15)


def test_gamma_tails_add_up_to_one_and_match_scipy():
    for a, x in [(0.5, 0.1), (3, 2.5), (3, 9.0), (361, 340.0), (361, 400.0), (1e6, 1e6 + 2000)]:
        p, q = d.gamma_tails(a, x)
        assert p + q == pytest.approx(1, abs=1e-15)
        assert (p, q) == pytest.approx((special.gammainc(a, x), special.gammaincc(a, x)), rel=1e-12)


@pytest.mark.parametrize("a", [0.5, 1, 2, 3, 5, 19, 20, 21, 50, 361, 10_000, 361_000, 10_000_000, 100_000_000])
def test_gamma_quantile_is_scipys(a):
    for p in (0.001, 0.025, 0.5, 0.975, 0.999):
        assert d.gamma_quantile(a, p) == pytest.approx(special.gammaincinv(a, p), rel=1e-12)


@pytest.mark.parametrize("df", [1, 2, 3, 4, 7, 29, 304, 1000, 1001, 3000, 100_000, 10_000_000, 100_000_000, 2.5])
def test_t_quantile_is_scipys(df):
    for p in (0.3, 0.1, 0.025, 0.005, 0.001):
        assert d.t_quantile_upper(p, df) == pytest.approx(-special.stdtrit(df, p), rel=1e-12)
        t = -special.stdtrit(df, p)
        assert d.t_upper_tail(t, df) == pytest.approx(special.stdtr(df, -t), rel=1e-12)
