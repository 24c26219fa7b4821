"""`greenery report --notify URL`: tell stakeholders when a build is refused, warns or fails.

The message is a short JSON document with a Slack-compatible `text` field (Slack, Mattermost,
Teams' and Google Chat's incoming webhooks read it) plus the same facts as fields for other
tools: outcome, exit code, test counts, failing tests with their models and row counts. It never
carries rows, keys, values or paths: only what status.json holds (see greenery.report.status).

`run_recorded` wraps a `greenery report` run: it writes status.json/status.html next to the book
and posts the message when there is something to hear about. A webhook that cannot be reached
is reported on stderr and never changes the run's exit code.
"""

from __future__ import annotations

import contextlib
import json
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from greenery import config
from greenery.errors import ExitCode, GreeneryError, UsageError
from greenery.report import status
from greenery.report.publishing import when
from greenery.warehouse.manifest import load_manifest

MAX_LISTED = 10  # failing tests named in one message; the rest are counted


def worth_telling(state: dict) -> bool:
    """Refused, failed, or published with warnings. An unchanged rerun says nothing new."""
    attempt, tests = state["attempt"], state["tests"] or {}
    if attempt["outcome"] in ("refused", "failed"):
        return True
    return attempt["outcome"] == "published" and tests.get("summary", {}).get("warn", 0) > 0


def message(state: dict) -> dict:
    attempt, tests, book = state["attempt"], state["tests"] or {}, state["book"]
    summary = tests.get("summary", {})
    problems = tests.get("problems", [])
    headline = {"refused": "Greenery report: the new export was refused",
                "failed": "Greenery report: the build failed",
                "published": "Greenery report: published, with data-test warnings",
                "unchanged": "Greenery report: unchanged"}[attempt["outcome"]]
    reason = f": {attempt['reason']}" if attempt["reason"] else ""
    lines = [f"{headline} (exit {attempt['exit_code']}{reason})."]
    if summary:
        lines.append(f"Data tests: {summary.get('pass', 0)} passed, {summary.get('warn', 0)} warned, "
                     f"{summary.get('fail', 0)} failed.")
    manifest = load_manifest()
    for problem in problems[:MAX_LISTED]:
        lines.append(f"• {problem['status'].upper()} {problem['name']} ({problem['model']}): "
                     f"{manifest.failing(problem['name'], problem['failing_rows'])}")
    if len(problems) > MAX_LISTED:
        lines.append(f"• … and {len(problems) - MAX_LISTED} more")
    if attempt["error"]:
        lines.append(f"Error: {attempt['error']}")
    shows = book.get("shows")
    if attempt["outcome"] in ("refused", "failed"):
        lines.append(f"Readers still see the last good book ({shows['data_label']}, built {when(shows['built_at'])})."
                     if shows else "No book has been published yet.")
    return {"text": "\n".join(lines), "outcome": attempt["outcome"], "exit_code": attempt["exit_code"],
            "tests": summary, "failing_tests": problems, "finished_at": attempt["finished_at"]}


def post(url: str, payload: dict, timeout: float = 10.0) -> None:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        response.read()


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def _spellings(path: Path) -> set[str]:
    """The ways a path may appear in an error line: as given, absolute, and with every link resolved."""
    path = Path(path).expanduser()
    forms = {str(config.absolute(path))} | ({str(path)} if path.is_absolute() else set())
    with contextlib.suppress(OSError, RuntimeError):  # a link loop: the other forms still stand
        forms.add(str(path.resolve()))
    return {form for form in forms if form not in ("", ".", "/")}


def run_recorded(run, out=None, warehouse=None, data_dir=None, notify_url: str | None = None) -> int:
    """Run `run()` (a `greenery report`), then write the status files and notify; returns its exit code.

    Errors are re-raised after recording, so the command still prints them and exits with their code."""
    from greenery.outputs.ownership import read_stamp

    published = config.absolute(out) if out else config.HTML_DIR
    warehouse_path = config.absolute(config.warehouse_path(warehouse))
    hidden = {str(config.ROOT): "<checkout>", str(Path.home()): "~"}
    named = [(published, "<book>"), (warehouse_path, "<warehouse>"), (config.history_path(), "<history>"),
             (config.digest_cache_path(), "<digest cache>")]
    named += [(Path(source), "<export>") for source in (data_dir, config.env_path("GREENERY_DATA_DIR")) if source]
    for path, name in named:  # as given, as an absolute path, and with links resolved: each form is hidden
        hidden.update(dict.fromkeys(_spellings(path), name))
    before, started = read_stamp(published), _now()
    error, raised = None, None
    try:
        code = int(run())
    except UsageError:  # a refused argument: no attempt was made on any data, nothing to record
        raise
    except GreeneryError as failure:
        code, error, raised = int(failure.exit_code), status.redact(str(failure), hidden), failure
    except Exception as failure:  # the command line reports it as unexpected (exit 5)
        code, error, raised = int(ExitCode.UNEXPECTED), status.redact(type(failure).__name__), failure
    if code != ExitCode.BUSY:  # another run holds the book: it will write the status
        state = status.describe(code, error, started, _now(), published, warehouse_path, before, read_stamp(published))
        status.write(published, state)
        if notify_url and worth_telling(state):
            try:
                post(notify_url, message(state))
            except (OSError, urllib.error.URLError, ValueError) as failure:
                print(f"warning: could not notify {notify_url.split('?')[0]}: {failure}", file=sys.stderr)
    if raised is not None:
        raise raised
    return code
