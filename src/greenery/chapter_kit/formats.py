"""How the book writes numbers, in one place: "79.8 %", "72–86 %", "+3.1 points", "Wed 10 Feb 14:00".

One style everywhere: a (no-break) space before %, ranges with an en dash, thousands with commas,
timestamps as weekday, day, month and clock time (UTC), p-values to three significant places.
"""

from __future__ import annotations

import math
from datetime import datetime

DASH = "–"  # en dash: ranges and missing values
PCT = "\u00a0%"  # a no-break space before %: a number and its % sign never part at a line end


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def count(value) -> str:
    """1,234"""
    return DASH if _missing(value) else f"{int(value):,}"


def pct(value, digits: int = 1) -> str:
    """A share as a percentage: 0.7984 -> "79.8 %"."""
    return DASH if _missing(value) else f"{100 * value:.{digits}f}{PCT}"


def pct_range(low, high, digits: int = 0) -> str:
    """An interval of shares: (0.72, 0.86) -> "72–86 %"."""
    if _missing(low) or _missing(high):
        return DASH
    return f"{100 * low:.{digits}f}{DASH}{100 * high:.{digits}f}{PCT}"


def points(value, digits: int = 0) -> str:
    """A difference of two shares in percentage points, signed: 0.031 -> "+3 points"."""
    if _missing(value):
        return DASH
    text = f"{100 * value:+.{digits}f}"
    unit = " point" if abs(float(text)) == 1 else " points"
    return ("±0" if float(text) == 0 else text.replace("-", "−")) + unit


def points_range(low, high, digits: int = 0) -> str:
    """An interval of differences in points: (-0.05, 0.12) -> "−5 to +12 points"."""
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


def hour(value: datetime) -> str:
    """A clock hour or moment (UTC): "Wed 10 Feb 14:00"."""
    return DASH if value is None else f"{value:%a %d %b %H:%M}"


def day(value: datetime) -> str:
    """A day: "Wed 10 Feb 2021"."""
    return DASH if value is None else f"{value:%a %d %b %Y}"


def usd(value, digits: int = 2) -> str:
    """US$1,234.50"""
    return DASH if _missing(value) else f"US${float(value):,.{digits}f}"


def number(value, digits: int = 1) -> str:
    """12.3 (thousands with commas)"""
    return DASH if _missing(value) else f"{float(value):,.{digits}f}"


def truncated_pct(value, digits: int = 2) -> str:
    """A share cut (not rounded) to `digits` decimals of a percent: 0.798387 -> "79.83 %"."""
    if _missing(value):
        return DASH
    scale = 10 ** digits
    return f"{math.floor(100 * value * scale) / scale:.{digits}f}{PCT}"
