"""greenery.db's helpers: rows inserted in one statement are the rows `executemany` inserts."""

from __future__ import annotations

import math

from greenery import db

COLUMNS = "(name varchar, n bigint, x double, tags varchar[], id integer)"
TYPES = ("varchar", "bigint", "double", "varchar[]", "integer")
ROWS = [
    ("stg_orders", 361, 0.1, ["a", None], 1),
    (None, None, None, None, None),  # every column null
    ("fct_é \"quoted\"; drop table t", -2**62, -1e-300, [], 2_147_483_647),
    ("views have no rows", None, math.inf, ["x"], -2_147_483_648),
]


def test_insert_rows_inserts_what_executemany_inserts_in_order():
    con = db.connect()
    try:
        db.run(con, f"create table by_row {COLUMNS}")
        db.run(con, f"create table at_once {COLUMNS}")
        con.executemany("insert into by_row values (?, ?, ?, ?, ?)", ROWS)
        db.insert_rows(con, "at_once", TYPES, ROWS)
        db.insert_rows(con, "at_once", TYPES, [])  # nothing to insert: no statement
        expected = [tuple(row) for row in ROWS]
        assert db.rows(con, "select * from by_row order by rowid") == expected
        assert db.rows(con, "select * from at_once order by rowid") == expected
        assert db.rows(con, "select * from at_once") == expected  # in the order given
        assert db.rows(con, "select typeof(n), typeof(x), typeof(tags), typeof(id) from at_once limit 1") == [
            ("BIGINT", "DOUBLE", "VARCHAR[]", "INTEGER")]
    finally:
        con.close()


def test_a_connection_opened_beside_is_an_in_memory_one_and_closed_when_open():
    opening = db.connect_beside()
    con = opening.result(timeout=db.OPEN_DEADLINE_S)
    assert db.rows(con, "select current_database(), current_setting('TimeZone')") == [("memory", "UTC")]
    db.close_when_open(opening)
    try:
        con.execute("select 1")
    except db.duckdb.ConnectionException:
        pass
    else:
        raise AssertionError("close_when_open left the connection open")
    db.close_when_open(None)  # nothing opened: nothing to do


def test_a_setting_duckdb_refuses_is_raised_where_the_connection_is_taken(monkeypatch):
    import pytest

    from greenery.errors import UsageError

    monkeypatch.setenv("GREENERY_DUCKDB_THREADS", "0")
    opening = db.connect_beside()
    with pytest.raises(UsageError):
        opening.result(timeout=db.OPEN_DEADLINE_S)
    db.close_when_open(opening)  # the failure is not raised again


def test_a_thread_count_of_digits_int_cannot_read_is_a_usage_error_not_a_crash(monkeypatch):
    """'²' is a digit to str.isdigit but no number to int: refused like any other bad count (exit 2, naming
    the variable), not an unexpected ValueError (exit 5). Surrounding blanks are still read."""
    import pytest

    from greenery import config
    from greenery.errors import UsageError

    for value in ("²", "1²", "٣"):
        monkeypatch.setenv("GREENERY_DUCKDB_THREADS", value)
        with pytest.raises(UsageError, match=r"^\$GREENERY_DUCKDB_THREADS="):
            config.duckdb_settings()
    monkeypatch.setenv("GREENERY_DUCKDB_THREADS", " 2 ")
    assert config.duckdb_settings()["threads"] == 2
