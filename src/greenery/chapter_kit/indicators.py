"""The repeat-indicators chapter's logic: equal follow-up, one test per indicator, the answer in words.

An indicator splits the buyers of the equal-follow-up cohort into segments by a trait of their
first order. Each is tested once over all its segments (greenery.chapter_kit.stats.independence); the
p-values are adjusted across every indicator tested (Holm by default), and only an adjusted
p-value below alpha makes a signal. Effect sizes: Cramér's V over the whole indicator, and each
segment's repeat rate against the rest of the cohort (Newcombe interval).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from greenery.chapter_kit import analyses, shared, stats, survival
from greenery.chapter_kit import formats as fmt
from greenery.errors import ParameterError

# What each indicator is, in words, in the order the chapter presents them.
# "First order" is the first order *in the export*: orders before the export began are missing.
TITLES = {
    "hour_of_day": "hour of day of the first order in the export (UTC)",
    "promo": "promo on the first order in the export",
    "delivery": "delivery of the first order in the export against its promise",
    "page_views": "page views up to the first order in the export",
    "cart_adds": "cart adds up to the first order in the export",
    "sessions": "sessions up to the first order in the export",
    "order_value": "value of the first order in the export",
    "products": "products in the first order in the export",
}
ADJUSTMENTS = {"holm": "Holm's step-down method (family-wise error rate)",
               "bh": "the Benjamini–Hochberg method (false discovery rate)"}
MIN_SEGMENT_BUYERS = 5  # an indicator is testable with at least two segments this large


@dataclass(frozen=True)
class FollowUp:
    hours: int
    chosen: bool  # True: chosen from the data (the parameter was 0)
    buyers: int  # all buyers
    followed: int  # buyers whose first order left at least `hours` in the export
    repeat_within: int  # of those, buyers who ordered again within `hours`
    delivered_in_time: int  # of those, buyers whose first parcel arrived before they could order again

    @property
    def rate(self) -> float:
        return self.repeat_within / self.followed if self.followed else float("nan")


def follow_up(windows: pd.DataFrame, hours: int = 0) -> FollowUp:
    """The follow-up window: `hours` when given, else the largest whole number of hours that
    keeps more than half of the buyers (the `follow_up` analysis lists every candidate)."""
    if windows.empty:
        return FollowUp(max(hours, 1), hours == 0, 0, 0, 0, 0)
    if hours <= 0:
        kept = windows[2 * windows["buyers_followed"] > windows["buyers"]]
        hours = int(kept["follow_up_hours"].max()) if len(kept) else 1
    row = windows[(windows["follow_up_hours"] == hours) & (windows["buyers_followed"] > 0)]
    if row.empty:  # longer than anyone was followed: there is no cohort to compare, only a wrong parameter
        longest = windows.loc[windows["buyers_followed"] > 0, "follow_up_hours"].max()
        raise ParameterError(f"--param follow_up_hours={hours}: no buyer's first order left that long in this "
                             f"export (at most {int(longest) if longest == longest else 0} hours); 0 chooses "
                             "the window from the data")
    r = row.iloc[0]
    return FollowUp(hours, False, int(r.buyers), int(r.buyers_followed), int(r.repeat_buyers_within),
                    int(r.delivered_before_next_chance))


def segments(frame: pd.DataFrame) -> pd.DataFrame:
    """One indicator's segments with rate, Wilson interval, and the difference to the rest of
    the cohort (everyone in the indicator outside the segment) with its Newcombe interval."""
    frame = frame.sort_values("segment_order")
    counts = list(zip(frame["segment"].tolist(), frame["repeat_buyers"].astype(int).tolist(),
                      frame["buyers"].astype(int).tolist(), strict=True))
    return pd.DataFrame(_segment_rows(counts), columns=SEGMENT_COLUMNS)


def _segment_rows(counts: list[tuple[str, int, int]]) -> list[dict]:
    """`segments`' rows from one indicator's (segment, repeat buyers, buyers), in segment order."""
    total, repeat = sum(n for _, _, n in counts), sum(k for _, k, _ in counts)
    return [_segment_row(segment, k, n, total, repeat) for segment, k, n in counts]


def _segment_row(segment: str, k: int, n: int, total: int, repeat: int) -> dict:
    """One segment's row of `segments`: plain ints, a few scalar formulas."""
    rest_k, rest_n = repeat - k, total - n
    low, high = stats.wilson(k, n)
    d_low, d_high = stats.newcombe(k, n, rest_k, rest_n)
    return {"segment": segment, "buyers": n, "repeat_buyers": k, "rate": k / n if n else float("nan"),
            "rate_low": low, "rate_high": high, "rest_buyers": rest_n,
            "rest_rate": rest_k / rest_n if rest_n else float("nan"),
            "difference": (k / n - rest_k / rest_n) if n and rest_n else float("nan"),
            "difference_low": d_low, "difference_high": d_high}


def _counts(indicators: pd.DataFrame) -> dict[str, list[tuple[str, int, int]]]:
    """Each indicator's (segment, repeat buyers, buyers) in segment order, from a `repeat_by_indicator` frame."""
    found: dict[str, list[tuple[int, str, int, int]]] = {}
    for name, segment, order, k, n in zip(indicators["indicator"].tolist(), indicators["segment"].tolist(),
                                          indicators["segment_order"].tolist(),
                                          indicators["repeat_buyers"].astype(int).tolist(),
                                          indicators["buyers"].astype(int).tolist(), strict=True):
        found.setdefault(name, []).append((order, segment, k, n))
    return {name: [(segment, k, n) for _, segment, k, n in sorted(rows, key=lambda row: row[0])]
            for name, rows in found.items()}


def _family(counts: dict[str, list[tuple[str, int, int]]]) -> list[tuple[str, stats.Test, bool, str | None]]:
    """One window's family of tests, in TITLES order: each indicator's name, its test over all its segments,
    whether it counts as tested (two segments of MIN_SEGMENT_BUYERS, an outcome that varies, not a
    duplicate), and the earlier indicator with the very same counts (`same_as`, see indicator_tests)."""
    family, seen = [], {}  # the segment counts of each indicator tested so far -> its name
    for name in [n for n in TITLES if n in counts]:
        segments_ = counts[name]
        testable = sum(n >= MIN_SEGMENT_BUYERS for _, _, n in segments_) >= 2
        test = stats.independence([k for _, k, _ in segments_], [n for _, _, n in segments_])
        testable = testable and test.method != "not testable"
        key = tuple((n, k) for _, k, n in segments_)
        same_as = seen.get(key) if testable else None
        if testable and same_as is None:
            seen[key] = name
        family.append((name, test, testable and same_as is None, same_as))
    return family


def _check_adjustment(adjustment: str) -> None:
    if adjustment not in ADJUSTMENTS:
        raise ValueError(f"adjustment must be one of {sorted(ADJUSTMENTS)}, not {adjustment!r}")


def _adjusted(p_values: list[float], adjustment: str) -> list[float]:
    return (stats.holm if adjustment == "holm" else stats.benjamini_hochberg)(p_values)


SEGMENT_COLUMNS = ["segment", "buyers", "repeat_buyers", "rate", "rate_low", "rate_high", "rest_buyers",
                   "rest_rate", "difference", "difference_low", "difference_high"]


def indicator_tests(indicators: pd.DataFrame, alpha: float = 0.05, adjustment: str = "holm") -> pd.DataFrame:
    """One test per indicator over all its segments, p-values adjusted across the testable ones.

    Two indicators whose segments hold the same buyers and repeat buyers, segment by segment
    (say cart adds and products when every buyer added exactly what they bought), are one
    comparison under two names: the later one is not tested again (`same_as` names the first) and
    is left out of the adjusted family, so a duplicate cannot make the adjustment stricter.

    Columns: indicator, segments, buyers, testable, same_as, method, statistic, dof, p_value,
    p_adjusted, cramers_v, the segment furthest from the rest of the cohort and that difference
    with its interval, and is_signal (adjusted p below alpha)."""
    _check_adjustment(adjustment)
    counts = _counts(indicators)
    rows = []
    for name, test, testable, same_as in _family(counts):
        table = pd.DataFrame(_segment_rows(counts[name]), columns=SEGMENT_COLUMNS)
        method = "same counts as " + TITLES[same_as] if same_as else test.method if testable else "not testable"
        furthest = table.loc[table["difference"].abs().fillna(-1).idxmax()]
        rows.append({"indicator": name, "segments": len(table), "buyers": int(table["buyers"].sum()),
                     "testable": testable, "same_as": same_as, "method": method,
                     "statistic": test.statistic, "dof": test.dof, "p_value": test.p_value if testable else None,
                     "cramers_v": test.cramers_v, "furthest_segment": furthest.segment,
                     "difference": furthest.difference, "difference_low": furthest.difference_low,
                     "difference_high": furthest.difference_high})
    result = pd.DataFrame(rows)
    if result.empty:
        return result.assign(p_adjusted=[], is_signal=[])
    tested = result["testable"]
    result["p_adjusted"] = None
    result.loc[tested, "p_adjusted"] = _adjusted(result.loc[tested, "p_value"].astype(float).tolist(), adjustment)
    result["is_signal"] = tested & (result["p_adjusted"].astype(float) < alpha)
    return result


def detectable(cohort: FollowUp, alpha: float, tests: int) -> dict:
    """What this cohort could detect: the smallest gap between two equal halves (80 % power) at
    alpha, and at the level Holm's first step demands with `tests` tests; and the buyers per
    group a 10-point gap would need."""
    half = cohort.followed // 2
    rate = cohort.rate if 0 < cohort.rate < 1 else 0.5
    strict = alpha / max(tests, 1)
    return {"half": half, "gap": stats.detectable_difference(half, half, rate, alpha),
            "gap_adjusted": stats.detectable_difference(half, half, rate, strict),
            "needed_for_10_points": stats.buyers_needed(0.10, rate, strict), "rate": rate}


def answer(tests: pd.DataFrame, cohort: FollowUp, alpha: float, adjustment: str, reach: dict) -> str:
    """The chapter's answer in words: signals if the adjusted tests support any, else plainly none."""
    opening = (f"**Answer.** Compared on equal follow-up ({cohort.hours} hours after the first order in the export, "
               "the "
               f"{fmt.count(cohort.followed)} of {fmt.count(cohort.buyers)} buyers whose first order left that long "
               f"in the export), {fmt.count(cohort.repeat_within)} ({fmt.pct(cohort.rate)}) ordered again within "
               f"{cohort.hours} hours. ")
    tested = tests[tests["testable"]]
    method = "Holm" if adjustment == "holm" else "Benjamini–Hochberg"
    if tested.empty:
        return opening + "No indicator has two segments large enough to test."
    signals = tested[tested["is_signal"]]
    if len(signals):
        named = "; ".join(
            f"**{TITLES[r.indicator]}** (adjusted {fmt.p_is(r.p_adjusted)}; {r.furthest_segment}: "
            f"{fmt.points(r.difference)} against the rest, 95 % interval "
            f"{fmt.points_range(r.difference_low, r.difference_high)})" for r in signals.itertuples())
        rest = len(tested) - len(signals)
        return (opening + f"Of {len(tested)} indicators tested (one test each, {method}-adjusted at "
                f"{fmt.pct(alpha, 0)}), {len(signals)} {'is' if len(signals) == 1 else 'are'} distinguishable from "
                f"chance: {named}. The other {rest} are not. These are associations, not causes.")
    best = tested.sort_values("p_value").iloc[0]
    return (opening + f"**No indicator is distinguishable from chance at this sample size**: of {len(tested)} "
            f"indicators tested (one test each over all its segments, {method}-adjusted at {fmt.pct(alpha, 0)}), "
            f"the smallest adjusted p-value is {fmt.p_value(best.p_adjusted)} ({TITLES[best.indicator]}). "
            f"Two equal halves of this cohort ({fmt.count(reach['half'])} buyers each) could only reveal a gap of "
            f"about {fmt.points(reach['gap']).lstrip('+')} (80 % power); telling a 10-point gap from chance after "
            f"adjustment would need about {fmt.count(reach['needed_for_10_points'])} buyers per group, each followed "
            "for the same time: months of orders, not two days.")


def verdict_line(tests: pd.DataFrame, adjustment: str, alpha: float) -> str:
    """One line for the summary."""
    tested = tests[tests["testable"]] if len(tests) else tests
    method = "Holm" if adjustment == "holm" else "Benjamini–Hochberg"
    if tested.empty:
        return "no indicator could be tested"
    signals = tested[tested["is_signal"]]
    if signals.empty:
        return (f"no indicator is distinguishable from chance at this sample size ({len(tested)} tested on equal "
                f"follow-up, {method}-adjusted at {fmt.pct(alpha, 0)})")
    return (f"{', '.join(TITLES[n] for n in signals['indicator'])} "
            f"({'is' if len(signals) == 1 else 'are'} distinguishable from chance after {method} adjustment, "
            f"of {len(tested)} tested on equal follow-up)")


# --------------------------------------------------------------------------- every reasonable window

# The shortest reasonable equal-follow-up window: long enough that at least this share of buyers
# had ordered again within it (Kaplan–Meier, so buyers censored early still count for the time they
# were followed). Shorter windows compare who reorders within a few hours (speed, not whether) on so
# few repeat orders per segment that a test has nothing to work with. The longest is the default
# window: the largest that keeps more than half of the buyers.
SHORTEST_WINDOW_SHARE = 1 / 3


def window_range(windows: pd.DataFrame, hours, reordered) -> tuple[int, int]:
    """The reasonable equal-follow-up windows, in whole hours, derived from the data (see above)."""
    high = follow_up(windows, 0).hours
    reached = survival.quantile_hours(hours, reordered, SHORTEST_WINDOW_SHARE)
    low = max(1, math.ceil(reached)) if reached == reached else high
    return (min(low, high), high)


# Shared for the frames a chapter sweeps itself (promos' own window, when the swept windows lack it); the
# sweep of every window, which the promos and indicators chapters both read, is shared by sweep_windows.
@shared.once_per_report
def sweep(frames: dict[int, pd.DataFrame], alpha: float = 0.05, adjustment: str = "holm") -> pd.DataFrame:
    """The equal-follow-up tests at every window: `frames` maps each window H (hours) to its
    `repeat_by_indicator` frame. One row per window and indicator: its test (adjusted across that
    window's family), and its first segment (promo, 1 session, ...) against the rest of the cohort."""
    rows = []
    for hours, frame in sorted(frames.items()):
        if not len(frame):
            continue
        _check_adjustment(adjustment)
        # What indicator_tests gives for this window, and its first segment (`segments`), from plain values
        # rather than a frame per indicator and window (which cost more than the tests): the same figures.
        counts = _counts(frame)
        family = _family(counts)
        adjusted = iter(_adjusted([test.p_value for _, test, testable, _ in family if testable], adjustment))
        for name, test, testable, _ in family:
            segments_ = counts[name]  # the segments the test was computed from; the first one against the rest
            lead = _segment_row(*segments_[0], sum(n for _, _, n in segments_), sum(k for _, k, _ in segments_))
            p_adjusted = next(adjusted) if testable else None
            rows.append({"hours": hours, "indicator": name, "testable": testable,
                         "p_value": test.p_value if testable else None, "p_adjusted": p_adjusted,
                         "is_signal": bool(testable and p_adjusted < alpha),
                         "segment": lead["segment"], "buyers": lead["buyers"], "repeat_buyers": lead["repeat_buyers"],
                         "rate": lead["rate"], "rest_buyers": lead["rest_buyers"], "rest_rate": lead["rest_rate"],
                         "difference": lead["difference"], "difference_low": lead["difference_low"],
                         "difference_high": lead["difference_high"]})
    return pd.DataFrame(rows)


def sweep_windows(con, traffic: dict, low: int, high: int, alpha: float = 0.05,
                  adjustment: str = "holm") -> pd.DataFrame:
    """`sweep` of every whole-hour window from `low` to `high`, each window's frame the `repeat_by_indicator`
    analysis with the unusual-traffic rules `traffic` (max_sessions_per_hour, max_sessions_per_account).

    The promos and indicators chapters both ask for it: computed once per report (greenery.chapter_kit.shared),
    keyed by what the frames are computed from rather than by the frames themselves (the warehouse's build,
    named by its export's and code's fingerprint and its build id, the analysis's SQL and the parameters), so
    that the chapter that reads it runs none of the windows' queries (a query a window, 0.2 CPU s)."""
    build = analyses.record(con, "build_info")

    def compute(*_) -> pd.DataFrame:
        return sweep.compute({h: analyses.frame(con, "repeat_by_indicator", {**traffic, "follow_up_hours": h})
                              for h in range(low, high + 1)}, alpha, adjustment)

    return shared.computed("indicators.sweep_windows", compute, build.fingerprint, build.build_id,
                           analyses.sql("repeat_by_indicator"), *(analyses.sql(m) for m in analyses.MACROS),
                           dict(sorted(traffic.items())), int(low), int(high), alpha, adjustment)


def hours_text(hours: list[int]) -> str:
    """Whole hours as runs: [10, 11, 12, 13, 16] -> "10–13 h and 16 h"."""
    runs: list[list[int]] = []
    for h in sorted(hours):
        if runs and h == runs[-1][-1] + 1:
            runs[-1].append(h)
        else:
            runs.append([h])
    parts = [f"{r[0]} h" if len(r) == 1 else f"{r[0]}{fmt.DASH}{r[-1]} h" for r in runs]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _bare(value: float) -> str:
    """A difference in points without sign or unit: 0.1 -> "10"."""
    return fmt.points(value).lstrip("+").removesuffix(" points").removesuffix(" point")


def window_verdict(swept: pd.DataFrame, indicator: str, who: str, alpha: float = 0.05) -> str:
    """How one indicator's first segment fares across every window, in one sentence: ahead or behind
    at every window (by how much), and at which windows the adjusted test is below alpha. A result
    that holds only at some windows is called a hypothesis, never settled."""
    rows = swept[swept["indicator"] == indicator].sort_values("hours")
    if rows.empty:
        return f"{who}: no window could be tested"
    low, high = int(rows["hours"].min()), int(rows["hours"].max())
    span = f"from {low} to {high} h" if low != high else f"of {low} h"
    d = rows["difference"].dropna()
    ahead = rows.loc[rows["difference"] > 0, "hours"].tolist()
    behind = rows.loc[rows["difference"] < 0, "hours"].tolist()
    if len(d) and len(ahead) == len(rows):
        direction = (f"{who} were ahead at every window {span} (by {_bare(d.min())} to "
                     f"{fmt.points(d.max()).lstrip('+')})")
    elif len(d) and len(behind) == len(rows):
        direction = (f"{who} were behind at every window {span} (by {_bare(-d.max())} to "
                     f"{fmt.points(-d.min()).lstrip('+')})")
    else:
        direction = (f"{who} were ahead at {hours_text(ahead) if ahead else 'no window'} and behind at "
                     f"{hours_text(behind) if behind else 'no window'}, of the windows {span}")
    tested = rows[rows["testable"]]
    signal = tested.loc[tested["is_signal"], "hours"].tolist()
    untested = rows.loc[~rows["testable"], "hours"].tolist()
    level = f"below {fmt.number(alpha, 2).rstrip('0').rstrip('.')}"
    if not signal:
        verdict = f"the adjusted p-value is {level} at none of them: no evidence of a difference at any window"
    elif len(signal) == len(rows):
        verdict = f"the adjusted p-value is {level} at every one of them"
    else:
        verdict = (f"the adjusted p-value is {level} only at {hours_text(signal)}: a conclusion that changes with "
                   "the window, so a hypothesis to test on more data, not a finding")
    return direction + "; " + verdict + (f" (not testable at {hours_text(untested)})" if untested else "")


def best_case(n: int, rest_k: int, rest_n: int, alpha: float) -> tuple[float, float, str]:
    """Whether `n` buyers could show a rise against the rest (`rest_k` of `rest_n`) at all: the p-value
    if every one of them had reordered, the smallest detectable rise (80 % power) respecting the
    ceiling of 100 %, and a sentence saying so."""
    if not n or not rest_n:
        return (float("nan"), float("nan"), "")
    base = rest_k / rest_n
    best = stats.independence([n, rest_k], [n, rest_n]).p_value
    room = 1 - base
    if best >= alpha:
        return (best, float("nan"), (
            f"even if all {fmt.count(n)} had reordered, the test would give {fmt.p_is(best)}: from a base of "
            f"{fmt.pct(base)}, no result from {fmt.count(n)} buyers could show a rise (at most "
            f"{fmt.points(room).lstrip('+')} remain above the base)"))
    gap = stats.detectable_difference(n, rest_n, base if 0 < base < 1 else 0.5, alpha)
    if gap >= room:
        return (best, gap, (
            f"from a base of {fmt.pct(base)} only {fmt.points(room).lstrip('+')} remain, so only a segment in which "
            f"nearly all of its {fmt.count(n)} buyers reordered could show a rise"))
    return (best, gap, (
        f"with {fmt.count(n)} buyers a true rise of about {fmt.points(gap).lstrip('+')} (from {fmt.pct(base)} to "
        f"{fmt.pct(base + gap)}) would be detected 80 % of the time"))


def family_verdict(survival_tests: pd.DataFrame, swept: pd.DataFrame, alpha: float = 0.05,
                   method: str = "Holm") -> str:
    """The indicators' conclusion in one sentence, whatever window a reader picks: the log-rank tests on
    every buyer (Holm-adjusted), then the indicators whose equal-follow-up test is below alpha at some
    window of the reasonable range, with those windows."""
    tested = survival_tests[survival_tests["testable"]] if len(survival_tests) else survival_tests
    if tested.empty:
        return "no indicator could be tested"
    buyers = int(survival_tests["buyers"].max())
    signals = tested[tested["is_signal"]]
    if len(signals):
        first = (f"followed until their next order or the export's end (all {fmt.count(buyers)} buyers), "
                 + "; ".join(f"{TITLES[r.indicator]} is distinguishable from chance after {method} adjustment "
                             f"({fmt.p_is(r.p_adjusted)})" for r in signals.itertuples())
                 + f", of {len(tested)} indicators tested")
    else:
        best = tested.sort_values("p_value").iloc[0]
        first = (f"followed until their next order or the export's end (all {fmt.count(buyers)} buyers), no indicator "
                 f"is distinguishable from chance after {method} adjustment across the {len(tested)} tested (smallest: "
                 f"{TITLES[best.indicator]}, {fmt.p_is(best.p_value)} unadjusted, "
                 f"adjusted {fmt.p_value(best.p_adjusted)})")
    if swept.empty:
        return first
    low, high = int(swept["hours"].min()), int(swept["hours"].max())
    level = fmt.number(alpha, 2).rstrip("0").rstrip(".")
    flagged = swept[swept["is_signal"]].groupby("indicator")["hours"].apply(list)
    windows = len(range(low, high + 1))
    if flagged.empty:
        second = (f"on equal follow-up, no indicator's adjusted p-value is below {level} at any window from {low} to "
                  f"{high} h")
    else:
        parts = []
        for name, hours in flagged.items():
            parts.append(f"{TITLES[name]} only at {hours_text(hours)}" if len(hours) < windows
                         else f"{TITLES[name]} at every one")
        fragile = any(len(h) < windows for h in flagged)
        second = (f"on equal follow-up, at windows from {low} to {high} h, the adjusted p-value is below {level} for "
                  + "; ".join(parts) + (": a conclusion that changes with the window, so a hypothesis to test on more "
                                        "data, not a finding" if fragile else ""))
    return first + "; " + second


def headline(survival_tests: pd.DataFrame, swept: pd.DataFrame) -> tuple[str, str]:
    """The summary's tile: a short figure and plain sentences a manager can repeat, from the same tests
    as the page's answer (every buyer, followed until their next order; Holm across traits) and its
    window sweep. The closest trait is given with its direction, size and interval, so that "nothing
    passed" never reads as "nothing matters"; a trait below the level at some windows only is a lead
    to test, never a finding."""
    tested = survival_tests[survival_tests["testable"]] if len(survival_tests) else survival_tests
    if tested.empty:
        return "Not testable", "Too few buyers to test what goes with a second order."
    buyers = fmt.count(int(survival_tests["buyers"].max()))
    signals = tested[tested["is_signal"]]
    if len(signals):
        names = [TITLES[n] for n in signals["indicator"]]
        return (f"{len(signals)} of {len(tested)} traits",
                f"{'; '.join(names)}: {'goes' if len(names) == 1 else 'go'} with reordering sooner beyond chance, "
                f"across all {buyers} buyers (an association, not a cause).")
    windows = len(range(int(swept["hours"].min()), int(swept["hours"].max()) + 1)) if len(swept) else 0
    flagged = (swept[swept["is_signal"]].groupby("indicator")["hours"].apply(list) if len(swept)
               else pd.Series(dtype=object))
    line = f"No trait of a first order goes with reordering beyond chance once all {len(tested)} are tested."
    best = tested.sort_values("p_value").iloc[0]
    fragile = {name: hours for name, hours in flagged.items() if len(hours) < windows}
    ratio = best.get("hazard_ratio")
    if ratio is not None and ratio == ratio and ratio > 0:
        faster = ratio >= 1
        low, high = (best.ratio_low, best.ratio_high) if faster else (1 / best.ratio_high, 1 / best.ratio_low)
        pace = f"{fmt.number(ratio if faster else 1 / ratio, 1)} times as {'fast' if faster else 'slowly'}"
        line += (f" Closest: {TITLES[best.indicator]}: its \u201c{best.segment}\u201d buyers reordered {pace} as "
                 f"the rest (95 % interval {fmt.number(low, 1)}{fmt.DASH}{fmt.number(high, 1)}; adjusted "
                 f"{fmt.p_is(best.p_adjusted)})")
        if best.indicator in fragile:
            line += (f", a difference that passes the test only at follow-up windows of "
                     f"{hours_text(fragile.pop(best.indicator))}: a lead to test on more data, not a finding")
        line += "."
    if fragile:
        line += (" Only at some follow-up windows does a difference pass the test: "
                 + "; ".join(f"{TITLES[name]} ({hours_text(hours)})" for name, hours in fragile.items())
                 + ". A lead to test on more data, not a finding.")
    fragile = bool(fragile) or "a lead to test" in line
    return "None settled" if fragile else "None found", line
