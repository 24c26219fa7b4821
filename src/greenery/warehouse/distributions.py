"""The three quantiles the headline metrics' intervals need (greenery.warehouse.metrics), in the standard library.

`greenery build` records each new export's metrics with their intervals; scipy.special (and numpy under
it) took a quarter of a second to import for three numbers. These are the same quantiles, computed
exactly (to a few units in the last place): the normal's from `statistics.NormalDist` (Wichura's AS241,
as scipy's `ndtri`), the gamma's and Student's t's by inverting the regularized incomplete gamma and
beta functions (series and continued fractions, as in Numerical Recipes §6.2 and §6.4) with a
bracketed Newton iteration. Their log-prefactors are written so that nothing large cancels (Stirling's
series for the log-gamma differences), which keeps them exact for millions of orders.
tests/test_trends.py holds them equal to scipy's within 1e-12 over hand-picked cases.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_TINY = 1e-300
_EPS = 1e-16
_MAX_TERMS = 1_000_000  # a series or continued fraction converges in O(sqrt(a)) terms; a = 5e11 before this


def normal_quantile(p: float) -> float:
    """The standard normal's quantile (scipy.special.ndtri)."""
    return NormalDist().inv_cdf(p)


def _stirling_tail(a: float) -> float:
    """lgamma(a) - ((a - 1/2) ln a - a + ln sqrt(2 pi)), Stirling's series, for a >= 20 (error below 1e-17)."""
    a2 = a * a
    return (1 / 12 - (1 / 360 - (1 / 1260 - (1 / 1680 - 1 / (1188 * a2)) / a2) / a2) / a2) / a


def _log_gamma_factor(a: float, x: float) -> float:
    """ln(x^a e^-x / Gamma(a)), without the cancellation of its large terms when a is large."""
    if a < 20:
        return a * math.log(x) - x - math.lgamma(a)
    mu = (x - a) / a
    return -a * (mu - math.log1p(mu)) + 0.5 * math.log(a) - _LOG_SQRT_2PI - _stirling_tail(a)


def _lbeta(a: float, b: float) -> float:
    """ln B(a, b), the difference lgamma(a) - lgamma(a + b) by Stirling's series when a is large."""
    if a < b:
        a, b = b, a
    if a < 20:
        return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    difference = -b * math.log(a) - (a + b - 0.5) * math.log1p(b / a) + b + _stirling_tail(a) - _stirling_tail(a + b)
    return math.lgamma(b) + difference


def _lentz(a_n: Callable[[int], float], b_n: Callable[[int], float], b0: float) -> float:
    """b0 + a1/(b1 + a2/(b2 + ...)), the modified Lentz method."""
    f = b0 if b0 != 0 else _TINY
    c, d = f, 0.0
    for n in range(1, _MAX_TERMS):
        an, bn = a_n(n), b_n(n)
        d = bn + an * d
        d = 1 / (d if d != 0 else _TINY)
        c = bn + an / c
        c = c if c != 0 else _TINY
        delta = c * d
        f *= delta
        if abs(delta - 1) < _EPS:
            return f
    raise ArithmeticError("continued fraction did not converge")


def gamma_tails(a: float, x: float) -> tuple[float, float]:
    """The regularized incomplete gamma functions (P(a, x), Q(a, x)), each to full relative precision
    when it is the smaller of the two."""
    if x <= 0:
        return 0.0, 1.0
    factor = math.exp(_log_gamma_factor(a, x))
    if x < a + 1:  # the series of P
        term = total = 1 / a
        n = a
        for _ in range(_MAX_TERMS):
            n += 1
            term *= x / n
            total += term
            if term < total * _EPS:
                p = factor * total
                return p, 1 - p
        raise ArithmeticError("series did not converge")
    # Q's continued fraction x + 1 - a - 1(1 - a)/(x + 3 - a - 2(2 - a)/(x + 5 - a - ...)), inverted
    q = factor / _lentz(lambda n: -n * (n - a), lambda n: x + 1 - a + 2 * n, x + 1 - a)
    return 1 - q, q


def _beta_fraction(a: float, b: float, x: float, log_x: float, log_y: float) -> float:
    """I_x(a, b) for x < (a + 1) / (a + b + 2), given ln x and ln(1 - x) (each computed without rounding
    x first: with a in the millions, a ln x would lose ten digits)."""
    front = math.exp(a * log_x + b * log_y - _lbeta(a, b)) / a

    def d(n: int) -> float:  # the continued fraction's numerators (Numerical Recipes 6.4.5)
        m = n // 2
        if n % 2 == 0:
            return m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        return -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))

    return front / _lentz(d, lambda n: 1.0, 1.0)


def t_upper_tail(t: float, df: float) -> float:
    """P(T > t) for Student's t with `df` degrees of freedom, t >= 0."""
    if t <= 0:
        return 0.5
    ratio = t * t / df
    x, y = 1 / (1 + ratio), ratio / (1 + ratio)  # df / (df + t^2) and t^2 / (df + t^2)
    log_x, log_y = -math.log1p(ratio), math.log(ratio) - math.log1p(ratio)
    a, b = df / 2, 0.5
    # The fraction in x (near 1) loses digits as df grows (1e-10 at ten million); the one in y does not.
    if df <= 1000 and x < (a + 1) / (a + b + 2):
        return 0.5 * _beta_fraction(a, b, x, log_x, log_y)
    return 0.5 * (1 - _beta_fraction(b, a, y, log_y, log_x))


def _solve(f: Callable[[float], float], slope: Callable[[float], float], guess: float, low: float,
           high: float | None) -> float:
    """The root of the increasing function f, from `guess`, kept in [low, high] (high None: grown until
    f changes sign), by Newton's steps with bisection whenever a step would leave the bracket."""
    if high is None:
        high = max(2 * guess, 1.0)
        while f(high) < 0:
            low, high = high, 2 * high
    x = min(max(guess, low), high)
    for _ in range(200):
        value = f(x)
        if value == 0:
            return x
        if value < 0:
            low = x
        else:
            high = x
        gradient = slope(x)
        step = value / gradient if gradient > 0 else math.inf
        new = x - step
        if not low < new < high:
            new = 0.5 * (low + high)
        if abs(new - x) <= 2 * _EPS * abs(new) or high - low <= 2 * _EPS * abs(high):
            return new
        x = new
    return x


def gamma_quantile(a: float, p: float) -> float:
    """x with P(a, x) = p: scipy.special.gammaincinv. (The chi-square's quantile chi2.ppf(p, df) is
    2 gamma_quantile(df / 2, p).) Solved on whichever tail is the smaller, for its precision."""

    def f(x: float) -> float:
        lower, upper = gamma_tails(a, x)
        return lower - p if p <= 0.5 else (1 - p) - upper

    def slope(x: float) -> float:  # the gamma density
        return math.exp(_log_gamma_factor(a, x)) / x

    z = normal_quantile(p)  # Wilson and Hilferty's start
    guess = a * max(1 - 1 / (9 * a) + z / (3 * math.sqrt(a)), 0.1) ** 3
    return _solve(f, slope, guess, 0.0, None)


def t_quantile_upper(p: float, df: float) -> float:
    """t with P(T > t) = p, for p <= 1/2: -scipy.special.stdtrit(df, p)."""

    def f(t: float) -> float:
        return p - t_upper_tail(t, df)

    def slope(t: float) -> float:  # Student's density
        return math.exp(-(df + 1) / 2 * math.log1p(t * t / df) - 0.5 * math.log(df) - _lbeta(df / 2, 0.5))

    z = -normal_quantile(p)
    return _solve(f, slope, z + (z**3 + z) / (4 * df), 0.0, None)
