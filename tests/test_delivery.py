"""The operations chapter's delivery logic on hand-worked counts."""

from __future__ import annotations

import pandas as pd
import pytest

from greenery.chapter_kit import delivery


def carriers(*rows):
    return pd.DataFrame(rows, columns=["carrier", "late", "with_estimate"])


def test_pairs_put_the_later_carrier_first_and_adjust_across_pairs():
    pairs = delivery.carrier_pairs(carriers(("ups", 1, 10), ("usps", 9, 10), ("fedex", 5, 10)))
    assert list(zip(pairs["first"], pairs["second"], strict=True)) == [("usps", "ups"), ("fedex", "ups"), ("usps", "fedex")]
    assert pairs["difference"].tolist() == pytest.approx([0.8, 0.4, 0.4])
    # 9/10 against 1/10: every expected count is 5, so chi-square: 20 (9*9 - 1*1)^2 / 10^4 = 12.8 on 1 degree
    # of freedom, p = .00034662; Holm multiplies the smallest of 3 p-values by 3.
    assert pairs.loc[0, "p_value"] == pytest.approx(0.00034662, rel=1e-4)
    assert pairs.loc[0, "adjusted_p"] == pytest.approx(3 * 0.00034662, rel=1e-4)


def test_words_follow_the_interval_not_only_the_test():
    significant = pd.Series({"first": "usps", "second": "ups", "difference": 0.8, "low": 0.4, "high": 0.95,
                             "adjusted_p": 0.003})
    assert delivery.pair_words(significant, 3).startswith("USPS arrived late more often than UPS: +80.0 points (interval +40.0 to +95.0 points)")
    # The case: USPS 21 points later than UPS, interval +6 to +34, not significant after adjustment.
    borderline = pd.Series({"first": "usps", "second": "ups", "difference": 0.21, "low": 0.06, "high": 0.34,
                            "adjusted_p": 0.09})
    words = delivery.pair_words(borderline, 6)
    assert "+21.0 points (interval +6.0 to +34.0 points)" in words and "no evidence" not in words
    assert "not a settled difference" in words
    overlapping = pd.Series({"first": "fedex", "second": "ups", "difference": 0.05, "low": -0.08, "high": 0.18,
                             "adjusted_p": 0.9})
    assert delivery.pair_words(overlapping, 6) == (
        "no evidence of a difference between FedEx and UPS: +5.0 points (interval −8.0 to +18.0 points)")


def test_the_reason_the_dates_look_generated():
    dates = pd.DataFrame({"kind": ["delivered", "promised"], "dates": [305, 314], "whole_days": [305, 314],
                          "min_days": [1.0, 1.0], "max_days": [7.0, 5.0], "fewest_on_a_day": [37, 57],
                          "most_on_a_day": [47, 78], "spearman_rho": [0.031, 0.031]})
    assert delivery.generated_reason(dates, 265, 305) == (
        "every delivery date is a whole number of days after its order, to the second (1 to 7 days, each day "
        "holding 37 to 47 of the 305); every promised date is a whole number of days after its order, to the "
        "second (1 to 5 days, each day holding 57 to 78 of the 314); the promise and the delivery of the same "
        "order barely go together (rank correlation 0.03); and 265 of 305 delivery dates fall after the "
        "export's last recorded event")
