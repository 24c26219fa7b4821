"""Unusual traffic, equal follow-up and the indicators' adjusted tests, on hand-worked cases.

The bot shop is the shop of tests/shop.py plus twelve scripted sessions of u4 (who never
ordered): b01..b12, one page view of p2 (Cactus) each, started at 02-11 13:00, 13:04, ... 13:44;
b12 views p1 (Fern) again at 14:05, so it is active in two clock hours. With s5 (02-11 12:00),
u4 has 13 sessions, 12 of them started in the 13:00 hour.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from shop import name, write_shop

from greenery import db
from greenery.chapter_kit import analyses, indicators
from greenery.warehouse.build import DataSource, build

DEFAULTS = {"max_sessions_per_hour": 10, "max_sessions_per_account": 50}


def add_bot(rows):
    for i in range(1, 13):
        at = f"2021-02-11T13:{4 * (i - 1):02d}:00Z"
        rows["events"].append({"event_id": f"b{i:02d}", "session_id": f"b{i:02d}", "user_id": "u4",
                               "page_url": "https://greenery.com/product/p2", "created_at": at,
                               "event_type": "page_view", "order_id": "", "product_id": "p2"})
    rows["events"].append({"event_id": "b13", "session_id": "b12", "user_id": "u4",
                           "page_url": "https://greenery.com/product/p1", "created_at": "2021-02-11T14:05:00Z",
                           "event_type": "page_view", "order_id": "", "product_id": "p1"})


def build_edited(folder: Path, edit) -> Path:
    source = DataSource(write_shop(folder / "export", edit), "test", None)
    build(source, folder / "w.duckdb", history=folder / "history.duckdb")
    return folder / "w.duckdb"


@pytest.fixture(scope="module")
def bot_db(tmp_path_factory):
    con = db.connect(build_edited(tmp_path_factory.mktemp("bot"), add_bot), read_only=True)
    yield con
    con.close()


def frame(con, name, **params):
    return analyses.frame(con, name, {**DEFAULTS, **params})


# --------------------------------------------------------------------------- the flagging rules

def test_account_traffic_measures(bot_db):
    rows = {name(r["user_id"]): r for r in db.frame(bot_db, "select * from fct_account_traffic").to_dict("records")}
    u4, u1 = rows["u4"], rows["u1"]
    # u4: s5 (12:00 hour) + b01..b12 (13:00 hour) = 13 sessions; 1 + 12 + 1 page views (b12 has two).
    assert (u4["sessions"], u4["checkout_sessions"], u4["page_views"]) == (13, 0, 14)
    assert (u4["busiest_hour_sessions"], u4["busiest_hour_utc"], u4["hours_with_session_starts"]) == (
        12, datetime(2021, 2, 11, 13), 2)
    # u1: s1, s2, s3 each in its own hour: a tie of 1, the earliest hour named.
    assert (u1["sessions"], u1["checkout_sessions"], u1["busiest_hour_sessions"]) == (3, 2, 1)
    assert u1["busiest_hour_utc"] == datetime(2021, 2, 10, 8)


@pytest.mark.parametrize("params, burst, volume", [
    ({}, 1, 0),  # 12 > 10 flags u4; 13 sessions is under 50
    ({"max_sessions_per_hour": 12}, 0, 0),  # 12 is not more than 12
    ({"max_sessions_per_hour": 11}, 1, 0),
    ({"max_sessions_per_account": 12}, 1, 1),  # 13 > 12: the volume rule flags u4 too
    ({"max_sessions_per_hour": 0}, 4, 0),  # every account started a session in some hour
])
def test_rules_apply_their_thresholds(bot_db, params, burst, volume):
    rules = frame(bot_db, "unusual_traffic", **params).set_index("rule")
    assert (rules.loc["burst", "flagged_accounts"], rules.loc["volume", "flagged_accounts"]) == (burst, volume)


def test_unusual_traffic_justifies_the_threshold(bot_db):
    rules = frame(bot_db, "unusual_traffic").set_index("rule")
    burst, volume, either = rules.loc["burst"], rules.loc["volume"], rules.loc["either"]
    # Burst: u4 flagged with 12; everyone else started at most 1 session in an hour.
    assert (burst.threshold, burst.flagged_sessions, burst.largest_among_others, burst.smallest_among_flagged) == (
        10, 13, 1, 12)
    # Volume: nobody flagged; the largest account has 13 sessions (u4).
    assert (volume.flagged_accounts, volume.largest_among_others) == (0, 13)
    assert (either.flagged_accounts, either.flagged_sessions, either.accounts, either.sessions) == (1, 13, 4, 18)


def test_the_rules_table_holds_counts_not_their_text(bot_db):
    from greenery.chapter_kit import traffic

    table = traffic.rules_table(frame(bot_db, "unusual_traffic")).set_index("Rule")
    counts = ["Accounts flagged", "Their sessions", "Largest among the other accounts", "Smallest among the flagged"]
    # as in the test above: burst flags u4 (12 sessions in an hour, 13 in all), the others at most 1 an hour;
    # volume flags nobody, so it has no smallest flagged (empty, not a dash), and u4's 13 is the largest
    assert table.loc["burst", counts].tolist() == [1, 13, 1, 12]
    assert table.loc["volume", counts[:3]].tolist() == [0, 0, 13] and pd.isna(table.loc["volume", counts[3]])
    assert all(str(table[c].dtype) == "Int64" for c in counts)  # book.table formats them; the CSV holds numbers


def test_funnel_with_and_without_flagged_traffic(bot_db):
    funnel = frame(bot_db, "funnel")
    steps = {t: list(g["sessions"]) for t, g in funnel.groupby("traffic")}
    # All traffic: the shop's 6 sessions + 12 bot sessions, all of which viewed a product.
    assert steps["all traffic"] == [18, 18, 5, 4]
    # Shoppers: u4 is flagged as an account, so s5 (its abandoned cart) goes too: s1, s2, s3, s4, s6.
    assert steps["shoppers"] == [5, 5, 4, 4]


def test_product_conversion_with_and_without_flagged_traffic(bot_db):
    rows = {(r["traffic"], r["product_name"]): r for r in frame(bot_db, "product_conversion").to_dict("records")}
    # Cactus: viewed in s2, s3 and b01..b12; ordered in s3.
    assert (rows[("all traffic", "Cactus")]["sessions_viewed"], rows[("all traffic", "Cactus")]["sessions_ordered"]) == (14, 1)
    assert rows[("shoppers", "Cactus")]["conversion_rate"] == pytest.approx(1 / 2)
    # Fern: viewed in s1, s5, s6 and b12, ordered in s1 and s6; without u4 (s5, b12): 2 of 2.
    assert rows[("all traffic", "Fern")]["conversion_rate"] == pytest.approx(2 / 4)
    assert rows[("shoppers", "Fern")]["conversion_rate"] == pytest.approx(2 / 2)


def test_sessions_per_hour_both_definitions(bot_db):
    rows = {(r["traffic"], r["definition"]): r for r in frame(bot_db, "sessions_per_hour").to_dict("records")}
    started, active = rows[("all traffic", "started in the hour")], rows[("all traffic", "active in the hour")]
    # Started: 02-10 08, 11, 23; 02-11 10, 12, 13 (12 bot sessions), 15: 18 sessions in 7 hours, span 32 hours.
    assert (started["session_hours"], started["hours_with_sessions"], started["hours_in_span"]) == (18, 7, 32)
    assert (started["busiest_hour_sessions"], started["busiest_hour_utc"]) == (12, datetime(2021, 2, 11, 13))
    # Active: b12 runs 13:44 to 14:05, so it also counts in the 14:00 hour.
    assert (active["session_hours"], active["hours_with_sessions"]) == (19, 8)
    shoppers = rows[("shoppers", "started in the hour")]
    # Shoppers: s1, s6, s4 (02-10) and s2, s3 (02-11): 5 sessions in 5 hours, still 08h..15h next day.
    assert (shoppers["session_hours"], shoppers["hours_with_sessions"], shoppers["hours_in_span"]) == (5, 5, 32)
    assert shoppers["per_hour_of_span"] == pytest.approx(5 / 32)


def test_activity_by_hour_splits_flagged_sessions(bot_db):
    hourly = {r["hour_utc"]: r for r in frame(bot_db, "activity_by_hour").to_dict("records")}
    at13, at14, at12 = hourly[datetime(2021, 2, 11, 13)], hourly[datetime(2021, 2, 11, 14)], hourly[datetime(2021, 2, 11, 12)]
    assert (at13["sessions_started"], at13["flagged_sessions_started"], at13["flagged_sessions_active"]) == (0, 12, 12)
    assert (at14["flagged_sessions_started"], at14["flagged_sessions_active"]) == (0, 1)  # b12, still active
    assert (at12["sessions_started"], at12["flagged_sessions_started"]) == (0, 1)  # s5 belongs to u4
    assert hourly[datetime(2021, 2, 10, 8)]["sessions_started"] == 1  # s1, a shopper's


# --------------------------------------------------------------------------- equal follow-up

# The shop's orders end with o6 at 02-11 20:00. First orders: u1 o1 02-10 09:00 (35 h left; second
# order o2 30.5 h later), u2 o3 02-10 23:59:59 (20 h 1 s left; never again), u3 o4 02-10 12:00
# (32 h left; o5 20 h later).

def test_fct_first_orders_follow_up_columns(shop_db):
    rows = {name(r[0]): r[1:] for r in db.rows(shop_db, """
        select user_id, hours_left_in_export, hours_to_second_order from fct_first_orders""")}
    assert rows["u1"] == (35.0, 30.5)
    assert rows["u2"][0] == pytest.approx(20 + 1 / 3600) and rows["u2"][1] is None
    assert rows["u3"] == (32.0, 20.0)


@pytest.mark.parametrize("hours, followed, within", [
    (12, 3, 0),  # everyone followed 12 h; nobody came back that fast
    (20, 3, 1),  # u2 has 20 h 1 s: still in; u3 came back at exactly 20 h
    (21, 2, 1),  # u2 drops out
    (24, 2, 1),  # u1 (30.5 h) is not a repeat within 24 h
    (31, 2, 2),
    (32, 2, 2),  # u3 had exactly 32 h
    (33, 1, 1),
])
def test_follow_up_windows(shop_db, hours, followed, within):
    rows = analyses.frame(shop_db, "follow_up").set_index("follow_up_hours")
    assert (rows.loc[hours, "buyers_followed"], rows.loc[hours, "repeat_buyers_within"]) == (followed, within)
    assert rows.loc[hours, "buyers"] == 3
    assert rows.index.max() == 35  # the longest follow-up any buyer had


def test_follow_up_default_keeps_more_than_half(shop_db):
    windows = analyses.frame(shop_db, "follow_up")
    chosen = indicators.follow_up(windows)  # 0: choose
    # More than half of 3 buyers is 2; 32 h is the largest window keeping two (u1, u3); 33 h keeps one.
    assert (chosen.hours, chosen.followed, chosen.repeat_within, chosen.rate) == (32, 2, 2, 1.0)
    given = indicators.follow_up(windows, 24)
    assert (given.hours, given.followed, given.repeat_within) == (24, 2, 1)


@pytest.mark.parametrize("hours", [36, 200])
def test_a_window_longer_than_anyone_was_followed_is_a_parameter_error(shop_db, hours):
    """u1 had 35 h left in the export, the longest: 35 h keeps one buyer, 36 h nobody (and the chapters
    would find no cohort to compare): refused as the parameter it is, naming the longest possible."""
    from greenery.errors import ParameterError

    windows = analyses.frame(shop_db, "follow_up")
    assert indicators.follow_up(windows, 35).followed == 1
    with pytest.raises(ParameterError, match=rf"^--param follow_up_hours={hours}: .* \(at most 35 hours\)"):
        indicators.follow_up(windows, hours)


def test_repeat_by_indicator_on_equal_follow_up(shop_db):
    rows = frame(shop_db, "repeat_by_indicator", follow_up_hours=24)
    got = {(r.indicator, r.segment): (r.buyers, r.repeat_buyers) for r in rows.itertuples()}
    # Cohort at 24 h: u1 (o1 09:00, no promo, 25.00, not back within 24 h) and u3 (o4 12:00, promo, 10.50, back).
    assert got[("hour_of_day", "06–11 h")] == (1, 0) and got[("hour_of_day", "12–17 h")] == (1, 1)
    assert got[("promo", "no promo")] == (1, 0) and got[("promo", "promo")] == (1, 1)
    assert got[("page_views", "0–2 views")] == (2, 1)  # u1 2 views, u3 1
    assert got[("order_value", "under US$100")] == (2, 1)
    # No weekday or date (proxies for time left); no delivery: o1's parcel came after 24 h, o4 never shipped.
    assert set(rows["indicator"]) == {"hour_of_day", "promo", "page_views", "cart_adds", "sessions",
                                      "order_value", "products"}


def test_browsing_indicators_leave_out_flagged_accounts(shop_db):
    # A threshold of 0 sessions per hour flags every account: browsing indicators are left empty.
    rows = frame(shop_db, "repeat_by_indicator", follow_up_hours=24, max_sessions_per_hour=0)
    assert set(rows["indicator"]) == {"hour_of_day", "promo", "order_value", "products"}


def test_delivery_counts_only_parcels_that_came_before_the_next_chance(tmp_path):
    def edit(rows):  # o1 delivered a day after ordering (02-11 09:00), before u1's second order (30.5 h)
        next(o for o in rows["orders"] if o["order_id"] == "o1")["delivered_at"] = "2021-02-11T09:00:00Z"

    con = db.connect(build_edited(tmp_path, edit), read_only=True)
    try:
        # 24 h: the parcel came at exactly 24 h, not before the follow-up ended: not counted.
        at24 = frame(con, "repeat_by_indicator", follow_up_hours=24)
        assert "delivery" not in set(at24["indicator"])
        # 31 h: it came 24 h in, before u1's second order at 30.5 h: on time (promised 02-12), and u1 came back.
        at31 = frame(con, "repeat_by_indicator", follow_up_hours=31)
        assert at31[at31.indicator == "delivery"][["segment", "buyers", "repeat_buyers"]].values.tolist() == [
            ["on time or early", 1, 1]]
        windows = analyses.frame(con, "follow_up").set_index("follow_up_hours")
        assert (windows.loc[24, "delivered_before_next_chance"], windows.loc[31, "delivered_before_next_chance"]) == (0, 1)
    finally:
        con.close()


# --------------------------------------------------------------------------- adjusted tests

def segments_frame(spec: dict) -> pd.DataFrame:
    return pd.DataFrame([{"indicator": name, "segment": seg, "segment_order": i, "buyers": n, "repeat_buyers": k}
                         for name, segs in spec.items() for i, (seg, k, n) in enumerate(segs, start=1)])


# promo 5/5 vs 0/5: Fisher p = 2 / C(10, 5) = 2/252 = .00794. order value 10/20 vs 20/20: chi-square
# 13.33, p = .00026. products 3/5 vs 2/5: a symmetric table, Fisher p = 1. sessions: one segment,
# not testable, so not in the family: m = 3.
CASE = segments_frame({
    "promo": [("promo", 5, 5), ("no promo", 0, 5)],
    "order_value": [("under $100", 10, 20), ("$100–249", 20, 20)],
    "products": [("1 product", 3, 5), ("2 products", 2, 5)],
    "sessions": [("1 session", 10, 10)],
})


def test_holm_across_indicators():
    tests = indicators.indicator_tests(CASE, alpha=0.05, adjustment="holm").set_index("indicator")
    assert not tests.loc["sessions", "testable"] and tests.loc["sessions", "p_adjusted"] is None
    # Holm: sorted .00026 x 3, .00794 x 2, 1 x 1 = .00078, .01587, 1.
    assert tests.loc["order_value", "p_adjusted"] == pytest.approx(3 * 0.000261, rel=0.01)
    assert tests.loc["promo", "p_adjusted"] == pytest.approx(2 * 2 / 252)
    assert tests.loc["products", "p_adjusted"] == pytest.approx(1.0)
    assert tests["is_signal"].to_dict() == {"promo": True, "order_value": True, "products": False, "sessions": False}
    # At alpha .012, Holm keeps only order value (.01587 > .012) ...
    strict = indicators.indicator_tests(CASE, alpha=0.012, adjustment="holm").set_index("indicator")
    assert strict["is_signal"].to_dict() == {"promo": False, "order_value": True, "products": False, "sessions": False}
    # ... while Benjamini-Hochberg gives promo .00794 x 3/2 = .0119 < .012.
    bh = indicators.indicator_tests(CASE, alpha=0.012, adjustment="bh").set_index("indicator")
    assert bh.loc["promo", "p_adjusted"] == pytest.approx(1.5 * 2 / 252)
    assert bh["is_signal"].to_dict() == {"promo": True, "order_value": True, "products": False, "sessions": False}


def test_answer_names_only_supported_signals():
    cohort = indicators.FollowUp(24, False, 60, 50, 40, 0)
    reach = indicators.detectable(cohort, 0.05, 3)
    none = indicators.indicator_tests(CASE[CASE.indicator == "products"], 0.05, "holm")
    text = indicators.answer(none, cohort, 0.05, "holm", reach)
    assert "No indicator is distinguishable from chance at this sample size" in text
    assert "40 (80.0\u00a0%) ordered again within 24 hours" in text
    some = indicators.indicator_tests(CASE, 0.05, "holm")
    text = indicators.answer(some, cohort, 0.05, "holm", reach)
    assert "promo on the first order" in text and "value of the first order" in text
    assert "products in the first order**" not in text
    assert indicators.verdict_line(none, "holm", 0.05).startswith("no indicator is distinguishable from chance")


def test_identical_segmentations_are_tested_once():
    # cart adds 3/5 vs 2/5 is the same table as products 3/5 vs 2/5 (labels aside): one comparison
    # under two names. Cart adds come first in TITLES and keep the test; products, the later one,
    # is left out of the family, so m stays 3 as in CASE: promo .00794 x 2 = .01587,
    # order value .00026 x 3 = .00078; with the duplicate counted m would be 4 and promo .00794 x 3.
    dup = pd.concat([CASE, segments_frame({"cart_adds": [("0–1 adds", 3, 5), ("2 adds", 2, 5)]})])
    tests = indicators.indicator_tests(dup, alpha=0.05, adjustment="holm").set_index("indicator")
    assert tests.loc["cart_adds", "testable"] and pd.isna(tests.loc["cart_adds", "same_as"])
    assert not tests.loc["products", "testable"] and tests.loc["products", "same_as"] == "cart_adds"
    assert tests.loc["products", "p_adjusted"] is None
    assert tests.loc["products", "method"] == "same counts as " + indicators.TITLES["cart_adds"]
    assert tests.loc["promo", "p_adjusted"] == pytest.approx(2 * 2 / 252)
    assert tests.loc["order_value", "p_adjusted"] == pytest.approx(3 * 0.000261, rel=0.01)
    assert tests.loc["cart_adds", "p_adjusted"] == pytest.approx(1.0)
    # Same counts in a different order are a different segmentation: both tested, m = 4.
    other = pd.concat([CASE, segments_frame({"cart_adds": [("0–1 adds", 2, 5), ("2 adds", 3, 5)]})])
    both = indicators.indicator_tests(other, alpha=0.05, adjustment="holm").set_index("indicator")
    assert both["testable"].sum() == 4 and both.loc["promo", "p_adjusted"] == pytest.approx(3 * 2 / 252)


def test_the_summary_tile_says_what_was_found_in_plain_words():
    """The tile speaks from the page's primary tests (every buyer, Holm across traits) and its sweep: the
    closest trait with its direction, size and interval; a trait below the level at some windows only is a
    lead, never a finding."""
    tests = pd.DataFrame({"indicator": ["promo", "order_value", "sessions"], "testable": [True, True, False],
                          "is_signal": [False, False, False], "buyers": [124, 124, 124],
                          "p_value": [0.034, 0.5, float("nan")], "p_adjusted": [0.068, 0.5, float("nan")],
                          "segment": ["promo", "high", None], "hazard_ratio": [1.89, 0.8, float("nan")],
                          "ratio_low": [1.04, 0.5, float("nan")], "ratio_high": [3.42, 1.2, float("nan")]})
    flat = pd.DataFrame({"hours": [10, 11, 10, 11], "indicator": ["promo", "promo", "order_value", "order_value"],
                         "is_signal": [False, False, False, False]})
    figure, line = indicators.headline(tests, flat)
    assert figure == "None found" and line == (
        "No trait of a first order goes with reordering beyond chance once all 2 are tested. "
        f"Closest: {indicators.TITLES['promo']}: its \u201cpromo\u201d buyers reordered 1.9 times as "
        "fast as the rest (95 % interval 1.0\u20133.4; adjusted p = 0.068).")
    fragile = flat.assign(is_signal=[True, False, False, False])  # promo at 10 h only, of 10-11 h
    figure, line = indicators.headline(tests, fragile)
    assert figure == "None settled" and line.endswith(
        "(95 % interval 1.0\u20133.4; adjusted p = 0.068), a difference that passes the test only at follow-up "
        "windows of 10 h: a lead to test on more data, not a finding.")
    other = flat.assign(is_signal=[False, False, True, False])  # order value at 10 h only: not the closest trait
    figure, line = indicators.headline(tests, other)
    assert figure == "None settled" and line.endswith(
        f"Only at some follow-up windows does a difference pass the test: {indicators.TITLES['order_value']} "
        "(10 h). A lead to test on more data, not a finding.")
    slower = tests.assign(p_value=[0.5, 0.034, float("nan")])  # the closest is now a trait that goes with slower reordering
    assert "reordered 1.2 times as slowly as the rest (95 % interval 0.8\u20132.0;" in indicators.headline(slower, flat)[1]
    found = tests.assign(is_signal=[False, True, False])
    assert indicators.headline(found, flat) == (
        "1 of 2 traits", f"{indicators.TITLES['order_value']}: goes with reordering sooner beyond chance, across "
        "all 124 buyers (an association, not a cause).")
    assert indicators.headline(tests.assign(testable=False), flat)[0] == "Not testable"
