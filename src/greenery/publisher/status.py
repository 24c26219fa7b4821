"""What the last `greenery report` did, for the people who read the book: `<book>.status.json` and
`<book>.status.html` (for the default `_build/html`: `_build/html.status.json`).

Both are written next to the published book folder, never inside it, and named after it (two books
in one folder each have their own), so that after a refused or
failed build the book stays byte-identical while the status says a newer export was refused.
They record when the last attempt ran, its outcome, the data tests' counts and failures (names,
models and row counts: never rows, keys or values) and which export the published book shows.

Outcomes: `published` (a new book), `unchanged` (nothing to redo), `refused` (an error-level data
test failed, or the export could not be read: exit 1 or 2), `failed` (a chapter, the render or
the history failed: exit 4). A run that found another one busy (exit 3) writes nothing: the
other run will.
"""

from __future__ import annotations

import html
import json
import re
import sys
from pathlib import Path

from greenery import config
from greenery.errors import ExitCode, one_line
from greenery.outputs import atomic
from greenery.outputs.ownership import kind, read_own, read_own_json

STATUS_JSON, STATUS_HTML = ".status.json", ".status.html"  # after the book folder's name
WATCH_REFUSAL = "export refused by the watch"  # greenery.warehouse.watch.refuse's words
OUTCOMES = {ExitCode.OK: "published", ExitCode.DATA_TEST_FAILED: "refused", ExitCode.BAD_INPUT: "refused",
            ExitCode.REPORT_FAILED: "failed"}


def paths(published: Path) -> tuple[Path, Path]:
    return (published.with_name(published.name + STATUS_JSON), published.with_name(published.name + STATUS_HTML))


# The header of a loader's line, `FILE:LINE: column 'NAME':`, whose quoted name is the contract's.
_COLUMN_HEADER = re.compile(r"^[^']*?column '[A-Za-z_][A-Za-z0-9_]*':")
# Data that may travel outside quotes (a value that holds quotes of its own breaks their pairing).
_EMAIL = re.compile(r"[^\s'\"<>()\[\]]+@[^\s'\"<>()\[\]]+")
_PHONE = re.compile(r"\+?\(?\d[\d ().-]{5,}\d")  # kept as is unless it holds 7 digits and a separator


def _phone(found: re.Match) -> str:
    text = found.group()
    digits = sum(c.isdigit() for c in text)
    return "…" if digits >= 7 and (digits < len(text) or digits > 10) else text


def _values(text: str) -> str:
    """From the first quote to the last is one value (it may hold quotes); a lone quote runs to the end."""
    first, last = text.find("'"), text.rfind("'")
    if first < 0:
        return text
    return text[:first] + ("'…" if first == last else "'…'" + text[last + 1:])


def redact(message: str, hidden: dict[str, str] | None = None) -> str:
    """One line of an error, safe to show anyone: the given paths are replaced by what they stand
    for, and whatever may come from the data becomes '…'.

    Values are quoted in error lines, but a value may hold quotes itself (`12'alice@example.com`),
    so quotes cannot be trusted to pair: everything from the first quote after the line's column
    header (whose name is the contract's) to the last quote is one value, and a quote left open
    runs to the end of the line. E-mail addresses and phone numbers are removed wherever they are."""
    line = next((part for part in message.splitlines() if part.strip()), "")
    for path, name in sorted((hidden or {}).items(), key=lambda item: -len(item[0])):
        if path:
            line = line.replace(path, name)
    header = _COLUMN_HEADER.match(line)
    head, rest = (line[:header.end()], line[header.end():]) if header else ("", line)
    line = _PHONE.sub(_phone, _EMAIL.sub("…", head + _values(rest)))
    return line[:300]


def _summary(rows: list[dict]) -> dict:
    return {kind: sum(r["status"] == kind for r in rows) for kind in ("pass", "warn", "fail")}


def _problems(rows: list[dict]) -> list[dict]:
    return [{key: r[key] for key in ("name", "model", "severity", "status", "failing_rows")}
            for r in rows if r["status"] in ("warn", "fail")]


def refused_results(warehouse: Path) -> dict | None:
    """Counts and failures of the build just refused: its run_results.json (the warehouse itself was kept)."""
    results = read_own_json(config.run_results_path(warehouse))
    if not isinstance(results, dict):
        return None
    rows = results.get("results", [])
    return {"summary": _summary(rows), "problems": _problems(rows)}


def published_results(warehouse: Path) -> dict | None:
    """Counts and failures of the warehouse the book was built from, read from the warehouse itself
    (its run_results.json may since hold a refused build's)."""
    from greenery import db

    try:
        con = db.connect(warehouse, read_only=True)
    except Exception:  # no warehouse, or not one of ours: nothing to report
        return None
    try:
        names = ("name", "model", "severity", "status", "failing_rows")
        rows = [dict(zip(names, row, strict=True))
                for row in db.rows(con, f"select {', '.join(names)} from data_test_results order by name")]
    except Exception:  # an older warehouse without the table
        return None
    finally:
        con.close()
    return {"summary": _summary(rows), "problems": _problems(rows)}


def alerts(warehouse: Path) -> dict | None:
    """What the export watch and the trends found for the warehouse's export: the watch's warnings
    (volume, freshness, schema) and the headline metrics that moved beyond chance (greenery.chapter_kit.trends),
    each one line of figures, table and column names: never rows or values. None for a warehouse without
    them (an older one, or none)."""
    from greenery import db
    from greenery.warehouse import metrics

    try:
        con = db.connect(warehouse, read_only=True)
    except Exception:  # no warehouse, or not one of ours: nothing to report
        return None
    try:
        watch = db.rows(con, "select check_name, subject, status, message from export_watch "
                             "order by status = 'ok', check_name, subject")
        exports = db.scalar(con, "select count(distinct build_id) from history_metrics")
        if exports >= 2:  # something to compare: only then the tests (pandas, scipy) are loaded
            from greenery.chapter_kit import analyses, trends

            history = analyses.frame(con, "history_metrics")
    except Exception:  # an older warehouse without the tables
        return None
    finally:
        con.close()
    found = [{"check": check, "subject": subject, "status": status, "text": redact(message)}
             for check, subject, status, message in watch if status != "ok"]
    moved = [{**alert, "text": redact(alert["text"])} for alert in trends.alerts(history)] if exports >= 2 else []
    return {"watch": found, "metrics": moved, "correction": metrics.ALERT_CORRECTION, "alpha": metrics.ALERT_ALPHA}


def moved_lines(warehouse: Path) -> list[str]:
    """The headline metrics that moved beyond chance with this export, for the build's summary (a warning:
    the run still exits 0)."""
    found = alerts(warehouse) or {}
    return [f"  warning: metric moved: {alert['text']}" for alert in found.get("metrics", [])]


def alert_lines(found: dict | None) -> list[str]:
    """The alerts as lines for a terminal, the status page and the notify message."""
    if not found:
        return []
    return ([f"metric moved: {a['text']}" for a in found["metrics"]]
            + [f"{w['check']}: {w['text']}" for w in found["watch"]])


def describe(exit_code: int, error: str | None, started_at: str, finished_at: str, published: Path,
             warehouse: Path, book_before: dict, book_after: dict) -> dict:
    """The status of one attempt, as stored in status.json."""
    code = ExitCode(exit_code)
    outcome = OUTCOMES.get(code, "failed")
    if code == ExitCode.OK and book_after.get("book") == book_before.get("book"):
        outcome = "unchanged"
    tests = {ExitCode.OK: published_results, ExitCode.DATA_TEST_FAILED: refused_results}.get(code, lambda w: None)(
        warehouse)
    reason = {ExitCode.DATA_TEST_FAILED: "error-level data tests failed",
              ExitCode.BAD_INPUT: "the export could not be read"}.get(code)
    if code == ExitCode.BAD_INPUT and (error or "").startswith(WATCH_REFUSAL):
        reason = "a threshold set for the export watch refused the export"
    return {
        "attempt": {"started_at": started_at, "finished_at": finished_at, "outcome": outcome,
                    "exit_code": int(code), "reason": reason, "error": error},
        "tests": tests,
        "alerts": alerts(warehouse) if code == ExitCode.OK else None,
        "book": {"folder": published.name, "shows": book_after.get("provenance"),
                 "changed": book_after.get("book") != book_before.get("book")},
    }


def _ours(path: Path) -> bool:
    """A status file this tool wrote (never replace a file someone else put beside the book)."""
    try:
        text = (read_own(path) or b"").decode("utf-8")
    except UnicodeDecodeError:
        return False
    if path.suffix == ".json":
        try:
            payload = json.loads(text)
            return isinstance(payload, dict) and "attempt" in payload
        except ValueError:
            return False
    return "<title>Greenery report: status</title>" in text


def render_html(status: dict) -> str:
    """A small self-contained page (no script, nothing from another host); every value escaped."""
    from greenery.publisher.book_stage import when  # nbformat under it: `greenery build` never renders a page

    e = html.escape
    attempt, tests, book = status["attempt"], status["tests"], status["book"]
    colour = {"published": "#2e7d32", "unchanged": "#2e7d32", "refused": "#c62828", "failed": "#c62828"}
    lines = [f"<p class='outcome' style='color:{colour.get(attempt['outcome'], '#333')}'>"
             f"Last attempt: <strong>{e(attempt['outcome'])}</strong> (exit {attempt['exit_code']})"
             + (f": {e(attempt['reason'])}" if attempt.get("reason") else "") + "</p>",
             f"<p>Started {e(when(attempt['started_at']))}, finished {e(when(attempt['finished_at']))}.</p>"]
    if attempt.get("error"):
        lines.append(f"<p>Error: <code>{e(attempt['error'])}</code></p>")
    if tests:
        s = tests["summary"]
        lines.append(f"<p>Data tests: {s.get('pass', 0)} passed, {s.get('warn', 0)} warned, "
                     f"{s.get('fail', 0)} failed.</p>")
        if tests["problems"]:
            rows = "".join(f"<tr><td>{e(p['status'])}</td><td>{e(p['name'])}</td><td>{e(p['model'])}</td>"
                           f"<td>{p['failing_rows']:,}</td></tr>" for p in tests["problems"])
            lines.append("<table><tr><th>Result</th><th>Test</th><th>Model</th><th>Failing rows</th></tr>"
                         f"{rows}</table>")
    found = alert_lines(status.get("alerts"))
    if found:
        lines.append("<p>Warnings about the export and its headline metrics (not refusals):</p><ul>"
                     + "".join(f"<li>{e(line)}</li>" for line in found) + "</ul>")
    shows = book.get("shows")
    if shows:
        lines.append(f"<p>The <a href='{e(book['folder'])}/index.html'>published book</a> shows "
                     f"{e(shows['data_label'])} (fingerprint {e(shows['data_fingerprint'])}), built "
                     f"{e(when(shows['built_at']))}"
                     + ("" if book["changed"] else ": not changed by this attempt") + ".</p>")
    else:
        lines.append("<p>No book has been published yet.</p>")
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            "<title>Greenery report: status</title><style>body{font-family:sans-serif;max-width:46em;margin:2em auto;"
            "padding:0 1em;line-height:1.5}table{border-collapse:collapse}td,th{padding:.2em .6em;"
            "border-bottom:1px solid #ddd;text-align:left;vertical-align:top}td{overflow-wrap:anywhere}"
            "</style></head><body>"
            "<h1>Greenery report: status</h1>" + "\n".join(lines) + "</body></html>\n")


def write(published: Path, status: dict) -> tuple[Path, Path] | None:
    """Both status files, unless a file of that name beside the book is not ours (then a warning, and nothing)."""
    json_path, html_path = paths(published)
    foreign = [p for p in (json_path, html_path) if kind(p) and (kind(p) != "file" or not _ours(p))]
    if foreign:
        print(one_line(f"warning: {foreign[0]} is not a greenery status file: the status files were not written"),
              file=sys.stderr)
        return None
    json_path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(json_path, json.dumps(status, indent=2, default=str) + "\n")
    atomic.write_text(html_path, render_html(status))
    return json_path, html_path
