"""Tables of figures that read at every width and offer their numbers: what book.table adds to a Styler.

- **Phone cards.** In a table of four columns or more, each cell carries its column's name as a
  CSS label (`td.colN::before`), shown only on narrow screens by book/_static/greenery.css, where
  each row becomes a card of "label: value" lines: no column is ever cut off to the right.
- **Key columns on a phone.** A table given `phone_columns` shows only those on a phone's cards (the
  others' cells carry the class `greenery-phone-hidden`), with a line saying the rest are on a wider
  screen, on paper and in the CSV: thirty products' cards of nine lines each ran to 2,700 px.
- **Paper.** A table of `KEEP_WHOLE_ROWS` rows or fewer is never split between sheets (class
  `greenery-short`); figures (intervals "−10.1 to +27.3 points" included) keep to one line (class
  `greenery-figure`) while words wrap, so a figure never runs into the next column's text.
- **Long tables on a phone.** A table of more than `PHONE_ROWS` rows shows its first rows on a
  phone, the rest behind a "Show all N rows" toggle (a checkbox and its label, so the table stays
  one table; CSS only). Laptops and paper show every row.
- **CSV download.** Under a table of figures only, the values behind it, unformatted, as a `data:`
  link embedded in the page (it works offline and from `file://`): shares as fractions (0.798),
  interval bounds in columns of their own, amounts without currency signs, times in ISO 8601 (UTC);
  UTF-8 with a byte-order mark; named from the table's caption. Tables in this book are aggregates
  and metadata, never raw rows, so the CSV holds what the table shows and nothing more.
"""

from __future__ import annotations

import base64
import html
import re
import unicodedata
from datetime import date, datetime
from decimal import Decimal

import pandas as pd

from greenery.chapter_kit import formats

CARDS_FROM = 4  # columns: narrower tables fit a phone as they are
PHONE_ROWS = 10  # rows a phone shows before the toggle: about one screen of cards
WIDE_FROM = 7  # columns: smaller type and padding (greenery.css), so every column fits a laptop's page
KEEP_WHOLE_ROWS = 12  # rows: a table this short moves to the next sheet whole rather than split (print)
ONE_LINE_CHARS = 24  # a figure as text up to this long ("−10.1 to +27.3 points") stays on one line on paper
# A formatted figure: "1,234", "US$2.50", "79.8 %", "72–86 %", "+9 points", "−10 to +27 points", "< 0.001", "–".
_FIGURE = re.compile(r"^[<>≤≥±+−-]?\s?(US\$)?[0-9][0-9,.]*(\s?%)?(\s?(–|to)\s?[+−-]?(US\$)?[0-9][0-9,.]*(\s?%)?)?"
                     r"(\s(points?|h))?$|^–$")


def looks_numeric(column: pd.Series) -> bool:
    """A column of figures already formatted as text (right-aligned like numbers), not of words."""
    values = [str(v).replace("\u00a0", " ").strip() for v in column.dropna()]
    return bool(values) and all(_FIGURE.match(v) for v in values) and any(v != "–" for v in values)


def _css_string(text: str) -> str:
    """A CSS string literal: quotes and backslashes escaped, line breaks as CSS escapes, no markup."""
    text = str(text).replace("\\", "\\\\").replace('"', '\\"')
    text = re.sub(r"[\r\n]+", " ", text)
    return '"' + text.replace("<", "\\3C ").replace(">", "\\3E ") + '"'


def for_every_screen(styled, frame: pd.DataFrame, phone_columns: list | None = None):
    """Label every cell with its column name (for the phone layout), mark the table as one, and its
    cells as figures kept on one line on paper or hidden from a phone's cards (not in `phone_columns`)."""
    unknown = [c for c in phone_columns or [] if c not in frame.columns]
    if unknown:
        raise KeyError(f"phone_columns names columns the table does not have: {unknown}")
    styles = [{"selector": f"td.col{i}::before", "props": [("content", _css_string(name))]}
              for i, name in enumerate(frame.columns)]
    one_line = [i > 0 and bool(pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_datetime64_any_dtype(frame[c])
                           or all_moments(frame[c]) or (looks_numeric(frame[c]) and frame[c].astype(str).str.len().max()
                                                        <= ONE_LINE_CHARS))
                for i, c in enumerate(frame.columns)]
    hidden = [phone_columns is not None and c not in phone_columns for c in frame.columns]
    if any(one_line) or any(hidden):
        styled = styled.set_td_classes(pd.DataFrame(
            [[" ".join(["greenery-figure"] * bool(one) + ["greenery-phone-hidden"] * bool(hide))
              for one, hide in zip(one_line, hidden, strict=True)]] * len(frame),
            index=frame.index, columns=frame.columns))
    for i, name in enumerate(frame.columns):
        column = frame[name]
        if i == 0 or not (pd.api.types.is_numeric_dtype(column) or looks_numeric(column)):
            continue
        styles.append({"selector": f"th.col{i}", "props": [("text-align", "right")]})  # over its figures
        if column.astype(str).str.len().max() <= 12:  # "68–100 %", "US$2,664.30": one line, never split
            styles.append({"selector": f"td.col{i}", "props": [("white-space", "nowrap")]})
    classes = ("greenery-table" + (" greenery-cards" if len(frame.columns) >= CARDS_FROM else "")
               + (" greenery-wide" if len(frame.columns) >= WIDE_FROM else "")
               + (" greenery-short" if len(frame) <= KEEP_WHOLE_ROWS else ""))
    return styled.set_table_styles(styles, overwrite=False).set_table_attributes(f'class="{classes}"')


def phone_note(shown: int, total: int) -> str:
    """The line under a table whose phone cards hold only its key columns (greenery.css shows it on phones)."""
    return (f'<p class="greenery-phone-note">On a phone, {shown} of the {total} columns: a wider screen, '
            "paper and the CSV have them all.</p>")


def is_figure(column: pd.Series) -> bool:
    """A column of figures: numbers, dates and times, or figures already formatted as text."""
    return (pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)) \
        or pd.api.types.is_datetime64_any_dtype(column) or all_moments(column) or _all_numbers(column) \
        or looks_numeric(column)


def with_toggle(table_html: str, rows: int, key: str) -> str:
    """A long table's HTML with its phone toggle (greenery.css hides rows past PHONE_ROWS until it is on)."""
    if rows <= PHONE_ROWS:
        return table_html
    box = f"greenery-more-{key}"
    return (f'<input type="checkbox" class="greenery-more" id="{box}">{table_html}'
            f'<label class="greenery-more" for="{box}"><span class="greenery-more-closed">Show all {rows:,} rows</span>'
            f'<span class="greenery-more-open">Show the first {PHONE_ROWS} rows only</span></label>')


def of_figures(frame: pd.DataFrame) -> bool:
    """A table of figures (worth a download), not of words (model descriptions, parameters): at least
    half its columns after the first, which names the row, hold figures."""
    rest = list(frame.columns[1:]) or list(frame.columns)
    return bool(rest) and 2 * sum(is_figure(frame[c]) for c in rest) >= len(rest)


def all_moments(column: pd.Series) -> bool:
    values = column.dropna()
    return column.dtype == object and len(values) > 0 and all(isinstance(v, (datetime, date)) for v in values)


def _all_numbers(column: pd.Series) -> bool:
    """Decimals (DuckDB's DECIMAL arrives as Python Decimals, a column of objects)."""
    values = column.dropna()
    return column.dtype == object and len(values) > 0 and all(
        isinstance(v, (Decimal, int, float)) and not isinstance(v, bool) for v in values)


def formatted_figures(frame: pd.DataFrame) -> list[str]:
    """Columns holding figures as formatted text ("54.2 %", "US$2.50"): not values a CSV can offer."""
    return [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])
            and not pd.api.types.is_datetime64_any_dtype(frame[c]) and not _all_numbers(frame[c])
            and not all_moments(frame[c]) and looks_numeric(frame[c])]


def csv_name(caption: str | None, frame: pd.DataFrame, taken: set[str] | None = None) -> str:
    """The download's file name from the table's caption ("Repeat rate by first product" ->
    "greenery-repeat-rate-by-first-product.csv"), else from its first columns; numbered only when a
    page already offers that name."""
    def slug(text) -> str:
        return re.sub(r"[^a-z0-9]+", "-", unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore")
                      .decode().lower()).strip("-")

    stem = slug(caption) if caption else "-".join(s for s in (slug(c) for c in frame.columns[:2]) if s)
    stem = "greenery-" + (stem[:60].rstrip("-") or "table")
    name, n = f"{stem}.csv", 2
    while taken is not None and name in taken:
        name, n = f"{stem}-{n}.csv", n + 1
    if taken is not None:
        taken.add(name)
    return name


def csv_values(frame: pd.DataFrame) -> pd.DataFrame:
    """The values as a CSV carries them: times in ISO 8601 (UTC, "2021-02-10T14:00:00Z"), days as
    "2021-02-10"; numbers, Decimals and words as they are (no thousands separators, no units)."""
    frame = frame.copy()
    for c in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[c]) or all_moments(frame[c]):
            frame[c] = frame[c].map(formats.iso)
    return frame


# Floating-point figures carry this many significant digits in a CSV. Their last digits depend on the processor:
# numpy works out float64 exp and log with AVX-512 code where the processor has it and with the C library's
# elsewhere (a Kaplan–Meier share, a Cox hazard ratio differ in their 16th and 17th digits), and the book must
# be the same on every machine. Twelve are more than any figure here means, and keep an amount's cents below
# US$10 billion.
CSV_FLOAT_DIGITS = 12


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """UTF-8 with a byte-order mark (Excel reads dashes and accents right only with one), no index; floating-point
    figures to CSV_FLOAT_DIGITS significant digits (whole numbers, Decimals and words as they are)."""
    return csv_values(frame).to_csv(index=False, lineterminator="\n", float_format=_csv_float).encode("utf-8-sig")


def _csv_float(value: float) -> str:
    """A float to CSV_FLOAT_DIGITS significant digits, written as Python writes that number: a fraction that is
    whole keeps its point ("1.0", read back as a number with a fraction, not a count)."""
    return repr(float(f"{value:.{CSV_FLOAT_DIGITS}g}"))


def csv_download(frame: pd.DataFrame, caption: str | None = None, taken: set[str] | None = None) -> str:
    """An HTML link that downloads the frame as CSV, embedded in the page itself."""
    data = base64.b64encode(csv_bytes(frame)).decode()
    filename = html.escape(csv_name(caption, frame, taken))
    return (f'<p class="greenery-csv"><a download="{filename}" href="data:text/csv;charset=utf-8;base64,{data}">'
            f"Download these numbers (CSV)</a></p>")
