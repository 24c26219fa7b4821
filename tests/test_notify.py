"""The webhook of `greenery report --notify`: one deadline for the whole exchange, a bounded read, and a
failure that is only ever a warning naming the scheme and host (for a chat webhook the path is the secret).

Every server here is a socket on 127.0.0.1 started by the test, serving one connection in a thread
that stops by itself (its own time limit) whatever the client does."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from greenery.errors import ExitCode, InputError
from greenery.publisher import notify, status

SECRET = "/services/T000/B000/secret-token"


@contextmanager
def server(behave: Callable[[socket.socket, dict], None], lifetime: float = 20.0) -> Iterator[tuple[str, dict]]:
    """A one-connection server doing `behave(connection, facts)`; yields its URL and what it noted."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(lifetime)
    facts: dict = {"sent": 0}

    def serve():
        try:
            connection, _ = listener.accept()
        except OSError:
            return
        with connection:
            connection.settimeout(lifetime)
            try:
                behave(connection, facts)
            except OSError as failure:  # the client hung up: what a bounded client does
                facts["client_gone"] = type(failure).__name__

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}{SECRET}?key=also-secret", facts
    finally:
        listener.close()
        thread.join(lifetime)


def read_request(connection: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += connection.recv(65536)
    return body


def answers_ok(connection, facts):
    facts["body"] = json.loads(read_request(connection))
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


def one_byte_every_half_second(connection, facts):
    read_request(connection)
    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" * 100:
        connection.sendall(bytes([byte]))
        facts["sent"] += 1
        time.sleep(0.5)


def never_reads(connection, facts):
    time.sleep(6)


def a_gigabyte(connection, facts):
    read_request(connection)
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n")
    chunk = b"x" * (1 << 20)
    while facts["sent"] < 1 << 30:
        connection.sendall(chunk)
        facts["sent"] += len(chunk)


def not_http(connection, facts):
    read_request(connection)
    connection.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")


def a_short_body(connection, facts):
    read_request(connection)
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nok")


def status_500(connection, facts):
    read_request(connection)
    connection.sendall(b"HTTP/1.1 500 " + SECRET.encode() + b"\r\nContent-Length: 0\r\n\r\n")


def test_a_message_is_posted_as_json():
    with server(answers_ok) as (url, facts):
        assert notify.post(url, {"text": "hello"}) == 200
    assert facts["body"] == {"text": "hello"}


@pytest.mark.parametrize("behave", [one_byte_every_half_second, never_reads])
def test_a_slow_server_is_given_up_at_one_deadline_for_the_whole_exchange(behave):
    """Each byte arrives well within any per-read timeout; only a deadline over the whole exchange ends it."""
    with server(behave) as (url, facts):
        started = time.monotonic()
        with pytest.raises(notify.NotifyError, match="no complete answer within 2 s"):
            notify.post(url, {"text": "hello"}, deadline=2.0)
        assert time.monotonic() - started < 4.0


def test_a_huge_answer_is_never_read_whole():
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with server(a_gigabyte) as (url, facts):
        started = time.monotonic()
        assert notify.post(url, {"text": "hello"}, deadline=10.0) == 200
        assert time.monotonic() - started < 5.0
    assert "client_gone" in facts and facts["sent"] < 64 << 20  # we hung up after a few kilobytes
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50 << 10  # KiB: not the gigabyte


def test_a_short_body_after_a_good_status_is_delivered():
    with server(a_short_body) as (url, _):
        assert notify.post(url, {"text": "hello"}) == 200


@pytest.mark.parametrize("behave,says", [(not_http, "the answer was not HTTP"), (status_500, "it answered HTTP 500")])
def test_a_bad_answer_is_a_notify_error_without_the_url(behave, says):
    with server(behave) as (url, _), pytest.raises(notify.NotifyError) as raised:
        notify.post(url, {"text": "hello"})
    assert str(raised.value) == says


def test_only_the_scheme_and_host_are_ever_shown():
    assert notify.shown_url(f"https://hooks.example.com{SECRET}?token=x") == "https://hooks.example.com"
    assert notify.shown_url(f"https://user:pw@hooks.example.com:8443{SECRET}") == "https://hooks.example.com:8443"
    assert notify.shown_url("http://host:notaport/x") == "the webhook"


def refused_run():
    raise InputError("/data/export/products.csv", 3, "price",
                     "cannot read '12'alice@example.com +1-555-0100' as DECIMAL(12,2)")


@pytest.mark.parametrize("behave", [not_http, a_short_body, one_byte_every_half_second, status_500, None])
def test_a_failing_webhook_never_changes_the_exit_code_nor_hides_the_error(behave, tmp_path, monkeypatch, capsys):
    """Exit 2 stays exit 2 with its own error, whatever the webhook does; the warning has no secret."""
    monkeypatch.setattr(notify, "DEADLINE_SECONDS", 2.0)
    out = tmp_path / "site" / "html"
    if behave is None:  # nothing listens
        url = f"http://127.0.0.1:9{SECRET}"
        with pytest.raises(InputError):
            notify.run_recorded(refused_run, out=out, warehouse=tmp_path / "w.duckdb", notify_url=url)
    else:
        with server(behave) as (url, _), pytest.raises(InputError):
            notify.run_recorded(refused_run, out=out, warehouse=tmp_path / "w.duckdb", notify_url=url)
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("warning: could not notify http://127.0.0.1:")]
    if behave is a_short_body:
        assert warnings == []  # delivered
    else:
        assert len(warnings) == 1
    assert "secret" not in err and SECRET not in err
    state = json.loads(status.paths(out)[0].read_text())
    assert state["attempt"]["outcome"] == "refused" and state["attempt"]["exit_code"] == ExitCode.BAD_INPUT


def test_the_real_error_and_exit_code_survive_a_webhook_that_answers_nonsense(shop_dir, tmp_path):
    """End to end: a refused export with a webhook that is not HTTP: exit 2, the loader's line last."""
    import os
    import subprocess
    import sys

    products = (shop_dir / "products.csv").read_text().split("\n")
    header = products[0].split(",")
    row = products[1].split(",")
    row[header.index("price")] = "twelve"
    products[1] = ",".join(row)
    (shop_dir / "products.csv").write_text("\n".join(products))
    with server(not_http) as (url, _):
        done = subprocess.run(
            [sys.executable, "-m", "greenery", "report", "--data-dir", str(shop_dir), "--out", str(tmp_path / "book"),
             "--warehouse", str(tmp_path / "w.duckdb"), "--notify", url],
            capture_output=True, text=True, timeout=300,
            env={**os.environ, "GREENERY_HISTORY": str(tmp_path / "h.duckdb")})
    assert done.returncode == ExitCode.BAD_INPUT
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "products.csv:2" in lines[-1]
    assert any(line.startswith("warning: could not notify http://127.0.0.1:") and "not HTTP" in line for line in lines)
    assert "secret" not in done.stderr and "Traceback" not in done.stderr


def test_error_lines_lose_every_value_even_one_holding_quotes():
    """A value's own quote breaks quote pairing: the email and phone after it must still go."""
    line = ("/data/export/products.csv:3: column 'price': cannot read '12'alice@example.com +1-555-0100' "
            "as DECIMAL(12,2)")
    assert status.redact(line, {"/data/export": "<export>"}) == \
        "<export>/products.csv:3: column 'price': cannot read '…' as DECIMAL(12,2)"
    unclosed = "products.csv:3: column 'price': cannot read '12'alice@example.com +1-555-0100 as DECIMAL(12,2)"
    redacted = status.redact(unclosed)
    assert "alice" not in redacted and "555" not in redacted and redacted.startswith("products.csv:3: column 'price':")
    # no quotes at all (a message of another library): e-mail addresses and phone numbers still go
    assert status.redact("rejected alice@example.com, call +1 (555) 010-0100 or 555-0100") == \
        "rejected … call … or …"  # the comma went with the address: too much, never too little
    assert status.redact("orders.csv:1234: too many values") == "orders.csv:1234: too many values"


def test_a_path_with_a_line_break_is_hidden_as_the_error_line_shows_it(tmp_path):
    """Error lines show a line break in a path as <U+000A> (errors.one_line): that spelling is hidden too."""
    from greenery.errors import InputError
    from greenery.publisher import notify

    export = tmp_path / "my\nexport"
    line = str(InputError(export / "orders.csv", 3, "created_at", "cannot read it"))
    hidden = dict.fromkeys(notify._spellings(export), "<export>")
    assert status.redact(line, hidden) == "<export>/orders.csv:3: column 'created_at': cannot read it"
