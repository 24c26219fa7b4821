"""How the book writes numbers, dates and the shop's codes, in one place.

One style everywhere:
- percentages to one decimal, with a no-break space before % ("79.8 %"); two decimals only where a
  published figure is quoted (`pct(v, 2)`: the repeat rate 79.84 %). Intervals and differences in
  points likewise ("72.4–86.1 %", "+3.1 points");
- counts with thousands commas ("1,234"); amounts in US dollars ("US$1,234.50"); every amount in
  prose says what it is the total of (`usd_of`);
- dates and times in UTC, one style in prose ("Wed 10 Feb 2021 14:00 UTC", `moment`; a day alone,
  "Wed 10 Feb 2021", `day`) and one in tables ("2021-02-10 14:00", `table_time`; "2021-02-10",
  `table_day`): ISO order in tables sorts and reads at a glance in a column;
- on a chart's axis, short ticks ("Wed 14:00", "Wed 10 Feb": `tick_hour`, `tick_day`); hours as "24 h";
- carriers and order statuses by their display names ("UPS", "FedEx"; "Preparing", "Delivered");
- p-values to three significant places.
CSV downloads hold none of this: greenery.chapter_kit.tables writes the raw values.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

DASH = "–"  # en dash: ranges and missing values
PCT = "\u00a0%"  # a no-break space before %: a number and its % sign never part at a line end

CARRIERS = {"ups": "UPS", "fedex": "FedEx", "usps": "USPS", "dhl": "DHL"}
STATUSES = {"preparing": "Preparing", "shipped": "Shipped", "delivered": "Delivered"}


def _missing(value) -> bool:
    try:
        return value is None or bool(value != value)  # NaN, a Decimal NaN and pandas' NaT differ from themselves
    except TypeError:  # pandas' NA: its comparisons are NA, whose truth is undefined
        return True
    except ValueError:  # an array: not one value
        return False


def count(value) -> str:
    """1,234"""
    return DASH if _missing(value) else f"{int(value):,}"


def counted(value, noun: str, plural: str | None = None) -> str:
    """A count and its noun, singular or plural: "1 export", "2 exports", "1,234 buyers"."""
    return f"{count(value)} {noun if not _missing(value) and int(value) == 1 else plural or noun + 's'}"


def pct(value, digits: int = 1) -> str:
    """A share as a percentage: 0.7984 -> "79.8 %" (digits=2 only to quote a published figure)."""
    return DASH if _missing(value) else f"{100 * value:.{digits}f}{PCT}"


def pct_range(low, high, digits: int = 1) -> str:
    """An interval of shares: (0.7234, 0.8612) -> "72.3–86.1 %"."""
    if _missing(low) or _missing(high):
        return DASH
    return f"{100 * low:.{digits}f}{DASH}{100 * high:.{digits}f}{PCT}"


def points(value, digits: int = 1) -> str:
    """A difference of two shares in percentage points, signed: 0.031 -> "+3.1 points"."""
    if _missing(value):
        return DASH
    text = f"{100 * value:+.{digits}f}"
    unit = " point" if text.lstrip("+-") == "1" else " points"  # "+1 point", but "+1.0 points"
    return ("±0" if float(text) == 0 else text.replace("-", "−")) + unit


def points_range(low, high, digits: int = 1) -> str:
    """An interval of differences in points: (-0.05, 0.12) -> "−5.0 to +12.0 points"."""
    if _missing(low) or _missing(high):
        return DASH
    return f"{points(low, digits).removesuffix(' points').removesuffix(' point')} to {points(high, digits)}"


def p_value(value) -> str:
    """p = 0.0123 -> "0.0123"; tiny ones as "< 0.001", and those that round to 1 as "> 0.99"
    (an adjusted p-value capped at 1 is not a certainty of no effect)."""
    if _missing(value):
        return DASH
    return "< 0.001" if value < 0.001 else "> 0.99" if value > 0.99 else f"{value:.3g}"


def p_is(value) -> str:
    """"p = 0.0457", "p < 0.001", "p > 0.99": a p-value in a sentence."""
    text = p_value(value)
    return "p " + text if text[0] in "<>" else "p = " + text


def _utc(value) -> datetime | date | None:
    """A datetime in UTC (a naive one is taken as UTC, as the warehouse stores it); a date as it is."""
    if _missing(value):
        return None
    if hasattr(value, "to_pydatetime"):  # pandas' Timestamp
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def hour(value) -> str:
    """A moment in prose without its zone, for "from X to Y UTC": "Wed 10 Feb 2021 14:00"."""
    moment_ = _utc(value)
    return DASH if moment_ is None else f"{day(moment_)} {moment_:%H:%M}"


def moment(value) -> str:
    """A moment in prose (UTC): "Wed 10 Feb 2021 14:00 UTC"."""
    text = hour(value)
    return text if text == DASH else text + " UTC"


def day(value) -> str:
    """A day in prose: "Wed 10 Feb 2021" (no leading zero on the day)."""
    when = _utc(value)
    return DASH if when is None else f"{when:%a} {when.day} {when:%b %Y}"


def table_time(value) -> str:
    """A moment in a table (UTC, said in the column's header): "2021-02-10 14:00"."""
    when = _utc(value)
    return DASH if when is None else f"{when:%Y-%m-%d %H:%M}"


def table_day(value) -> str:
    """A day in a table: "2021-02-10"."""
    when = _utc(value)
    return DASH if when is None else f"{when:%Y-%m-%d}"


def iso(value) -> str:
    """A moment for machines (CSV downloads): ISO 8601 in UTC, "2021-02-10T14:00:00Z"; a day "2021-02-10"."""
    when = _utc(value)
    if when is None:
        return ""
    if isinstance(when, datetime):
        return when.isoformat().replace("+00:00", "Z")
    return when.isoformat()


def usd(value, digits: int = 2) -> str:
    """US$1,234.50"""
    return DASH if _missing(value) else f"US${float(value):,.{digits}f}"


def usd_of(value, what: str, digits: int = 2) -> str:
    """An amount that says what it is the total of: usd_of(9765.54, "revenue from promo orders") ->
    "US$9,765.54 of revenue from promo orders"."""
    return f"{usd(value, digits)} of {what}"


def hours(value) -> str:
    """A length of time in whole hours, as tables and windows write it: 24 -> "24 h"."""
    return DASH if _missing(value) else f"{int(value):,} h"


def yes_no(value) -> str:
    """A yes-or-no column (a test's verdict) in words: True -> "yes"."""
    return DASH if _missing(value) else "yes" if value else "no"


def tick_hour(value) -> str:
    """An hour on a chart's axis, short (the axis says UTC): "Wed 14:00"; the day alone at midnight,
    "Wed 10 Feb", so a reader sees where each day starts. A tick label is not prose."""
    when = _utc(value)
    if when is None:
        return DASH
    return f"{when:%a} {when.day} {when:%b}" if (when.hour, when.minute) == (0, 0) else f"{when:%a %H:%M}"


def tick_day(value) -> str:
    """A day on a chart's axis, short: "Wed 10 Feb"."""
    when = _utc(value)
    return DASH if when is None else f"{when:%a} {when.day} {when:%b}"


def number(value, digits: int = 1) -> str:
    """12.3 (thousands with commas)"""
    return DASH if _missing(value) else f"{float(value):,.{digits}f}"


def truncated_pct(value, digits: int = 2) -> str:
    """A share cut (not rounded) to `digits` decimals of a percent: 0.798387 -> "79.83 %"."""
    if _missing(value):
        return DASH
    scale = 10 ** digits
    return f"{math.floor(100 * value * scale) / scale:.{digits}f}{PCT}"


def _display(names: dict[str, str], value) -> str:
    if _missing(value):
        return DASH
    text = str(value).strip()
    return names.get(text.lower(), text[:1].upper() + text[1:])


def carrier(value) -> str:
    """A carrier by its own name: "ups" -> "UPS", "fedex" -> "FedEx"; an unknown one capitalised."""
    return _display(CARRIERS, value)


def status(value) -> str:
    """An order status as readers read it: "preparing" -> "Preparing"; an unknown one capitalised."""
    return _display(STATUSES, value)
