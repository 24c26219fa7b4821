"""`make bench-trends`: false alarms and power of the trends' tests, measured on many generated series.

For each seed, a series of daily exports of the same shop is drawn by the sample generator
(greenery.sample.series_sales: the orders only, nothing written) and the headline counts of each day
are taken from its orders: buyers and repeat buyers (the repeat rate), orders and the clock hours that
had any (orders per hour). These are the counts the metrics' SQL takes from a built warehouse
(tests/test_trends.py checks both agree on a series); counting them from the generator's arrays keeps
a thousand series to seconds instead of a thousand builds. The latest day is then compared with the
previous one and the trailing baseline by greenery.chapter_kit.trends (the very functions the book uses),
Holm across the family, and we count:
- without a planted change: the series with any alarm (the family-wise false-alarm rate, nominal ALPHA);
- with a planted drop in the chance of a second order on the last day: the series whose repeat rate is
  flagged, against the power the normal approximation predicts at the levels Holm may test it at.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from scipy import stats as sps

from greenery.chapter_kit import stats, trends
from greenery.sample import USERS_PER_SCALE, Plant, SeriesDay, series_sales

# The generator's chance of a second order, averaged over buyers (greenery.sample._orders: 0.86, 25 points
# less after a late first delivery (35 %), 8 more after a promo on it (12 %)) and its share of buyers.
REPEAT_CHANCE = 0.86 - 0.25 * 0.35 + 0.08 * 0.12
BUYER_SHARE = 0.95


def counts(sales: list[dict]) -> tuple[int, int, int, int]:
    """Repeat buyers, buyers, orders and clock hours with orders in one day's orders (one entry per chunk)."""
    repeat = buyers = orders = 0
    hours: set[int] = set()
    for chunk in sales:
        per_buyer = np.bincount(chunk["_owner"])
        buyers += int((per_buyer >= 1).sum())
        repeat += int((per_buyer >= 2).sum())
        orders += len(chunk["_owner"])
        hours |= set((chunk["_seconds"] // 3600).tolist())  # the window starts at midnight: clock hours
    return repeat, buyers, orders, len(hours)


def series_counts(seeds: range, days: int, scale: float, plant: Plant | None = None) -> np.ndarray:
    """Counts of every day of every series: shape (seeds, days, 4)."""
    series = [SeriesDay(d, days, plant) for d in range(1, days + 1)]
    return np.array([[counts(day) for day in series_sales(seed, scale, series)] for seed in seeds], dtype=float)


def family(counts: np.ndarray, baseline: int = trends.BASELINE_EXPORTS) -> tuple[np.ndarray, list[str]]:
    """Holm-adjusted p-values of the latest day's comparisons, one row per series (as
    trends.comparisons orders them: each metric against the previous export, then the baseline)."""
    latest, previous, earlier = counts[:, -1], counts[:, -2], counts[:, :-1][:, -baseline:]
    columns, p = [], []
    for name, kind, (top, bottom) in (("orders_per_hour", "rate", (2, 3)), ("repeat_rate", "proportion", (0, 1))):
        now = (latest[:, top], latest[:, bottom], None)
        columns.append(f"{name} vs previous")
        p.append(trends.p_value(kind, now, (previous[:, top], previous[:, bottom], None)))
        if earlier.shape[1] >= 2:
            columns.append(f"{name} vs baseline")
            p.append(trends.p_value(kind, now, trends.pool(kind, earlier[:, :, top], earlier[:, :, bottom])))
    return stats.holm(np.column_stack(p)), columns


def predicted_power(size: float, scale: float, days: int, level: float) -> dict[str, float]:
    """The two-proportion z-test's power (normal approximation) to see the repeat rate drop by `size`
    at significance level `level`, against the previous day and against the pooled baseline."""
    n = BUYER_SHARE * max(1, round(USERS_PER_SCALE * scale))
    p0, p1 = REPEAT_CHANCE, REPEAT_CHANCE - size
    z = sps.norm.isf(level / 2)
    found = {}
    for name, m in (("previous", n), ("baseline", n * min(trends.BASELINE_EXPORTS, days - 1))):
        pooled = (p0 * m + p1 * n) / (m + n)
        null_se = math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / m))
        se = math.sqrt(p1 * (1 - p1) / n + p0 * (1 - p0) / m)
        found[name] = float(sps.norm.cdf((size - z * null_se) / se))
    return found


def predicted_range(size: float, scale: float, days: int, tests: int, alpha: float = trends.ALPHA) -> tuple:
    """Holm tests the smallest p-value at alpha / tests and the next ones at larger levels. Fewer repeat
    orders also mean fewer orders, so the orders-per-hour comparisons may be rejected first and leave the
    repeat rate's two comparisons to be tested at up to alpha / 2: the baseline comparison's power lies
    between the two levels' powers."""
    return (predicted_power(size, scale, days, alpha / tests)["baseline"],
            predicted_power(size, scale, days, alpha / 2)["baseline"])


def measure(seeds: int = 500, days: int = 8, scale: float = 1.0, size: float = 0.15,
            alpha: float = trends.ALPHA) -> dict:
    """False alarms on series without a change, detection with a drop of `size` on the last day."""
    started = time.perf_counter()
    null, columns = family(series_counts(range(seeds), days, scale))
    planted, _ = family(series_counts(range(seeds, 2 * seeds), days, scale, Plant("repeat-drop", size, days)))
    repeat = [i for i, c in enumerate(columns) if c.startswith("repeat_rate")]
    baseline = columns.index("repeat_rate vs baseline")
    return {
        "seeds": seeds, "days": days, "scale": scale, "size": size, "alpha": alpha, "tests": len(columns),
        "false_alarm_rate": float((null < alpha).any(axis=1).mean()),
        "false_alarm_se": math.sqrt(alpha * (1 - alpha) / seeds),
        "detected": float((planted[:, repeat] < alpha).any(axis=1).mean()),
        "detected_by_baseline": float((planted[:, baseline] < alpha).mean()),
        "predicted": predicted_range(size, scale, days, len(columns), alpha),
        "seconds": time.perf_counter() - started,
    }


def report(found: dict) -> str:
    se = math.sqrt(found["detected_by_baseline"] * (1 - found["detected_by_baseline"]) / found["seeds"])
    low, high = found["predicted"]
    return "\n".join([
        f"{found['seeds']} series of {found['days']} daily exports at scale {found['scale']:g} per case; "
        f"{found['tests']} comparisons per export, Holm at {found['alpha']:g} ({found['seconds']:.1f} s)",
        f"no change: false alarms in {found['false_alarm_rate']:.1%} of series "
        f"(nominal {found['alpha']:.0%}; standard error {found['false_alarm_se']:.1%})",
        f"repeat chance {found['size']:g} lower on the last day: repeat rate flagged in {found['detected']:.1%} of "
        f"series; by the baseline comparison {found['detected_by_baseline']:.1%} (± {se:.1%}), predicted "
        f"{low:.1%} to {high:.1%} (Holm's level for it: alpha / {found['tests']} to alpha / 2)",
    ])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=1000)
    parser.add_argument("--days", type=int, default=8)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--size", type=float, default=0.15)
    args = parser.parse_args(argv)
    print(report(measure(args.seeds, args.days, args.scale, args.size)))


if __name__ == "__main__":
    main()
