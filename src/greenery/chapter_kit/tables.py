"""Tables of figures that read at every width and offer their numbers: what book.table adds to a Styler.

- **Phone cards.** In a table of four columns or more, each cell carries its column's name as a
  CSS label (`td.colN::before`), shown only on narrow screens by book/_static/greenery.css, where
  each row becomes a card of "label: value" lines: no column is ever cut off to the right.
- **Long tables on a phone.** A table of more than `PHONE_ROWS` rows shows its first rows on a
  phone, the rest behind a "Show all N rows" toggle (a checkbox and its label, so the table stays
  one table; CSS only). Laptops and paper show every row.
- **CSV download.** The numbers behind the table, unformatted, as a `data:` link embedded in the
  page (it works offline and from `file://`). Tables in this book are aggregates and metadata, never
  raw rows, so the CSV holds what the table shows and nothing more.
"""

from __future__ import annotations

import base64
import itertools
import re

import pandas as pd

_CSV_IDS = itertools.count(1)
CARDS_FROM = 4  # columns: narrower tables fit a phone as they are
PHONE_ROWS = 10  # rows a phone shows before the toggle: about one screen of cards
WIDE_FROM = 7  # columns: smaller type and padding (greenery.css), so every column fits a laptop's page
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


def for_every_screen(styled, frame: pd.DataFrame):
    """Label every cell with its column name (for the phone layout) and mark the table as one."""
    styles = [{"selector": f"td.col{i}::before", "props": [("content", _css_string(name))]}
              for i, name in enumerate(frame.columns)]
    for i, name in enumerate(frame.columns):
        column = frame[name]
        if i == 0 or not (pd.api.types.is_numeric_dtype(column) or looks_numeric(column)):
            continue
        styles.append({"selector": f"th.col{i}", "props": [("text-align", "right")]})  # over its figures
        if column.astype(str).str.len().max() <= 12:  # "68–100 %", "US$2,664.30": one line, never split
            styles.append({"selector": f"td.col{i}", "props": [("white-space", "nowrap")]})
    classes = ("greenery-table" + (" greenery-cards" if len(frame.columns) >= CARDS_FROM else "")
               + (" greenery-wide" if len(frame.columns) >= WIDE_FROM else ""))
    return styled.set_table_styles(styles, overwrite=False).set_table_attributes(f'class="{classes}"')


def with_toggle(table_html: str, rows: int, key: str) -> str:
    """A long table's HTML with its phone toggle (greenery.css hides rows past PHONE_ROWS until it is on)."""
    if rows <= PHONE_ROWS:
        return table_html
    box = f"greenery-more-{key}"
    return (f'<input type="checkbox" class="greenery-more" id="{box}">{table_html}'
            f'<label class="greenery-more" for="{box}"><span class="greenery-more-closed">Show all {rows:,} rows</span>'
            f'<span class="greenery-more-open">Show the first {PHONE_ROWS} rows only</span></label>')


def csv_name(frame: pd.DataFrame, name: str | None = None) -> str:
    stem = name or "-".join(re.sub(r"[^a-z0-9]+", "-", str(c).lower()).strip("-") for c in frame.columns[:3])
    return f"{stem or 'table'}-{next(_CSV_IDS)}.csv"


def csv_download(frame: pd.DataFrame, name: str | None = None) -> str:
    """An HTML link that downloads the frame as CSV (UTF-8, no index), embedded in the page itself."""
    data = base64.b64encode(frame.to_csv(index=False, lineterminator="\n").encode("utf-8")).decode()
    filename = csv_name(frame, name)
    return (f'<p class="greenery-csv"><a download="{filename}" href="data:text/csv;charset=utf-8;base64,{data}">'
            f"Download these numbers (CSV)</a></p>")
