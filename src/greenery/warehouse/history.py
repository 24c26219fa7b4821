"""History across builds: type-2 snapshots in a DuckDB file that no build ever replaces.

After a build passes its error-level tests, each snapshot declared in snapshots/_snapshots.yml
is brought up to date in one transaction: a row whose checked columns changed gets its open
version closed (valid_to = this build's time) and a new version opened; a new row gets its first
version; a row gone from the export is closed. The differences against an earlier build of the
same kind of data (export or sample) are then written into the warehouse (`history_builds`,
`history_changes`, `history_comparison`) for the "what changed" chapter: by default the previous
build; `since` names another one, the build the published book showed (greenery.publisher.run),
so that `build` runs in between never hide a change from the book's readers. The versions valid
at that build's time are compared with this build's, so any earlier build can be compared with.
The first build has nothing to compare with.

The history and the warehouse commit together. A build is recorded as `pending`, with the path
of the warehouse it belongs to; the rename that publishes that warehouse is the commit point,
after which the build is marked `published`. A run killed in between leaves a pending build:
the next build finds it (`reconcile`) and marks it published if its warehouse was moved in,
else undoes it exactly (its versions carry its own timestamp), so comparisons are always made
with the last published build and no manual step is ever needed.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from greenery import db
from greenery.config import SNAPSHOTS_FILE
from greenery.db import duckdb
from greenery.errors import HistoryError
from greenery.outputs.ownership import HISTORY_ADVICE, check_history
from greenery.warehouse import watch
from greenery.warehouse.manifest import parse_yaml, parsed
from greenery.warehouse.metrics import Measure

BUILDS_COLUMNS = [("build_id", "INTEGER"), ("built_at", "TIMESTAMP WITH TIME ZONE"), ("data_kind", "VARCHAR"),
                  ("data_label", "VARCHAR"), ("rows_read", "BIGINT"), ("warehouse", "VARCHAR"), ("state", "VARCHAR")]


# Each export's headline metrics (greenery.warehouse.metrics) and its raw tables' rows and columns (the
# export watch's previous figures), recorded once per export: a rebuild of the same export adds nothing.
METRICS_COLUMNS = [("build_id", "INTEGER"), ("data_kind", "VARCHAR"), ("export", "VARCHAR"), ("metric", "VARCHAR"),
                   ("version", "INTEGER"), ("kind", "VARCHAR"), ("value", "DOUBLE"), ("numerator", "DOUBLE"),
                   ("denominator", "DOUBLE"), ("sd", "DOUBLE"), ("ci_low", "DOUBLE"), ("ci_high", "DOUBLE")]
EXPORT_TABLES_COLUMNS = [("build_id", "INTEGER"), ("data_kind", "VARCHAR"), ("export", "VARCHAR"),
                         ("table_name", "VARCHAR"), ("row_count", "BIGINT"), ("columns", "VARCHAR[]")]
RECORDS = {"metrics": METRICS_COLUMNS, "export_tables": EXPORT_TABLES_COLUMNS}


@dataclass(frozen=True)
class Snapshot:
    name: str
    source: str
    key: str
    check_columns: tuple[str, ...]
    description: str
    hash_key: bool = False  # keep a 128-bit md5 of the key instead of its text (many rows, never shown)

    @property
    def key_expression(self) -> str:
        # Ids are UUIDs in the warehouse and text in the history (as they were before they were
        # typed): the same canonical text, so existing history files keep matching.
        return f"md5_number({self.key}::varchar)" if self.hash_key else f"{self.key}::varchar"

    def key_text(self, value: str) -> str:
        """A key as text for `history_changes`: a hashed key in hexadecimal. (DuckDB 2.0 casts a
        128-bit integer to decimal text at about 65 µs a value: 3 minutes for 3 million new events.)"""
        return f"lower(to_hex({value}))" if self.hash_key else f"{value}::varchar"

    @property
    def row_hash(self) -> str:
        if not self.check_columns:
            return "''"
        fields = ", ".join(f"'{c}': {c}" for c in self.check_columns)
        return f"md5(to_json({{{fields}}})::varchar)"


@cache
def snapshots() -> tuple[Snapshot, ...]:
    entries = parse_yaml(SNAPSHOTS_FILE.read_text())["snapshots"]
    parsed().save()
    return tuple(Snapshot(e["name"], e["source"], e["key"], tuple(e["check_columns"]), e["description"].strip(),
                          bool(e.get("hash_key", False)))
                 for e in entries)


def _utc(moment: datetime | None) -> datetime | None:
    """A build time read as `built_at::timestamp` (UTC: the session's zone, db.connect), as the aware
    datetime it is. Read so rather than as TIMESTAMPTZ, whose conversion makes DuckDB import zoneinfo
    and the platform's sysconfig (10 ms of `greenery build`, for a zone that is always UTC)."""
    return None if moment is None else moment.replace(tzinfo=UTC)


def _all_columns(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """The columns (name, type) of every table of the history and of the temporary schema, by
    (catalog, table): one catalog query (information_schema, asked table by table, cost 40 ms a build)."""
    columns: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for catalog, table, column, type_ in db.rows(
            con, "select database_name, table_name, column_name, data_type from duckdb_columns() "
                 "where database_name in ('history', 'temp') order by database_name, table_name, column_index"):
        columns.setdefault((catalog, table), []).append((column, type_))
    return columns


def _ensure_schema(con: duckdb.DuckDBPyConnection, history_path: Path) -> None:
    """Create the history's tables on first use; refuse a file whose tables no longer match the snapshots."""
    catalog = _all_columns(con)
    _columns = lambda schema, table: catalog.get((schema, table), [])  # noqa: E731
    found = _columns("history", "builds")
    if not found:
        db.run(con, "create table history.builds (" + ", ".join(f"{n} {t}" for n, t in BUILDS_COLUMNS) + ")")
    elif found != BUILDS_COLUMNS:
        raise HistoryError(f"{history_path}: table builds was written by another version of greenery "
                           f"(columns {found}); {HISTORY_ADVICE}")
    for table, columns in RECORDS.items():  # added by a later version: created in an older history file
        found = _columns("history", table)
        if not found:
            db.run(con, f"create table history.{table} (" + ", ".join(f"{n} {t}" for n, t in columns) + ")")
        elif found != columns:
            raise HistoryError(f"{history_path}: table {table} was written by another version of greenery "
                               f"(columns {found}); {HISTORY_ADVICE}")
    for snap, current in ((snap, f"current_{snap.name}") for snap in snapshots()):
        expected = [*_columns("temp", current),
                    ("data_kind", "VARCHAR"), ("valid_from", "TIMESTAMP WITH TIME ZONE"),
                    ("valid_to", "TIMESTAMP WITH TIME ZONE")]
        found = _columns("history", snap.name)
        if not found:
            db.run(con, f"create table history.{snap.name} as "
                        f"select *, ''::varchar as data_kind, null::timestamptz as valid_from, "
                        f"null::timestamptz as valid_to from {current} limit 0")
        elif found != expected:
            raise HistoryError(
                f"{history_path}: table {snap.name} was written by another version of the snapshots "
                f"(columns {found}, expected {expected}); {HISTORY_ADVICE}"
            )


def _uuid_columns(con: duckdb.DuckDBPyConnection, sources: list[str]) -> list[set[str]]:
    """The UUID columns of each source, in one statement (a statement per source cost ~0.7 ms each). Described,
    not looked up in the catalog: a Spark build's sources are temporary views."""
    found: list[set[str]] = [set() for _ in sources]
    parts = [f"select {i} as source, column_name from (describe select * from {source}) where column_type = 'UUID'"
             for i, source in enumerate(sources)]
    for i, column in db.rows(con, " union all ".join(parts)) if parts else []:
        found[i].add(column)
    return found


def _stage_current(con: duckdb.DuckDBPyConnection, snap: Snapshot, table: bool, uuids: set[str]) -> str:
    """The export's rows of a snapshot with their hashes: a temporary table, computed once, when they are
    compared with the history (read twice: _apply); a temporary view when they are only inserted (the first
    build of a kind of data), which spares writing and reading every row once more (353,000 events at
    sample scale 100). `uuids`: its source's UUID columns (_uuid_columns)."""
    current = f"current_{snap.name}"
    checked = (f"{c}::varchar as {c}" if c in uuids else c for c in snap.check_columns)
    columns = ", ".join((f"{snap.key_expression} as {snap.key}", *checked))
    db.run(con, f"create or replace temp {'table' if table else 'view'} {current} as select {columns}, "
                f"{snap.row_hash} as row_hash from {snap.source}")
    return current


def _kind_recorded(con: duckdb.DuckDBPyConnection, kind: str) -> bool:
    """Whether the attached history holds any build of this kind of data (pending ones included); a
    table of builds that cannot be asked counts as yes (_ensure_schema then says what is wrong with it)."""
    if not db.rows(con, "select 1 from duckdb_tables() where database_name = 'history' and table_name = 'builds'"):
        return False
    try:
        return bool(db.scalar(con, "select count(*) from history.builds where data_kind = $kind", {"kind": kind}))
    except duckdb.Error:
        return True


def _apply(con: duckdb.DuckDBPyConnection, snap: Snapshot, current: str, params: dict, first: bool) -> None:
    """Close versions that changed or vanished, then open versions for new and changed rows.

    `first`: no build of this kind of data is recorded, so no version of it is open (a build's versions
    go only with the build, _undo) and every row is new: inserted without comparing."""
    if first:
        db.run(con, f"insert into history.{snap.name} select *, $kind, $now, null from {current}", params)
        return
    db.run(con, f"""
        update history.{snap.name} as h set valid_to = $now
        where h.valid_to is null and h.data_kind = $kind and not exists (
            select 1 from {current} as c where c.{snap.key} = h.{snap.key} and c.row_hash = h.row_hash)
    """, params)
    db.run(con, f"""
        insert into history.{snap.name}
        select c.*, $kind, $now, null
        from {current} as c
        anti join (
            select {snap.key}, row_hash from history.{snap.name} where valid_to is null and data_kind = $kind
        ) as h on c.{snap.key} = h.{snap.key} and c.row_hash = h.row_hash
    """, params)


def _compared_build(con: duckdb.DuckDBPyConnection, kind: str, since: int | None) -> tuple[int, datetime] | None:
    """The build this one is compared with: `since` if it is a published build of this kind of data,
    else the last published build of this kind; None for the first build."""
    found = db.rows(con, """
        select build_id, built_at::timestamp from history.builds
        where data_kind = $kind and state = 'published' and (build_id = $since or $since is null)
        order by build_id desc limit 1
    """, {"kind": kind, "since": since})
    if not found and since is not None:
        return _compared_build(con, kind, None)
    return (found[0][0], _utc(found[0][1])) if found else None


def _write_changes(con: duckdb.DuckDBPyConnection, params: dict) -> None:
    """This build's differences from the compared build (`compared_id`, `compared_at`; None for the first
    build), into the warehouse: each row as it was at the compared build's time against its open version.

    Only versions closed or opened after the compared build are read ("before": valid then, closed since;
    "after": open, opened since), so comparing with the previous build reads what this build changed."""
    db.run(con, """
        create or replace table history_builds as
        select build_id, built_at, data_kind, data_label, rows_read,
               coalesce(build_id = $compared_id, false) as compared
        from history.builds
        where data_kind = $kind and (state = 'published' or build_id = $build_id)
        order by build_id
    """, params)
    db.run(con, """
        create or replace table history_comparison as
        select $build_id::integer as build_id, $compared_id::integer as compared_build_id,
               $requested_id::integer as requested_build_id
    """, params)
    parts = []
    for snap in snapshots():
        parts.append(f"""
            select '{snap.name}' as snapshot, {snap.key_text(f"coalesce(after.{snap.key}, before.{snap.key})")} as key,
                   case when before.{snap.key} is null then 'new'
                        when after.{snap.key} is null then 'removed' else 'changed' end as change,
                   case when before.{snap.key} is not null then {_json(snap, 'before')} end as before,
                   case when after.{snap.key} is not null then {_json(snap, 'after')} end as after
            from (select * from history.{snap.name}
                  where data_kind = $kind and valid_to is null and valid_from > $compared_at) as after
            full join (select * from history.{snap.name}
                       where data_kind = $kind and valid_from <= $compared_at and valid_to > $compared_at) as before
                on after.{snap.key} = before.{snap.key}
            where before.row_hash is distinct from after.row_hash
        """)
    db.run(con, f"""
        create or replace table history_changes as
        select * from ({' union all '.join(parts)})
        where $compared_id is not null
    """, params)
    db.run(con, """
        create or replace table history_metrics as
        select m.build_id, b.built_at, b.data_label, m.metric, m.version, m.kind, m.value, m.numerator,
               m.denominator, m.sd, m.ci_low, m.ci_high
        from history.metrics as m
        inner join history.builds as b on m.build_id = b.build_id
        where m.data_kind = $kind and (b.state = 'published' or b.build_id = $build_id)
        order by m.build_id, m.metric
    """, params)


WATCH_COLUMNS = [("check_name", "varchar"), ("subject", "varchar"), ("status", "varchar"), ("message", "varchar"),
                 ("value", "double"), ("previous", "double"), ("threshold", "double")]


def _write_watch(con: duckdb.DuckDBPyConnection, findings: list[watch.Finding]) -> None:
    """The export watch's findings, into the warehouse (`export_watch`) for the book and the alerts (their
    rows in one statement: db.insert_rows)."""
    db.run(con, "create or replace table export_watch (" + ", ".join(f"{n} {t}" for n, t in WATCH_COLUMNS) + ")")
    db.insert_rows(con, "export_watch", [kind for _, kind in WATCH_COLUMNS],
                   [(f.check, f.subject, f.status, f.message, f.value, f.previous, f.threshold) for f in findings])


def _json(snap: Snapshot, alias: str) -> str:
    """The checked columns of one version, as JSON (an empty object for insert-only snapshots)."""
    if not snap.check_columns:
        return "'{}'::json"
    return "to_json({" + ", ".join(f"'{c}': {alias}.{c}" for c in snap.check_columns) + "})"


DAMAGE_SIGNS = ("Corrupt database", "checksum", "Could not read enough bytes")


@contextlib.contextmanager
def _damage_is_a_history_error(history_path: Path):
    """A history file damaged past its header (truncated, a flipped bit) fails only when a block is
    read: that is the history's failure (exit 4, with the advice), not an unexpected one."""
    try:
        yield
    except duckdb.Error as error:
        text = str(error).splitlines()[0] if str(error) else type(error).__name__
        if str(history_path) in text or any(sign in text for sign in DAMAGE_SIGNS):
            raise HistoryError(f"{history_path}: the history file is damaged ({text[:200]}); "
                               f"{HISTORY_ADVICE}") from None
        raise


def check(history_path: Path) -> None:
    """Refuse (HistoryError) a file that is not a history: only ours is ever attached for writing."""
    check_history(history_path, {"builds", *RECORDS, *(snap.name for snap in snapshots())})


def attach(con: duckdb.DuckDBPyConnection, history_path: Path, checked: bool = False) -> None:
    """Attach the history for writing, once `check` found it ours (unless the caller says it did, under
    the lock it still holds: another read-only open of the file costs a DuckDB instance)."""
    if not checked:
        check(history_path)
    history_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        db.run(con, f"attach $path as history (row_group_size {db.ROW_GROUP_ROWS})", {"path": str(history_path)})
    except duckdb.Error as error:
        raise HistoryError(f"{history_path}: cannot be opened as a history file ({str(error).splitlines()[0]}); "
                           f"{HISTORY_ADVICE}") from None


def _published_build_id(warehouse: str) -> int | None:
    """The build id stored in a published warehouse, or None if it cannot be read."""
    path = Path(warehouse)
    if not path.is_file():
        return None
    try:
        other = db.connect(path, read_only=True)
    except duckdb.Error:
        return None
    try:
        return db.scalar(other, "select build_id from build_info")
    except duckdb.Error:
        return None
    finally:
        other.close()


def _undo(con: duckdb.DuckDBPyConnection, build_id: int, built_at: datetime, kind: str) -> None:
    """Remove a pending build exactly: its new versions go, the versions it closed are open again."""
    params = {"now": built_at, "kind": kind}
    for table in RECORDS:
        db.run(con, f"delete from history.{table} where build_id = $id", {"id": build_id})
    for snap in snapshots():
        db.run(con, f"delete from history.{snap.name} where data_kind = $kind and valid_from = $now", params)
        db.run(con, f"update history.{snap.name} set valid_to = null where data_kind = $kind and valid_to = $now",
               params)
    db.run(con, "delete from history.builds where build_id = $id", {"id": build_id})


def reconcile(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Settle builds left pending by a run that stopped between recording and publishing (see module doc).
    Returns one line per settled build, for the log."""
    settled = []
    pending = db.rows(con, "select build_id, built_at::timestamp, data_kind, warehouse from history.builds "
                           "where state = 'pending' order by build_id desc")
    for build_id, built_at, kind, warehouse in ((i, _utc(at), k, w) for i, at, k, w in pending):
        if _published_build_id(warehouse) == build_id:
            db.run(con, "update history.builds set state = 'published' where build_id = $id", {"id": build_id})
            settled.append(f"history: build {build_id} was published before its run stopped; recorded as published")
        else:
            _undo(con, build_id, built_at, kind)
            settled.append(f"history: build {build_id} was never published (its run stopped); undone")
    return settled


def record_build(con: duckdb.DuckDBPyConnection, history_path: Path, warehouse: Path, built_at: datetime,
                 data_kind: str, data_label: str, rows_read: int, keep: Callable[[], bool] = lambda: True,
                 log: Callable[[str], None] = print, since: int | None = None,
                 export: watch.ExportFacts | None = None, measures: Callable[[], dict[str, Measure]] = dict,
                 settings: watch.WatchSettings | None = None,
                 findings: list[watch.Finding] | None = None, attached: bool = False) -> int | None:
    """Update the history from the warehouse being built (`con`) and store this build's changes in it.

    The caller holds the history's lock; `attached`: the caller attached it (`attach`) and detaches it (the
    build keeps it attached until it marks the build published: mark_published(attached=True)), else it is
    attached here and detached on the way out. Builds left pending by a stopped run are settled first.
    The new versions are written in one transaction as a `pending` build, committed only if
    `keep()` says so once they are ready (the build passed its error-level tests). Returns the
    build's id, or None when it was not kept; `mark_published` completes it once its warehouse
    is in place, `forget` undoes it if publishing fails. The changes are against build `since` when it
    is a published build of this kind of data, else against the previous build.

    With `export` (its fingerprint, rows and header columns), a kept build is also watched against the
    previous export (greenery.warehouse.watch, with `settings`; the findings are appended to `findings`
    and stored in the warehouse's `export_watch`; a finding a user's threshold made a refusal raises
    WatchRefusal and records nothing), and the export's headline metrics (`measures()`, called once the
    data tests passed) and raw tables are recorded, unless this export was recorded before."""
    observed = (export, measures, settings or watch.WatchSettings(), findings if findings is not None else [])
    with _damage_is_a_history_error(history_path):
        return _record(con, history_path, warehouse, built_at, data_kind, data_label, rows_read, keep, log,
                       since, observed, attached)


def _record(con, history_path, warehouse, built_at, data_kind, data_label, rows_read, keep, log,
            since, observed, attached) -> int | None:
    export, measures, settings, findings = observed
    if not attached:
        attach(con, history_path)
    try:
        compare = _kind_recorded(con, data_kind)  # else every row is new: staged as views, inserted once
        uuids = _uuid_columns(con, [snap.source for snap in snapshots()])
        current = {snap.name: _stage_current(con, snap, table=compare, uuids=found)
                   for snap, found in zip(snapshots(), uuids, strict=True)}
        db.run(con, "begin transaction")
        _ensure_schema(con, history_path)
        for line in reconcile(con):
            log(line)
        last = _utc(db.scalar(con, "select max(built_at)::timestamp from history.builds where data_kind = $kind",
                              {"kind": data_kind}))
        compared = _compared_build(con, data_kind, since)
        # Versions are stamped with the build time; it must move forward for valid_from/valid_to to order.
        now = built_at if last is None or built_at > last else last + timedelta(seconds=1)
        params = {"now": now, "kind": data_kind}
        build_id = db.scalar(con, "select coalesce(max(build_id), 0) + 1 from history.builds")
        db.run(con, "insert into history.builds values ($id, $now, $kind, $label, $rows, $warehouse, 'pending')",
               {"id": build_id, "now": now, "kind": data_kind, "label": data_label, "rows": rows_read,
                "warehouse": str(warehouse)})
        for snap in snapshots():
            _apply(con, snap, current[snap.name], params, first=last is None)
        if not keep():
            db.run(con, "rollback")
            return None
        if export is not None:
            findings.extend(_watch(con, export, data_kind, built_at, settings))
            watch.refuse(findings)  # a threshold the user set: nothing is recorded (the rollback below)
            _record_export(con, build_id, data_kind, export, measures)
        db.run(con, "commit")
        # DuckDB lets one transaction write to one database: the history commits first, whole, then
        # the warehouse (not yet published) receives this build's changes, in one commit of its own.
        db.run(con, "begin transaction")
        _write_changes(con, {**params, "build_id": build_id, "requested_id": since,
                             "compared_id": compared[0] if compared else None,
                             "compared_at": compared[1] if compared else now})
        _write_watch(con, findings)
        db.run(con, "commit")
        return build_id
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            db.run(con, "rollback")
        raise
    finally:
        if not attached:
            with contextlib.suppress(duckdb.Error):
                db.run(con, "detach history")


def _exports(con: duckdb.DuckDBPyConnection, kind: str) -> list[tuple[str, dict[str, int], dict[str, list[str]]]]:
    """The recorded exports of this kind of data, oldest first: fingerprint, rows and columns per table."""
    found: dict[str, tuple[dict, dict]] = {}
    for export, table, rows, columns in db.rows(con, """
        select e.export, e.table_name, e.row_count, e.columns
        from history.export_tables as e
        inner join history.builds as b on e.build_id = b.build_id
        where e.data_kind = $kind and b.state = 'published'
        order by e.build_id, e.table_name
    """, {"kind": kind}):
        counts, headers = found.setdefault(export, ({}, {}))
        counts[table] = rows
        if columns is not None:
            headers[table] = list(columns)
    return [(export, counts, headers) for export, (counts, headers) in found.items()]


def _watch(con: duckdb.DuckDBPyConnection, export: watch.ExportFacts, kind: str, built_at: datetime,
           settings: watch.WatchSettings) -> list[watch.Finding]:
    """This export against the export recorded before it (a rebuild of a recorded export is compared
    with the one before that, so it finds what its first build found)."""
    exports = _exports(con, kind)
    position = next((i for i, e in enumerate(exports) if e[0] == export.fingerprint), len(exports))
    earlier = exports[:position]
    last_event = db.scalar(con, "select max(created_at) from stg_events")
    last_event = last_event.replace(tzinfo=built_at.tzinfo) if last_event is not None else None
    found = [watch.freshness(last_event, built_at, settings)]
    if earlier:
        growth = {table: [b[1][table] / a[1][table] for a, b in itertools.pairwise(earlier)
                          if a[1].get(table) and table in b[1]] for table in export.rows}
        found += watch.volume(export.rows, earlier[-1][1], growth, settings)
        found += watch.schema(export.columns, earlier[-1][2], settings)
    return found


def _record_export(con: duckdb.DuckDBPyConnection, build_id: int, kind: str, export: watch.ExportFacts,
                   measures: Callable[[], dict[str, Measure]]) -> None:
    """The export's tables and each of its metrics, unless a published build recorded them for this export
    already (a metric whose definition changed, a new version, is recorded again)."""
    params = {"kind": kind, "export": export.fingerprint}
    known = "e.data_kind = $kind and e.export = $export and b.state = 'published'"
    if export.fingerprint is None or not db.scalar(con, "select count(*) from history.export_tables as e inner join "
                                                        f"history.builds as b on e.build_id = b.build_id where {known}",
                                                   params):
        db.insert_rows(con, "history.export_tables", [type_ for _, type_ in EXPORT_TABLES_COLUMNS],
                       [(build_id, kind, export.fingerprint, table, rows, export.columns.get(table))
                        for table, rows in export.rows.items()])
    recorded = set() if export.fingerprint is None else set(db.rows(
        con, f"select e.metric, e.version from history.metrics as e inner join history.builds as b "
             f"on e.build_id = b.build_id where {known}", params))
    rows = [(build_id, kind, export.fingerprint, m.metric, m.version, m.kind, m.value, m.numerator, m.denominator,
             m.sd, m.low, m.high) for m in measures().values() if (m.metric, m.version) not in recorded]
    if rows:
        db.insert_rows(con, "history.metrics", [type_ for _, type_ in METRICS_COLUMNS], rows)


def _settle(history_path: Path, build_id: int, undo: bool, checked: bool = False,
            con: duckdb.DuckDBPyConnection | None = None, attached: bool = False) -> None:
    con = con or db.connect()
    try:
        with _damage_is_a_history_error(history_path):
            if not attached:
                attach(con, history_path, checked)
            db.run(con, "begin transaction")
            if undo:
                row = db.rows(con, "select built_at::timestamp, data_kind from history.builds where build_id = $id "
                                   "and state = 'pending'", {"id": build_id})
                if row:
                    _undo(con, build_id, _utc(row[0][0]), row[0][1])
            else:
                db.run(con, "update history.builds set state = 'published' where build_id = $id", {"id": build_id})
            db.run(con, "commit")
    finally:
        con.close()


def mark_published(history_path: Path, build_id: int, checked: bool = False,
                   con: duckdb.DuckDBPyConnection | None = None, attached: bool = False) -> None:
    """The build's warehouse is in place: the build becomes the one the next build compares with.
    `checked`: the caller recorded the build in this file under the lock it still holds (nothing but
    this run wrote it since it was checked). `con`: an in-memory connection (db.connect()) the caller
    opened beforehand, used and closed here (closing it writes the history into its file); else one is
    opened. `attached`: the history is attached to `con` still, as record_build(attached=True) left it."""
    _settle(history_path, build_id, undo=False, checked=checked, con=con, attached=attached)


def compared_builds(warehouse: Path) -> set[int]:
    """The builds whose book a warehouse's "what changed" tables suit: its own, the one it was compared
    with and the one it was asked to compare with (empty when it cannot be read)."""
    if not warehouse.is_file():
        return set()
    try:
        con = db.connect(warehouse, read_only=True)
    except duckdb.Error:
        return set()
    try:
        return comparison_ids(con)
    finally:
        con.close()


def comparison_ids(con: duckdb.DuckDBPyConnection) -> set[int]:
    """compared_builds, from a connection to the warehouse already open."""
    try:
        return {b for b in db.rows(con, "select build_id, compared_build_id, requested_build_id "
                                        "from history_comparison")[0] if b is not None}
    except (duckdb.Error, IndexError):
        return set()


def forget(history_path: Path, build_id: int) -> None:
    """Publishing failed: undo the pending build (a later `reconcile` would do the same)."""
    _settle(history_path, build_id, undo=True)
