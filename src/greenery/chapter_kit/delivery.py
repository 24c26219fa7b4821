"""The operations chapter's delivery logic: what the dates can support, and carriers compared pair by pair.

When the data test assert_delivery_dates_not_whole_days warns, the delivery and promised dates look
generated: the chapter then states no on-time rate and no delivery time, and `generated_reason` says
why in plain words. Otherwise carriers are compared pair by pair, each gap with its interval, so a
non-significant test is never written as "no difference" while an interval excludes zero.
"""

from __future__ import annotations

import itertools

import pandas as pd

from greenery.chapter_kit import escape, stats
from greenery.chapter_kit import formats as fmt

DATES_TEST = "assert_delivery_dates_not_whole_days"


def display_carrier(name: str) -> str:
    """Carriers as their companies write them (ups -> UPS, fedex -> FedEx); another name is data, shown as
    text in Markdown."""
    return escape.markdown(fmt.carrier(name))  # the book's one list of display names


def generated_reason(dates: pd.DataFrame, after: int, delivered: int) -> str:
    """Why the dates cannot carry an on-time rate, from `delivery_dates` (one row per kind of date)."""
    by = {r.kind: r for r in dates.itertuples()}
    parts = []
    for kind, noun in (("delivered", "delivery"), ("promised", "promised")):
        r = by.get(kind)
        if r is None:
            continue
        every = r.whole_days == r.dates
        share = "every" if every else f"{fmt.count(r.whole_days)} of {fmt.count(r.dates)}"
        parts.append(f"{share} {noun} date{'' if every else 's'} {'is' if every else 'are'} a whole number of days "
                     f"after {'its' if every else 'their'} order, "
                     f"to the second ({fmt.count(r.min_days)} to {fmt.count(r.max_days)} days, each day holding "
                     f"{fmt.count(r.fewest_on_a_day)} to {fmt.count(r.most_on_a_day)} of the {fmt.count(r.dates)})")
    text = "; ".join(parts)
    rho = next(iter(by.values())).spearman_rho if by else None
    if rho is not None and rho == rho:
        text += (f"; the promise and the delivery of the same order barely go together "
                 f"(rank correlation {fmt.number(rho, 2)})" if abs(rho) < 0.2 else
                 f"; rank correlation of promise and delivery {fmt.number(rho, 2)}")
    if after:
        text += (f"; and {fmt.count(after)} of {fmt.count(delivered)} delivery dates fall after the export's "
                 "last recorded event")
    return text


def carrier_pairs(carriers: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Every pair of carriers with a promised date: late shares, their difference (first minus second,
    the later first) with its Newcombe interval at 1 - alpha, the pair's own test, and its p-value
    Holm-adjusted across the pairs."""
    usable = carriers[carriers["with_estimate"] > 0]
    rows = []
    for a, b in itertools.combinations(usable.itertuples(), 2):
        if a.late / a.with_estimate < b.late / b.with_estimate:
            a, b = b, a
        low, high = stats.newcombe(int(a.late), int(a.with_estimate), int(b.late), int(b.with_estimate), 1 - alpha)
        test = stats.independence([a.late, b.late], [a.with_estimate, b.with_estimate])
        difference = a.late / a.with_estimate - b.late / b.with_estimate
        rows.append({"first": a.carrier, "second": b.carrier, "difference": difference,
                     "low": low, "high": high, "method": test.method, "p_value": test.p_value})
    pairs = pd.DataFrame(rows, columns=["first", "second", "difference", "low", "high", "method", "p_value"])
    pairs["adjusted_p"] = stats.holm(list(pairs["p_value"])) if len(pairs) else []
    return pairs.sort_values("difference", ascending=False, kind="stable").reset_index(drop=True)


def pair_words(pair, pairs: int, alpha: float = 0.05) -> str:
    """One pair in words: a difference only where the evidence holds, and never "no difference" where
    the interval excludes zero."""
    a, b = display_carrier(pair.first), display_carrier(pair.second)
    gap = f"{fmt.points(pair.difference)} (interval {fmt.points_range(pair.low, pair.high)})"
    if pair.adjusted_p < alpha:
        return f"{a} arrived late more often than {b}: {gap}, adjusted {fmt.p_is(pair.adjusted_p)}"
    if pair.low > 0:
        return (f"{a} arrived late more often than {b} by {gap}, but after adjusting for the {pairs} pairs compared "
                f"({fmt.p_is(pair.adjusted_p)}) this is a gap to watch, not a settled difference")
    return f"no evidence of a difference between {a} and {b}: {gap}"
