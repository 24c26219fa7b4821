"""How the book writes numbers and dates (greenery.chapter_kit.formats), and the CSV a table offers
(greenery.chapter_kit.tables, book.table): expected texts worked out by hand."""

from __future__ import annotations

import base64
import io
import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pandas as pd
import pytest

from greenery.chapter_kit import book, tables
from greenery.chapter_kit import formats as fmt

NB = "\u00a0"


def test_percentages_one_decimal_two_only_when_asked():
    # 99 / 124 = 0.798387...: 79.8 rounded to one place, 79.84 to two, 79.83 cut after two.
    assert (fmt.pct(99 / 124), fmt.pct(99 / 124, 2), fmt.truncated_pct(99 / 124)) == (
        f"79.8{NB}%", f"79.84{NB}%", f"79.83{NB}%")
    assert fmt.pct_range(0.7234, 0.8612) == f"72.3–86.1{NB}%"
    assert (fmt.points(0.031), fmt.points(-0.01), fmt.points(0.0), fmt.points(0.01, 0)) == (
        "+3.1 points", "−1.0 points", "±0 points", "+1 point")
    assert fmt.points_range(-0.05, 0.12) == "−5.0 to +12.0 points"
    assert (fmt.pct(None), fmt.pct(float("nan")), fmt.pct_range(0.1, None), fmt.count(pd.NA)) == ("–",) * 4


def test_p_values():
    assert (fmt.p_value(0.0004), fmt.p_value(0.04567)) == ("< 0.001", "0.0457")
    assert (fmt.p_value(1.0), fmt.p_value(0.995), fmt.p_value(0.99)) == ("> 0.99", "> 0.99", "0.99")
    assert (fmt.p_is(1.0), fmt.p_is(0.0004), fmt.p_is(0.04567)) == ("p > 0.99", "p < 0.001", "p = 0.0457")


def test_one_date_style_in_prose_and_one_in_tables_all_in_utc():
    # 9 Feb 2021 was a Tuesday; 23:30 at UTC-02:00 is 01:30 UTC on Wednesday 10 Feb.
    late_evening_west = datetime(2021, 2, 9, 23, 30, 59, tzinfo=timezone(timedelta(hours=-2)))
    assert fmt.moment(late_evening_west) == "Wed 10 Feb 2021 01:30 UTC"
    assert fmt.hour(late_evening_west) == "Wed 10 Feb 2021 01:30"  # for "from X to Y UTC"
    assert fmt.day(datetime(2021, 2, 9, 14)) == fmt.day(date(2021, 2, 9)) == "Tue 9 Feb 2021"  # no leading zero
    assert fmt.table_time(late_evening_west) == "2021-02-10 01:30"
    assert fmt.table_day(date(2021, 2, 9)) == "2021-02-09"
    # the warehouse's naive timestamps are UTC; pandas' Timestamps and NaT are dates like any other
    assert fmt.moment(pd.Timestamp("2026-12-01 11:34:19")) == "Tue 1 Dec 2026 11:34 UTC"
    assert (fmt.moment(None), fmt.table_time(pd.NaT), fmt.iso(pd.NaT)) == ("–", "–", "")
    assert fmt.iso(late_evening_west) == "2021-02-10T01:30:59Z" and fmt.iso(date(2021, 2, 9)) == "2021-02-09"


def test_hours_verdicts_and_short_ticks():
    assert (fmt.hours(24), fmt.hours(1_000), fmt.hours(float("nan"))) == ("24 h", "1,000 h", "–")
    assert (fmt.yes_no(True), fmt.yes_no(False), fmt.yes_no(None)) == ("yes", "no", "–")
    # 10 Feb 2021 was a Wednesday: midnight names the day, other hours the weekday and time only
    assert [fmt.tick_hour(pd.Timestamp(f"2021-02-10 {h:02d}:00")) for h in (0, 6, 18)] == [
        "Wed 10 Feb", "Wed 06:00", "Wed 18:00"]
    assert fmt.tick_hour(datetime(2021, 2, 10, 1, 0, tzinfo=timezone(timedelta(hours=2)))) == "Tue 23:00"  # in UTC
    assert (fmt.tick_day(date(2021, 2, 9)), fmt.tick_day(None)) == ("Tue 9 Feb", "–")


def test_counts_with_their_noun_singular_or_plural():
    assert fmt.counted(1, "export") == "1 export"
    assert fmt.counted(0, "warning") == "0 warnings"
    assert fmt.counted(1234, "buyer") == "1,234 buyers"
    assert fmt.counted(2, "query", "queries") == "2 queries"


def test_carriers_and_statuses_by_their_display_names():
    assert [fmt.carrier(c) for c in ("ups", "fedex", "USPS", " dhl", None)] == ["UPS", "FedEx", "USPS", "DHL", "–"]
    assert fmt.carrier("royal mail") == "Royal mail"  # unknown: shown as it is, capitalised
    assert [fmt.status(s) for s in ("preparing", "shipped", "delivered")] == ["Preparing", "Shipped", "Delivered"]


def test_amounts_say_what_they_are_the_total_of():
    assert fmt.usd(Decimal("91351.57")) == "US$91,351.57"
    assert fmt.usd_of(Decimal("9765.54"), "revenue from promo orders") == "US$9,765.54 of revenue from promo orders"


# --- the CSV under a table


def shown(frame, formats=None, **options) -> list[str]:
    """The HTML book.table displays, as strings."""
    out: list[str] = []
    original = book.display
    book.display = lambda item: out.append(item.data)
    try:
        book.table(frame, formats, **options)
    finally:
        book.display = original
    return out


def download(html: str) -> tuple[str, bytes]:
    name, data = re.search(r'<a download="([^"]+)" href="data:text/csv;charset=utf-8;base64,([^"]+)"', html).groups()
    return name, base64.b64decode(data)


@pytest.fixture
def rates() -> pd.DataFrame:
    """Two segments: 6 of 6 and 48 of 59 repeat buyers, Wilson bounds rounded, first orders, revenue."""
    return pd.DataFrame({
        "Segment": ["promo", "no promo"],
        "Buyers": [6, 59],
        "Repeat rate": [1.0, 48 / 59],
        "Repeat rate, 95 % interval from": [0.61, 0.70],
        "Repeat rate, 95 % interval to": [1.0, 0.89],
        "First order (UTC)": pd.to_datetime(["2021-02-10 00:00:00+00:00", "2021-02-11 09:30:00+00:00"]),
        "Revenue (US$)": [Decimal("9765.54"), Decimal("81586.03")],
    })


def test_a_csv_holds_values_not_their_display(rates):
    display = rates.drop(columns=["Repeat rate, 95 % interval from", "Repeat rate, 95 % interval to"]).assign(**{
        "95 % interval": [fmt.pct_range(lo, hi) for lo, hi in zip(rates.iloc[:, 3], rates.iloc[:, 4], strict=True)]})
    html, link = shown(display, {"Repeat rate": fmt.pct, "Revenue (US$)": fmt.usd}, caption="Repeat rate by promo",
                       csv=rates)
    # the page shows formatted figures and the table style for dates
    assert f"81.4{NB}%" in html and f"61.0–100.0{NB}%" in html and "US$81,586.03" in html and "2021-02-11 09:30" in html
    assert "<caption>Repeat rate by promo</caption>" in html
    name, data = download(link)
    assert name == "greenery-repeat-rate-by-promo.csv"
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8's byte-order mark
    back = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig", parse_dates=["First order (UTC)"])
    assert list(back.columns) == list(rates.columns)
    assert back["Repeat rate"].tolist() == pytest.approx([1.0, 48 / 59])  # a fraction, not "81.4 %"
    assert back["Repeat rate, 95 % interval from"].tolist() == [0.61, 0.70]
    assert back["Revenue (US$)"].tolist() == [9765.54, 81586.03] and back["Buyers"].dtype.kind == "i"
    assert back["First order (UTC)"].tolist() == [datetime(2021, 2, 10, tzinfo=UTC), datetime(2021, 2, 11, 9, 30, tzinfo=UTC)]
    assert b"2021-02-10T00:00:00Z" in data


def test_a_table_of_values_offers_itself_and_names_repeat_downloads_apart(rates):
    book.setup()  # a new page: its names start afresh
    first = shown(rates, {"Repeat rate": fmt.pct}, caption="Repeat rate by promo")
    second = shown(rates, caption="Repeat rate by promo")
    assert [download(first[1])[0], download(second[1])[0]] == [
        "greenery-repeat-rate-by-promo.csv", "greenery-repeat-rate-by-promo-2.csv"]
    assert b"0.8135593" in download(first[1])[1]  # the format was for the page only
    assert download(shown(rates.iloc[:, :3])[1])[0] == "greenery-segment-buyers.csv"  # no caption: its first columns


def test_no_csv_under_words_or_formatted_text_and_none_when_refused(rates):
    words = pd.DataFrame({"Model": ["stg_orders"], "Stored as": ["view"], "Description": ["one row per order"]})
    assert len(shown(words)) == 1
    preformatted = pd.DataFrame({"Segment": ["promo"], "Repeat rate": [f"54.2{NB}%"], "Revenue": ["US$9,765.54"]})
    assert tables.formatted_figures(preformatted) == ["Repeat rate", "Revenue"]
    assert len(shown(preformatted)) == 1  # its figures are text: a download needs their values (csv=...)
    assert len(shown(rates, csv=False)) == 1
    assert tables.of_figures(rates) and not tables.of_figures(words)


def test_csv_names_from_captions():
    frame = pd.DataFrame({"a": [1]})
    assert tables.csv_name("Buyers by number of orders (every count shown)", frame) == \
        "greenery-buyers-by-number-of-orders-every-count-shown.csv"
    assert tables.csv_name("Cramér's V — by product", frame) == "greenery-cramer-s-v-by-product.csv"
    assert tables.csv_name("", pd.DataFrame({"%": [1]})) == "greenery-table.csv"


def test_a_table_for_the_method_fold_is_glued_not_shown(rates):
    glued: dict[str, object] = {}
    original = book.glue
    book.glue = lambda name, value, display_it=False: glued.__setitem__(name, value)
    try:
        out = shown(rates, caption="Rates in the fold", glue_as="rates_table")
    finally:
        book.glue = original
    assert out == []  # nothing shown where the cell runs
    html = glued["rates_table"].data
    # the table and its CSV link, in the class the book's CSS styles (phone cards, print) as a cell's output
    assert html.startswith('<div class="cell_output">') and html.endswith("</div>")
    assert "<caption>Rates in the fold</caption>" in html
    assert download(html)[0] == "greenery-rates-in-the-fold.csv"


def test_a_csv_is_the_same_whatever_the_last_digits_of_its_figures():
    """A Kaplan–Meier share worked out with numpy's AVX-512 exp and log and with the C library's (the baselines'
    machine and another): 0.39914195317407686 against 0.39914195317407697. The CSV is the same for both."""
    def csv(value):
        frame = pd.DataFrame({"Segment": ["promo"], "Share": [value], "Buyers": [7]})
        return download(shown(frame, csv=frame)[-1])[1]

    assert csv(0.39914195317407686) == csv(0.39914195317407697)
    assert csv(0.39914195317407686).decode("utf-8-sig").splitlines() == ["Segment,Share,Buyers", "promo,0.399141953174,7"]
    assert csv(1e-300).decode("utf-8-sig").splitlines()[1] == "promo,1e-300,7"  # a tiny p-value keeps its size
    assert csv(1.0).decode("utf-8-sig").splitlines()[1] == "promo,1.0,7"  # an adjusted p of 1: a fraction, not a count
    assert csv(1234567890.25).decode("utf-8-sig").splitlines()[1] == "promo,1234567890.25,7"  # an amount: its cents
