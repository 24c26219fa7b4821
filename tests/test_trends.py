"""Headline metrics across exports: what is recorded, the tests and their family, the export watch,
the alerts in status and the notify message, and the series of exports to try them on."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from shop import PERSONAL_VALUES, write_shop

from greenery import db
from greenery.chapter_kit import stats, trends
from greenery.errors import DataTestFailure, UsageError, WatchRefusal
from greenery.publisher import notify, status
from greenery.sample import Plant, SeriesDay, generate_series, parse_plant, series_sales
from greenery.tools import bench_trends
from greenery.warehouse import metrics, watch
from greenery.warehouse.build import DataSource, build

# --- the tests, worked by hand


def test_two_proportions_by_hand():
    # 40/100 against 60/100: pooled 0.5, se = sqrt(0.25 * 0.02) = 0.070711, z = -2.828427, p = 2 * sf(2.828427)
    assert trends.two_proportions_p(40, 100, 60, 100) == pytest.approx(0.0046777, abs=1e-6)
    assert trends.two_proportions_p(0, 10, 0, 10) == 1.0  # no variation: nothing to test


def test_two_poisson_rates_by_hand():
    # 10 orders in 1 hour against 20 in 1 hour: given 30, X ~ Bin(30, 1/2); P(X <= 10) = 53,009,102 / 2^30 (sum of C(30, k) for k = 0..10)
    assert trends.poisson_rates_p(10, 1, 20, 1) == pytest.approx(2 * 53_009_102 / 2**30, rel=1e-9)
    # equal rates over unequal hours: 10 in 1 hour against 20 in 2 is no difference at all
    assert trends.poisson_rates_p(10, 1, 20, 2) == 1.0


def test_welch_by_hand():
    # means 10 and 12, both sd 2 and n 10: t = -2 / sqrt(0.4 + 0.4) = -sqrt(5), df = 18 (equal sizes and sds)
    from scipy.stats import t

    assert trends.welch_p(10, 2, 10, 12, 2, 10) == pytest.approx(2 * t.sf(math.sqrt(5), 18), rel=1e-9)
    assert trends.welch_p(10, 2, 1, 12, 2, 10) == 1.0  # one value: no variance to test with


def test_pooling_a_mean_uses_every_value():
    # [1, 3] (mean 2, sd sqrt 2) and [5, 7] (mean 6, sd sqrt 2): together [1, 3, 5, 7], sum 16, sd sqrt(20 / 3)
    total, n, sd = trends.pool("mean", [4, 12], [2, 2], [math.sqrt(2), math.sqrt(2)])
    assert (total, n) == (16, 4) and sd == pytest.approx(math.sqrt(20 / 3))
    assert trends.pool("proportion", [3, 4], [10, 20])[:2] == (7, 30)


def test_holm_on_rows_is_holm_on_each_row():
    rows = np.array([[0.01, 0.04, 0.03], [0.5, 0.001, 0.02]])
    assert np.allclose(stats.holm(rows), [stats.holm(list(r)) for r in rows])
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def history(values: dict[str, list[tuple[int, int]]]) -> pd.DataFrame:
    """A history_metrics frame: per metric, (numerator, denominator) per export, builds 1, 2, ..."""
    rows = []
    for metric, pairs in values.items():
        kind = metrics.BY_NAME[metric].kind
        for build_id, (k, n) in enumerate(pairs, start=1):
            low, high = metrics.interval(kind, k, n)
            rows.append({"build_id": build_id, "metric": metric, "version": 1, "kind": kind, "value": k / n,
                         "numerator": k, "denominator": n, "sd": None, "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows)


def test_one_export_compares_nothing_two_compare_with_the_previous_three_with_the_baseline_too():
    assert trends.comparisons(history({"repeat_rate": [(80, 100)]})).empty
    two = trends.comparisons(history({"repeat_rate": [(80, 100), (60, 100)]}))
    assert list(two["against"]) == ["the previous export"]
    three = trends.comparisons(history({"repeat_rate": [(80, 100), (70, 100), (60, 100)]}))
    assert list(three["against"]) == ["the previous export", "the trailing baseline of 2 exports"]
    # the baseline pools 150 of 200 (75 %); Holm over the two comparisons: the smaller p doubled
    assert three["before"].tolist() == [0.7, 0.75]
    p_previous = trends.two_proportions_p(60, 100, 70, 100)
    p_baseline = trends.two_proportions_p(60, 100, 150, 200)
    assert three["adjusted_p"].tolist() == pytest.approx(stats.holm([p_previous, p_baseline]))
    assert three["adjusted_p"].iloc[1] == pytest.approx(2 * p_baseline)


def test_a_move_is_an_alert_with_its_numbers_and_a_small_one_is_not():
    moved = trends.alerts(history({"repeat_rate": [(80, 100), (78, 100), (50, 100)],
                                   "orders_per_hour": [(240, 24), (238, 24), (242, 24)]}))
    assert [a["metric"] for a in moved] == ["repeat_rate", "repeat_rate"]
    first = moved[0]
    assert first["text"].startswith("Repeat rate (share of buyers with 2+ orders): 78.0\u00a0% → 50.0\u00a0% "
                                    "against the previous export (two-proportion z-test, Holm-adjusted p")
    assert first["correction"] == "Holm" and first["adjusted_p"] < 0.05


def test_only_the_latest_definition_version_is_compared():
    frame = history({"repeat_rate": [(80, 100), (50, 100)]})
    frame.loc[0, "version"] = 0  # the first export was measured by an older definition
    assert trends.comparisons(frame).empty


# --- the export watch


SETTINGS = watch.WatchSettings()


def test_volume_a_table_that_shrank_or_grew_far_beyond_its_usual_growth():
    found = watch.volume({"orders": 85, "events": 95, "users": 400, "products": 30},
                         {"orders": 100, "events": 100, "users": 100, "products": 30},
                         {"users": [1.0, 1.1]}, SETTINGS)
    assert [(f.subject, f.status) for f in found] == [("orders", "warning"), ("users", "warning")]
    assert found[0].message == "orders: 85 rows, 15.0% fewer than the previous export's 100"
    assert found[1].threshold == pytest.approx(1.05 * 3)  # median growth 1.05, three times over
    refused = watch.volume({"orders": 40}, {"orders": 100}, {}, watch.WatchSettings(refuse_shrink=0.5))
    assert refused[0].status == "refused"


def test_freshness_by_the_age_of_the_last_event():
    built = datetime(2021, 2, 13, tzinfo=UTC)
    fresh = watch.freshness(built - timedelta(hours=10), built, SETTINGS)
    assert (fresh.status, fresh.value) == ("ok", 10)
    stale = watch.freshness(built - timedelta(hours=50), built, SETTINGS)
    assert stale.status == "warning" and stale.message.startswith("stale export: its last event was 50.0 hours old")
    assert watch.freshness(built - timedelta(hours=50), built,
                           watch.WatchSettings(refuse_stale_after_hours=49)).status == "refused"


def test_schema_columns_added_and_removed():
    found = watch.schema({"orders": ["order_id", "b", "c"], "users": ["x"]},
                         {"orders": ["order_id", "status", "d"], "users": ["x"]}, SETTINGS)
    # a column the contract declares by its name; any other by its place (a header is data)
    assert [f.message for f in found] == [
        "orders: 2 column(s) added (column 2, column 3) and 2 removed (status, column 3 of the previous header) "
        "since the previous export"]
    with pytest.raises(WatchRefusal, match="export refused by the watch: orders: 2 column"):
        watch.refuse(watch.schema({"orders": ["a", "b", "c"]}, {"orders": ["a", "d"]},
                                  watch.WatchSettings(refuse_schema_change=True)))


def test_thresholds_out_of_range_are_usage_errors():
    with pytest.raises(UsageError):
        watch.WatchSettings(stale_after_hours=0)
    with pytest.raises(UsageError):
        watch.WatchSettings(refuse_shrink=1.5)


# --- recording in the history


@pytest.fixture
def builder(tmp_path):
    history_path = tmp_path / "history.duckdb"

    def build_shop(name, edit=None, settings=None):
        source = DataSource(write_shop(tmp_path / name, edit), "test", None)
        return build(source, tmp_path / "w.duckdb", history=history_path, watch=settings)

    def recorded():
        con = db.connect(history_path, read_only=True)
        try:
            return (db.rows(con, "select build_id, metric, version, numerator, denominator from metrics "
                                 "order by build_id, metric"),
                    db.scalar(con, "select count(*) from builds"))
        finally:
            con.close()

    return build_shop, recorded, tmp_path


def drop_u2(rows):
    """u2 and its one order (o3) leave: 2 buyers, both repeat; 5 orders in 5 hours."""
    rows["orders"] = [r for r in rows["orders"] if r["order_id"] != "o3"]
    rows["order_items"] = [r for r in rows["order_items"] if r["order_id"] != "o3"]
    rows["events"] = [r for r in rows["events"] if r.get("order_id") != "o3"]


def test_each_export_records_its_headline_metrics_once(builder):
    build_shop, recorded, _ = builder
    build_shop("first")
    # the shop by hand: 3 buyers (u1, u2, u3), 2 with two or more orders; 6 orders in 6 distinct clock hours;
    # its few dates look recorded, so the delivery figures too: o1 delivered a day late after 3 days, o3 early
    # after 2 (1 late of 2 with a promise; 5 days over 2 deliveries)
    first = [(1, "delivery_days", 1, 5.0, 2.0), (1, "late_share", 1, 1.0, 2.0), (1, "orders_per_hour", 1, 6.0, 6.0),
             (1, "repeat_rate", 1, 2.0, 3.0)]
    assert recorded() == (first, 1)
    build_shop("copy")  # the same files in another folder: the same export, recorded already
    assert recorded() == (first, 2)
    result = build_shop("second", drop_u2)  # without o3: o1 alone delivered (late, 3 days); 2 buyers, both repeat
    rows, builds = recorded()
    assert builds == 3 and rows[4:] == [(3, "delivery_days", 1, 3.0, 1.0), (3, "late_share", 1, 1.0, 1.0),
                                        (3, "orders_per_hour", 1, 5.0, 5.0), (3, "repeat_rate", 1, 2.0, 2.0)]
    con = db.connect(result.warehouse, read_only=True)
    shown = db.rows(con, "select build_id, metric, value from history_metrics where metric = 'repeat_rate' "
                         "order by build_id")
    con.close()
    assert shown == [(1, "repeat_rate", 2 / 3), (3, "repeat_rate", 1.0)]
    # the orders table lost one row of six: 16.7 % fewer, a warning with its numbers, never a refusal
    assert [f.message for f in result.watch if f.check == "volume"][0] == (
        "orders: 5 rows, 16.7% fewer than the previous export's 6")


def test_the_chapters_figure_is_the_recorded_one(builder):
    build_shop, _, _ = builder
    result = build_shop("first")
    con = db.connect(result.warehouse, read_only=True)
    from greenery.chapter_kit import headlines

    found = headlines.measure(con)
    recorded = db.rows(con, "select metric, value, ci_low, ci_high from history_metrics order by metric")
    con.close()
    assert recorded == [(m.metric, m.value, m.low, m.high) for m in sorted(found.values(), key=lambda m: m.metric)]
    assert found["repeat_rate"].low == pytest.approx(stats.wilson(2, 3)[0])


def test_a_refused_build_records_nothing(builder):
    build_shop, recorded, tmp_path = builder
    build_shop("first")
    before = recorded()

    def broken(rows):
        rows["orders"][0]["order_total"] = "1.0"

    with pytest.raises(DataTestFailure):
        build_shop("broken", broken)
    assert recorded() == before
    with pytest.raises(WatchRefusal, match="orders: 5 rows, 16.7% fewer"):
        build_shop("shrunk", drop_u2, watch.WatchSettings(refuse_shrink=0.1))
    assert recorded() == before


def test_a_column_added_is_a_schema_warning(builder):
    build_shop, _, tmp_path = builder
    build_shop("first")
    folder = write_shop(tmp_path / "wider")
    path = folder / "promos.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0] + ",note"] + [line + ",x" for line in lines[1:]]))
    result = build(DataSource(folder, "test", None), tmp_path / "w.duckdb", history=tmp_path / "history.duckdb")
    assert [f.message for f in result.watch if f.check == "schema"] == [
        "promos: 1 column(s) added (column 4) since the previous export"]


def test_a_header_of_personal_data_is_never_quoted():
    """users.csv whose header line is a customer's row: the watch counts its columns, never quotes them."""
    found = watch.schema({"users": ["user_id", "Ada Byron", "ada@example.com", "+44 20 7946 0000"]},
                         {"users": ["user_id", "first_name"]}, SETTINGS)
    assert [f.message for f in found] == ["users: 3 column(s) added (column 2, column 3, column 4) and 1 removed "
                                          "(first_name) since the previous export"]


# --- alerts: status and the notify message


def test_status_and_notify_carry_the_watch_and_the_moves_without_personal_data(builder, monkeypatch):
    build_shop, _, tmp_path = builder
    build_shop("first")
    result = build_shop("second", drop_u2)
    found = status.alerts(result.warehouse)
    # the shop's events are from 2021: stale; orders lost 1 of 6 rows and order items 1 of 8 (events 2 of 21,
    # under the 10 % tolerance); 3 buyers cannot show a move
    assert [(w["check"], w["subject"]) for w in found["watch"]] == [
        ("freshness", "export"), ("volume", "order_items"), ("volume", "orders")]
    assert found["metrics"] == []
    found["metrics"] = trends.alerts(history({"repeat_rate": [(80, 100), (50, 100)]}))
    state = {"attempt": {"outcome": "published", "exit_code": 0, "reason": None, "error": None,
                         "started_at": "2021-02-13T23:59:00+00:00",
                         "finished_at": "2021-02-14T00:00:00+00:00"},
             "tests": {"summary": {"pass": 3, "warn": 0, "fail": 0}, "problems": []},
             "alerts": found, "book": {"folder": "html", "shows": None, "changed": True}}
    assert notify.worth_telling(state)
    sent = notify.message(state)
    assert "• metric moved: Repeat rate (share of buyers with 2+ orders): 80.0\u00a0% → 50.0\u00a0% against " \
           "the previous export (two-proportion z-test, Holm-adjusted p" in sent["text"]
    assert "• freshness: stale export: its last event was" in sent["text"]
    assert sent["moved_metrics"][0]["metric"] == "repeat_rate"
    payload = json.dumps(sent) + status.render_html(state)
    assert not [value for value in PERSONAL_VALUES if value in payload]
    assert "metric moved: Repeat rate" in status.render_html(state)
    quiet = {**state, "alerts": {"watch": [], "metrics": []}}
    assert not notify.worth_telling(quiet)


# --- the series and the measured false alarms and power


def test_a_series_is_the_same_shop_day_after_day_with_its_planted_change(tmp_path):
    folders = generate_series(tmp_path / "series", 3, scale=0.2, seed=7, plant=parse_plant("repeat-drop:0.5@3", 3))
    assert list(folders) == ["day-01", "day-02", "day-03"]
    users = {(tmp_path / "series" / d / "users.csv").read_bytes() for d in folders}
    orders = {(tmp_path / "series" / d / "orders.csv").read_bytes() for d in folders}
    assert len(users) == 1 and len(orders) == 3  # the same people; each day its own orders
    marker = json.loads((tmp_path / "series" / "day-03" / "sample.json").read_text())
    assert marker["series"] == {"day": 3, "days": 3, "plant": "repeat-drop:0.5@3"}
    day2 = (tmp_path / "series" / "day-02" / "orders.csv").read_text()
    assert "2021-02-11T" in day2 and "2021-02-10T" not in day2.split("\n", 2)[1]
    with pytest.raises(UsageError, match="the day must be from 2"):
        parse_plant("repeat-drop:0.3@9", 3)
    with pytest.raises(UsageError, match="expected repeat-drop"):
        parse_plant("repeat-up:0.3@2", 3)


def test_the_bench_counts_are_the_metrics_sql(tmp_path):
    """The bench counts buyers, repeat buyers, orders and hours from the generator's arrays: on a
    generated day they equal what the recorded metrics' SQL finds in the built warehouse."""
    plant = Plant("repeat-drop", 0.3, 2)
    generate_series(tmp_path / "series", 2, scale=0.5, seed=3, plant=plant)
    from greenery.warehouse.build import choose_data

    result = build(choose_data(tmp_path / "series" / "day-02"), tmp_path / "w.duckdb", history=tmp_path / "h.duckdb")
    con = db.connect(result.warehouse, read_only=True)
    found = dict(((m, (n, d)) for m, n, d in db.rows(con, "select metric, numerator, denominator from history_metrics")))
    con.close()
    repeat, buyers, orders, hours = bench_trends.counts(series_sales(3, 0.5, [SeriesDay(2, 2, plant)])[0])
    assert found == {"repeat_rate": (repeat, buyers), "orders_per_hour": (orders, hours)}


def test_false_alarms_at_or_below_nominal_and_power_as_predicted():
    """Measured on 200 series per case (make bench-trends measures 1,000): without a change, the share of
    series with any alarm is at most the nominal 5 % (plus three standard errors of the measurement); with
    the chance of a second order 15 points lower on the last day, the baseline comparison flags it as often
    as the normal approximation predicts at the levels Holm tests it at (within three standard errors)."""
    found = bench_trends.measure(seeds=200, days=8, scale=1.0, size=0.15)
    print("\n" + bench_trends.report(found))
    assert found["false_alarm_rate"] <= found["alpha"] + 3 * found["false_alarm_se"]
    low, high = found["predicted"]
    se = math.sqrt(low * (1 - low) / found["seeds"])
    assert low - 3 * se <= found["detected_by_baseline"] <= high + 3 * se
    assert found["detected"] >= found["detected_by_baseline"]


def test_a_metric_that_moved_is_a_warning_and_exit_0(tmp_path, monkeypatch, capsys):
    from greenery.cli import main

    monkeypatch.setenv("GREENERY_HISTORY", str(tmp_path / "h.duckdb"))
    generate_series(tmp_path / "series", 2, scale=1.0, seed=5, plant=parse_plant("repeat-drop:0.5@2", 2))
    warehouse = str(tmp_path / "w.duckdb")
    assert main(["build", "--data-dir", str(tmp_path / "series" / "day-01"), "--warehouse", warehouse]) == 0
    capsys.readouterr()
    assert main(["build", "--data-dir", str(tmp_path / "series" / "day-02"), "--warehouse", warehouse]) == 0
    out = capsys.readouterr().out
    assert "  warning: metric moved: Repeat rate (share of buyers with 2+ orders): " in out
    assert "against the previous export (two-proportion z-test, Holm-adjusted p" in out
    # a threshold the user set makes the stale export a refusal (exit 2), and nothing is recorded
    assert main(["build", "--data-dir", str(tmp_path / "series" / "day-01"), "--warehouse", warehouse,
                 "--refuse-stale-after", "24"]) == 2
    assert "export refused by the watch: stale export" in capsys.readouterr().err
    state = status.describe(2, "export refused by the watch: stale export: its last event was ...", "", "",
                            tmp_path / "book", tmp_path / "w.duckdb", {}, {})
    assert state["attempt"]["reason"] == "a threshold set for the export watch refused the export"
    assert state["alerts"] is None


def test_metric_intervals_are_scipy_stats_intervals():
    """metrics.interval computes its quantiles in the standard library (greenery.warehouse.distributions)
    so that `greenery build` imports neither scipy nor numpy: scipy.stats' intervals, to the last few bits."""
    from scipy import stats as sps

    from greenery.warehouse import metrics

    for k, n in [(0, 1), (1, 1), (3, 7), (99, 124), (0, 50), (50, 50)]:
        ci = sps.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert metrics.interval("proportion", k, n) == pytest.approx((ci.low, ci.high), rel=1e-12, abs=1e-15)
    for k in (0, 1, 5, 361, 10_000, 361_000, 5_000_000):
        low = sps.chi2.ppf(0.025, 2 * k) / 2 if k else 0.0
        high = sps.chi2.ppf(0.975, 2 * k + 2) / 2
        assert metrics.interval("rate", k, 48) == pytest.approx((low / 48, high / 48), rel=1e-12)
    for n in (2, 3, 30, 305, 1001, 300_000, 5_000_000):
        half = sps.t.isf(0.025, n - 1) * 1.3 / n ** 0.5
        assert metrics.interval("mean", 4.0 * n, n, 1.3) == pytest.approx((4.0 - half, 4.0 + half), rel=1e-12)
