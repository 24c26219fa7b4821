"""The headline metrics: one definition each, read by the chapters and recorded in the history.

Each metric is a named analysis query (chapter_kit/analyses/*.sql) and the columns of its one row
that make the figure: a proportion's numerator and denominator, a rate's count and exposure (hours),
a mean's sum and n with its standard deviation. `measure` computes every metric and its 95 %
interval from a warehouse; the chapters show these very numbers (greenery.chapter_kit.headlines) and
each published build records them in the history (greenery.warehouse.history), so no headline
figure is computed twice. A metric's `version` goes up whenever its definition changes: values of
different versions are never compared.

Delivery figures exist only when the delivery dates look recorded (the data test DATES_TEST passed);
on generated dates the book reports no on-time rate or delivery time, and nothing is recorded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from greenery import config, db
from greenery.db import duckdb
from greenery.warehouse.distributions import gamma_quantile, normal_quantile, t_quantile_upper

DATES_TEST = "assert_delivery_dates_not_whole_days"  # passes when delivery dates look recorded
# A headline figure "moved" when its test against the previous export or the trailing baseline has a
# Holm-adjusted p below this (greenery.chapter_kit.trends; the status and notify messages name both).
ALERT_ALPHA = 0.05
ALERT_CORRECTION = "Holm"
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Metric:
    name: str
    label: str  # what it is, in words a manager reads (a chart's title, an alert's subject)
    version: int
    kind: str  # "proportion" (k of n), "rate" (a count per hour) or "mean" (with its standard deviation)
    analysis: str  # the named query whose one row holds the inputs
    numerator: str  # the proportion's k, the rate's count, the mean's value
    denominator: str  # the proportion's n, the rate's hours, the mean's n
    sd: str | None = None  # a mean's standard deviation
    needs_recorded_dates: bool = False


METRICS = (
    Metric("repeat_rate", "Repeat rate (share of buyers with 2+ orders)", 1, "proportion", "repeat_rate",
           "repeat_buyers", "buyers"),
    Metric("orders_per_hour", "Orders per hour (in hours with orders)", 1, "rate", "operations_overview",
           "order_count", "hours_with_orders"),
    Metric("late_share", "Late deliveries (share of delivered orders with a promised date)", 1, "proportion",
           "delivery_promises", "delivered_late", "delivered_with_promise", needs_recorded_dates=True),
    Metric("delivery_days", "Days from order to delivery (mean of delivered orders)", 1, "mean", "delivery_time",
           "mean_days_to_delivery", "delivered_orders", "sd_days_to_delivery", needs_recorded_dates=True),
)
BY_NAME = {m.name: m for m in METRICS}


@dataclass(frozen=True)
class Measure:
    metric: str
    version: int
    kind: str
    value: float
    numerator: float  # k, the count, or the sum of the values (mean x n)
    denominator: float  # n, or the hours of exposure
    sd: float | None  # a mean's standard deviation; None otherwise
    low: float
    high: float


def interval(kind: str, numerator: float, denominator: float, sd: float | None = None,
             confidence: float = CONFIDENCE) -> tuple[float, float]:
    """A metric's interval: Wilson's score interval for a proportion, the exact (Garwood) Poisson interval
    for a rate per hour, Student's t interval for a mean. The quantiles are scipy.stats' to the last few
    bits, computed in the standard library (greenery.warehouse.distributions): `greenery build` records
    a new export's intervals without importing scipy or numpy."""
    alpha = 1 - confidence
    if not denominator:
        return (math.nan, math.nan)
    if kind == "proportion":  # as binomtest(k, n).proportion_ci(method="wilson") computes it
        k, n = int(numerator), int(denominator)
        p, z = k / n, normal_quantile(0.5 + 0.5 * confidence)
        denom = 2 * (n + z**2)
        center, delta = (2 * n * p + z**2) / denom, z / denom * math.sqrt(4 * n * p * (1 - p) + z**2)
        return (0.0 if k == 0 else float(center - delta), 1.0 if k == n else float(center + delta))
    if kind == "rate":  # chi2.ppf(q, 2k) / 2 is the gamma quantile of shape k
        k = float(numerator)
        low = gamma_quantile(k, alpha / 2) if k > 0 else 0.0
        high = gamma_quantile(k + 1, 1 - alpha / 2)
        return (low / denominator, high / denominator)
    if kind == "mean":  # t.isf(a, df)
        n, mean = float(denominator), numerator / denominator
        if n < 2 or sd is None or math.isnan(sd):
            return (math.nan, math.nan)
        half = t_quantile_upper(alpha / 2, n - 1) * sd / math.sqrt(n)
        return (mean - half, mean + half)
    raise ValueError(f"unknown kind of metric: {kind}")


def dates_recorded(test_statuses: dict[str, str]) -> bool:
    """Whether delivery figures are reported: the dates test ran and passed."""
    return test_statuses.get(DATES_TEST) == "pass"


def _inputs(con: duckdb.DuckDBPyConnection, metric: Metric) -> tuple[float | None, float | None, float | None]:
    text = (config.ANALYSES_DIR / f"{metric.analysis}.sql").read_text()
    row = db.first_row(con, text) or {}
    sd = row.get(metric.sd) if metric.sd else None
    values = (row.get(metric.numerator), row.get(metric.denominator), sd)
    return tuple(None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) for v in values)


def measure(con: duckdb.DuckDBPyConnection, recorded_dates: bool) -> dict[str, Measure]:
    """Every headline metric the warehouse can give (a zero denominator gives none), by name."""
    found = {}
    for metric in METRICS:
        if metric.needs_recorded_dates and not recorded_dates:
            continue
        top, bottom, sd = _inputs(con, metric)
        if not bottom or top is None:
            continue
        numerator = top * bottom if metric.kind == "mean" else top  # a mean is stored as its sum and n
        low, high = interval(metric.kind, numerator, bottom, sd)
        found[metric.name] = Measure(metric.name, metric.version, metric.kind, numerator / bottom, numerator,
                                     bottom, sd, low, high)
    return found
