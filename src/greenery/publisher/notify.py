"""`greenery report --notify URL`: tell stakeholders when a build is refused, warns or fails.

The message is a short JSON document with a Slack-compatible `text` field (Slack, Mattermost,
Teams' and Google Chat's incoming webhooks read it) plus the same facts as fields for other
tools: outcome, exit code, test counts, failing tests with their models and row counts. It never
carries rows, keys, values or paths: only what status.json holds (see greenery.publisher.status).

`run_recorded` wraps a `greenery report` run: it writes status.json/status.html next to the book
and posts the message when there is something to hear about. A webhook that cannot be reached,
answers slowly or answers nonsense is one warning on stderr and never changes the run's exit code
nor hides its error. The whole exchange (connect, send, read) has one deadline, and at most a few
kilobytes of the answer are read. Only the URL's scheme and host are ever printed: for a chat
webhook the path is the secret.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from greenery import config
from greenery.errors import ExitCode, GreeneryError, UsageError, one_line, received_signal, unexpected_reason
from greenery.publisher import status

MAX_LISTED = 10  # failing tests named in one message; the rest are counted
DEADLINE_SECONDS = 10.0  # the whole exchange with the webhook: connect, send the message, read the answer
MAX_ANSWER_BYTES = 4096  # of the answer's body: a webhook says "ok"; a huge answer is never read whole


def worth_telling(state: dict) -> bool:
    """Refused, failed, or published with warnings (data tests, the export watch, a metric that moved).
    An unchanged rerun says nothing new."""
    attempt, tests = state["attempt"], state["tests"] or {}
    if attempt["outcome"] in ("refused", "failed"):
        return True
    return attempt["outcome"] == "published" and (tests.get("summary", {}).get("warn", 0) > 0
                                                  or bool(status.alert_lines(state.get("alerts"))))


def message(state: dict) -> dict:
    attempt, tests, book = state["attempt"], state["tests"] or {}, state["book"]
    summary = tests.get("summary", {})
    problems = tests.get("problems", [])
    headline = {"refused": "Greenery report: the new export was refused",
                "failed": "Greenery report: the build failed",
                "published": "Greenery report: published, with warnings",
                "unchanged": "Greenery report: unchanged"}[attempt["outcome"]]
    reason = f": {attempt['reason']}" if attempt["reason"] else ""
    lines = [f"{headline} (exit {attempt['exit_code']}{reason})."]
    if summary:
        lines.append(f"Data tests: {summary.get('pass', 0)} passed, {summary.get('warn', 0)} warned, "
                     f"{summary.get('fail', 0)} failed.")
    from greenery.publisher.book_stage import when  # here: the book's libraries only when a message is sent
    from greenery.warehouse.manifest import load_manifest

    manifest = load_manifest()
    for problem in problems[:MAX_LISTED]:
        lines.append(f"• {problem['status'].upper()} {problem['name']} ({problem['model']}): "
                     f"{manifest.failing(problem['name'], problem['failing_rows'])}")
    if len(problems) > MAX_LISTED:
        lines.append(f"• … and {len(problems) - MAX_LISTED} more")
    alerts = state.get("alerts") or {}
    for line in status.alert_lines(alerts)[:MAX_LISTED]:
        lines.append(f"• {line}")
    if attempt["error"]:
        lines.append(f"Error: {attempt['error']}")
    shows = book.get("shows")
    if attempt["outcome"] in ("refused", "failed"):
        lines.append(f"Readers still see the last good book ({shows['data_label']}, built {when(shows['built_at'])})."
                     if shows else "No book has been published yet.")
    return {"text": "\n".join(lines), "outcome": attempt["outcome"], "exit_code": attempt["exit_code"],
            "tests": summary, "failing_tests": problems, "moved_metrics": alerts.get("metrics", []),
            "export_watch": alerts.get("watch", []), "finished_at": attempt["finished_at"]}


def shown_url(url: str) -> str:
    """What may be printed of a webhook's URL: its scheme and host (the path and query are the secret)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a port that is not a number, say: show nothing of it
        return "the webhook"
    return f"{parts.scheme}://{host}{port}" if parts.scheme and host else "the webhook"


class NotifyError(Exception):
    """The webhook could not be told: why, in words that hold nothing of its URL."""


def post(url: str, payload: dict, deadline: float = DEADLINE_SECONDS) -> int:
    """POST `payload` as JSON; returns the HTTP status. NotifyError when it failed, within `deadline`
    seconds overall whatever the server does (a server that answers one byte at a time included)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise NotifyError("not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NotifyError("not an http:// or https:// URL")
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    # Each socket operation also gives up at the deadline; the watchdog below covers their sum.
    connection = connection_class(parts.hostname, port, timeout=deadline)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    body = json.dumps(payload).encode()
    outcome: dict[str, object] = {}

    def exchange() -> None:
        try:
            connection.request("POST", target, body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()  # a status line and headers, each bounded by http.client
            outcome["status"] = response.status
            with contextlib.suppress(Exception):  # the body says nothing we need; a short one is no failure
                response.read(MAX_ANSWER_BYTES)
        except Exception as failure:  # noqa: BLE001 - reported by the caller's thread
            outcome.setdefault("error", failure)

    started = time.monotonic()
    worker = threading.Thread(target=exchange, name="greenery-notify", daemon=True)
    worker.start()
    worker.join(max(0.0, deadline - (time.monotonic() - started)))
    if worker.is_alive():  # stop the exchange where it is: its socket's next read or write fails at once
        sock = connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        worker.join(1.0)
        connection.close()
        raise NotifyError(f"no complete answer within {deadline:g} s")
    connection.close()
    if "status" in outcome:
        status_code = int(outcome["status"])
        if not 200 <= status_code < 300:
            raise NotifyError(f"it answered HTTP {status_code}")
        return status_code
    failure = outcome.get("error")
    if isinstance(failure, TimeoutError):  # a socket operation reached the same deadline first
        raise NotifyError(f"no complete answer within {deadline:g} s")
    raise NotifyError(_reason(failure, url))


def _reason(failure: object, url: str) -> str:
    """Why an exchange failed, in one short line without the URL (exceptions may quote it)."""
    if isinstance(failure, http.client.HTTPException):
        return "the answer was not HTTP"
    if isinstance(failure, OSError) and failure.strerror:
        text = failure.strerror
    else:
        text = str(failure).splitlines()[0] if str(failure) else ""
    for secret in (url, urlsplit(url).path):
        if secret and secret != "/":
            text = text.replace(secret, "…")
    return f"{type(failure).__name__}: {text}"[:200] if text else type(failure).__name__


def tell(url: str, state: dict) -> None:
    """Post the message for `state` if it is worth telling; a failure is a warning, never an error."""
    try:
        if worth_telling(state):
            post(url, message(state))
    except Exception as failure:  # noqa: BLE001 - nothing about the webhook may change the run's outcome
        reason = str(failure) if isinstance(failure, NotifyError) else _reason(failure, url)
        warn(f"could not notify {shown_url(url)}: {reason}")


def warn(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr)


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def _spellings(path: Path) -> set[str]:
    """The ways a path may appear in an error line: as given, absolute, and with every link resolved."""
    path = Path(path).expanduser()
    forms = {str(config.absolute(path))} | ({str(path)} if path.is_absolute() else set())
    with contextlib.suppress(OSError, RuntimeError):  # a link loop: the other forms still stand
        forms.add(str(path.resolve()))
    forms |= {one_line(form) for form in forms}  # as an error line shows a path with a line break in it
    return {form for form in forms if form not in ("", ".", "/")}


def _raise_if_stopped(failure: Exception) -> None:
    """A signal arrived (DuckDB makes one during a query its own RuntimeError, 'Query interrupted'): the
    run was stopped, not failed; no status is written, as for any run a signal stops."""
    stop = received_signal()
    if stop is not None:
        raise stop from failure


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
        _raise_if_stopped(failure)
        code, error, raised = int(failure.exit_code), status.redact(str(failure), hidden), failure
    except Exception as failure:  # the command line reports it as unexpected (exit 5)
        _raise_if_stopped(failure)
        code, raised = int(ExitCode.UNEXPECTED), failure
        error = status.redact(unexpected_reason(failure, with_file=False))
    if code != ExitCode.BUSY:  # another run holds the book: it will write the status
        state = status.describe(code, error, started, _now(), published, warehouse_path, before, read_stamp(published))
        try:
            status.write(published, state)
        except OSError as failure:  # a full disk, say: the run's own outcome and error still stand
            warn(f"the status files beside the book could not be written: {failure.strerror or failure}")
        if notify_url:
            tell(notify_url, state)
    if raised is not None:
        raise raised
    return code
