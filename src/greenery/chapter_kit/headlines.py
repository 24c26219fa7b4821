"""The headline figures as the chapters show them: the very measures each build records in the history.

greenery.warehouse.metrics defines each headline metric once (its query, its inputs, its interval);
a chapter takes its headline value and interval from `measure(con)` instead of computing them again,
so the book's figure and the trends' record cannot drift apart. Delivery figures are given only when the
stored data tests say the delivery dates look recorded, as at build time.
"""

from __future__ import annotations

import math

import duckdb

from greenery.chapter_kit import analyses
from greenery.warehouse import metrics

Measure = metrics.Measure
METRICS = metrics.METRICS


def measure(con: duckdb.DuckDBPyConnection) -> dict[str, metrics.Measure]:
    """Every headline metric of the warehouse, by name (one missing when its denominator is zero)."""
    tests = analyses.frame(con, "data_test_results")
    return metrics.measure(con, metrics.dates_recorded(dict(zip(tests["name"], tests["status"], strict=True))))


def interval(found: dict[str, metrics.Measure], name: str) -> tuple[float, float]:
    """A metric's 95 % interval, or (nan, nan) when it has none."""
    m = found.get(name)
    return (m.low, m.high) if m else (math.nan, math.nan)
