"""Did a headline metric move beyond chance? The latest export against the previous one and the trailing baseline.

Each export's headline metrics are recorded in the history (greenery.warehouse.metrics: one definition
each); the warehouse holds them as `history_metrics`. For the latest export, every metric is compared
with the export before it and with the pooled exports before that (up to BASELINE_EXPORTS, the previous
one included) by the test that suits its kind:
- a proportion (repeat rate, late share): the two-proportion z-test (pooled standard error);
- a rate per hour (orders per hour): the exact conditional test of two Poisson rates (given the total
  count, the latest export's count is binomial with the share of the hours it covers);
- a mean (days to delivery): Welch's t-test from each side's n, mean and standard deviation.
All the comparisons made for one export are one family: their p-values are adjusted by Holm's
step-down method, which keeps the chance of any false alarm at or below `alpha` whatever the tests'
dependence. A metric moved when an adjusted p-value is below `alpha`.

The tests are vectorised over rows (one row per series) so that `make bench-trends` and the tests can
measure false alarms and power over many generated series with the very functions the book uses.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as sps

from greenery.chapter_kit import formats, stats
from greenery.warehouse import metrics
from greenery.warehouse.metrics import BY_NAME, METRICS

__all__ = ["ALPHA", "BASELINE_EXPORTS", "CORRECTION", "METRICS", "TESTS", "alerts", "comparisons", "p_text", "p_value",
           "poisson_rates_p", "pool", "shown", "two_proportions_p", "welch_p"]

ALPHA = metrics.ALERT_ALPHA
BASELINE_EXPORTS = 7  # the trailing baseline: up to a week of daily exports before the latest one
CORRECTION = metrics.ALERT_CORRECTION
TESTS = {"proportion": "two-proportion z-test", "rate": "exact test of two Poisson rates",
         "mean": "Welch's t-test"}


def two_proportions_p(k1, n1, k2, n2) -> np.ndarray:
    """Two-sided p of the pooled two-proportion z-test; 1 where it cannot be computed (no variation)."""
    k1, n1, k2, n2 = (np.asarray(v, dtype=float) for v in (k1, n1, k2, n2))
    pooled = (k1 + k2) / (n1 + n2)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (k1 / n1 - k2 / n2) / se
    return np.where(se > 0, 2 * sps.norm.sf(np.abs(z)), 1.0)


def poisson_rates_p(c1, t1, c2, t2) -> np.ndarray:
    """Two-sided p of the exact conditional test of two Poisson rates (counts c over exposures t): given
    c1 + c2, c1 is binomial with probability t1 / (t1 + t2) when the rates are equal. Two-sided as twice
    the smaller tail, capped at 1."""
    c1, t1, c2, t2 = (np.asarray(v, dtype=float) for v in (c1, t1, c2, t2))
    total, share = c1 + c2, t1 / (t1 + t2)
    tails = np.minimum(sps.binom.cdf(c1, total, share), sps.binom.sf(c1 - 1, total, share))
    return np.where(total > 0, np.minimum(1.0, 2 * tails), 1.0)


def welch_p(m1, s1, n1, m2, s2, n2) -> np.ndarray:
    """Two-sided p of Welch's t-test from summary statistics; 1 where a side has fewer than 2 values."""
    m1, s1, n1, m2, s2, n2 = (np.asarray(v, dtype=float) for v in (m1, s1, n1, m2, s2, n2))
    ok = (n1 >= 2) & (n2 >= 2) & ((s1 > 0) | (s2 > 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = sps.ttest_ind_from_stats(m1, s1, n1, m2, s2, n2, equal_var=False).pvalue
    return np.where(ok, p, 1.0)


def pool(kind: str, numerators, denominators, sds=None, axis: int = -1):
    """Several exports as one sample: summed counts and denominators; for a mean, the pooled mean's sum,
    n and the standard deviation of all the values together."""
    num, den = np.asarray(numerators, dtype=float), np.asarray(denominators, dtype=float)
    total, n = num.sum(axis=axis), den.sum(axis=axis)
    if kind != "mean":
        return total, n, None
    sd = np.asarray(sds, dtype=float)
    mean = total / n
    means = num / den
    squares = ((den - 1) * sd ** 2 + den * (means - np.expand_dims(mean, axis)) ** 2).sum(axis=axis)
    return total, n, np.sqrt(squares / (n - 1))


def p_value(kind: str, latest: tuple, before: tuple) -> np.ndarray:
    """The test suited to `kind`, latest against before; each side (numerator, denominator, sd)."""
    (a, n, sa), (b, m, sb) = latest, before
    if kind == "proportion":
        return two_proportions_p(a, n, b, m)
    if kind == "rate":
        return poisson_rates_p(a, n, b, m)
    return welch_p(np.divide(a, n), sa, n, np.divide(b, m), sb, m)


def comparisons(history: pd.DataFrame, alpha: float = ALPHA, baseline: int = BASELINE_EXPORTS) -> pd.DataFrame:
    """One row per comparison made for the latest export: metric, against ("the previous export" or
    "the trailing baseline"), the builds compared, values before and now, the test, its p-value and
    Holm-adjusted p-value (the family: every comparison in the frame), and whether the metric moved.

    `history` is the warehouse's `history_metrics` (one row per export and metric, oldest first); only
    the latest definition version of each metric is used."""
    rows = []
    for metric, records in history.sort_values("build_id").groupby("metric", sort=False):
        records = records[records["version"] == records["version"].iloc[-1]]
        if len(records) < 2:
            continue
        kind = records["kind"].iloc[-1]
        last = records.iloc[-1]
        latest = (last.numerator, last.denominator, last.sd)
        earlier = records.iloc[:-1].tail(baseline)
        sides = [("the previous export", earlier.tail(1))]
        if len(earlier) >= 2:
            sides.append((f"the trailing baseline of {len(earlier)} exports", earlier))
        for against, group in sides:
            before = pool(kind, group["numerator"], group["denominator"], group["sd"])
            rows.append({"metric": metric, "label": BY_NAME[metric].label if metric in BY_NAME else metric,
                         "kind": kind, "against": against, "builds": ", ".join(str(b) for b in group["build_id"]),
                         "latest_build": int(last.build_id), "before": float(before[0] / before[1]),
                         "now": float(last.value), "test": TESTS[kind],
                         "p_value": float(p_value(kind, latest, before))})
    frame = pd.DataFrame(rows, columns=["metric", "label", "kind", "against", "builds", "latest_build", "before",
                                        "now", "test", "p_value"])
    frame["adjusted_p"] = stats.holm(list(frame["p_value"])) if len(frame) else []
    frame["moved"] = frame["adjusted_p"] < alpha
    return frame


def shown(kind: str, value: float) -> str:
    """A metric's value as the book writes it."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return formats.DASH
    return formats.pct(value) if kind == "proportion" else formats.number(value, 2) if kind == "rate" else (
        f"{formats.number(value, 2)} days")


def p_text(value: float) -> str:
    """ "p = 0.0139", "p < 0.001" """
    shown_p = formats.p_value(value)
    return f"p {shown_p}" if shown_p[0] in "<>" else f"p = {shown_p}"


def alerts(history: pd.DataFrame, alpha: float = ALPHA) -> list[dict]:
    """The metrics that moved beyond chance for the latest export, each with its numbers in one line
    (metric, from what to what, against what, the test and its adjusted p): no data but the figures."""
    found = []
    for row in comparisons(history, alpha).itertuples():
        if not row.moved:
            continue
        text = (f"{row.label}: {shown(row.kind, row.before)} → {shown(row.kind, row.now)} against {row.against} "
                f"({row.test}, {CORRECTION}-adjusted {p_text(row.adjusted_p)})")
        found.append({"metric": row.metric, "against": row.against, "before": row.before, "now": row.now,
                      "test": row.test, "p_value": row.p_value, "adjusted_p": row.adjusted_p,
                      "correction": CORRECTION, "text": text})
    return found
