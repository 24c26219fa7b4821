"""The export watch: volume, freshness and schema of each new export against the previous one.

Three checks, each a warning with its numbers and never a refusal unless the user set a threshold
that makes it one (WatchSettings; `greenery report --refuse-stale-after` and friends):
- volume: rows per raw table against the previous export of the same kind; a table that lost more
  than `shrink_tolerance` of its rows, or grew more than `growth_factor` times its usual growth (the
  median of the earlier exports' growth, 1 when there is none), is flagged;
- freshness: the age of the export's last event when the build ran; older than `stale_after_hours`
  is a stale export (a warning on the book's first page);
- schema: columns added to or removed from a raw file's header (columns beyond the contract are
  ignored by the loader, so they can come and go without a refusal).
The functions here take plain numbers and return findings (tests/test_trends.py works them by hand);
greenery.warehouse.history feeds them from the history and stores the findings in the warehouse.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime

from greenery.contract import TABLES_BY_NAME
from greenery.errors import UsageError, WatchRefusal

STALE_AFTER_HOURS = 48.0  # a daily export covering about two days: older than that, a day was missed
SHRINK_TOLERANCE = 0.10  # a table may lose up to 10 % of its rows before it is flagged (windowed exports vary)
GROWTH_FACTOR = 3.0  # flagged when it grew more than 3 times its usual growth


@dataclass(frozen=True)
class ExportFacts:
    """What the watch and the history know of one export."""

    fingerprint: str | None  # its files' content (greenery.outputs.fingerprint.export); None: not a local folder
    rows: dict[str, int]  # rows read per raw table
    columns: dict[str, list[str]]  # each raw file's header, as delivered


@dataclass(frozen=True)
class WatchSettings:
    stale_after_hours: float = STALE_AFTER_HOURS
    shrink_tolerance: float = SHRINK_TOLERANCE
    growth_factor: float = GROWTH_FACTOR
    refuse_stale_after_hours: float | None = None  # set: an older export is refused (exit 2)
    refuse_shrink: float | None = None  # set: a table that lost more than this share of its rows is refused
    refuse_schema_change: bool = False  # set: a column added or removed is refused

    def __post_init__(self):
        for name in ("stale_after_hours", "refuse_stale_after_hours"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise UsageError(f"{name.replace('_', ' ')} must be above 0 hours, got {value}")
        for name in ("shrink_tolerance", "refuse_shrink"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < 1:
                raise UsageError(f"{name.replace('_', ' ')} must be a share from 0 to below 1, got {value}")
        if not self.growth_factor >= 1:
            raise UsageError(f"growth factor must be at least 1, got {self.growth_factor}")


@dataclass(frozen=True)
class Finding:
    check: str  # "volume", "freshness" or "schema"
    subject: str  # the raw table, or "export"
    status: str  # "ok", "warning" or "refused"
    message: str  # one line with its numbers; table and column names, counts and ages only
    value: float | None = None  # rows now, the age in hours, columns added
    previous: float | None = None  # rows in the previous export; columns removed
    threshold: float | None = None


def volume(rows: dict[str, int], previous: dict[str, int], growth: dict[str, list[float]],
           settings: WatchSettings) -> list[Finding]:
    """Tables that shrank beyond the tolerance or grew far beyond their usual growth. `growth` holds,
    per table, the ratios (rows / previous rows) between earlier consecutive exports."""
    found = []
    for table, now in rows.items():
        before = previous.get(table)
        if before is None:
            continue
        if before and now < before * (1 - settings.shrink_tolerance):
            lost = 1 - now / before
            refused = settings.refuse_shrink is not None and lost > settings.refuse_shrink
            found.append(Finding("volume", table, "refused" if refused else "warning",
                                 f"{table}: {now:,} rows, {lost:.1%} fewer than the previous export's {before:,}",
                                 now, before, settings.shrink_tolerance))
            continue
        usual = max(1.0, statistics.median(growth[table])) if growth.get(table) else 1.0
        limit = usual * settings.growth_factor
        if before and now > before * limit:
            found.append(Finding("volume", table, "warning",
                                 f"{table}: {now:,} rows, {now / before:.1f} times the previous export's "
                                 f"{before:,} (usual growth {usual:.2f} times; flagged above {limit:.2f})",
                                 now, before, limit))
        elif before == 0 and now > 0:
            found.append(Finding("volume", table, "warning",
                                 f"{table}: {now:,} rows, where the previous export had none", now, 0, None))
    return found


def freshness(last_event_at: datetime | None, built_at: datetime, settings: WatchSettings) -> Finding:
    """The export's age at build time: the hours from its last event to the build."""
    if last_event_at is None:
        return Finding("freshness", "export", "warning", "the export holds no events: its age is unknown")
    hours = (built_at - last_event_at).total_seconds() / 3600
    shown = f"{hours:,.1f} hours" if hours < 72 else f"{hours / 24:,.0f} days"
    refused = settings.refuse_stale_after_hours is not None and hours > settings.refuse_stale_after_hours
    if refused or hours > settings.stale_after_hours:
        limit = settings.refuse_stale_after_hours if refused else settings.stale_after_hours
        return Finding("freshness", "export", "refused" if refused else "warning",
                       f"stale export: its last event was {shown} old when the build ran "
                       f"(the limit is {limit:g} hours)", hours, None, limit)
    return Finding("freshness", "export", "ok",
                   f"the export's last event was {shown} old when the build ran (the limit is "
                   f"{settings.stale_after_hours:g} hours)", hours, None, settings.stale_after_hours)


def _shown_column(table: str, name: str, header: list[str], where: str = "") -> str:
    """A column as a message may name it: by its name when the contract declares it (our own words),
    else by its place in the header. A header is data: a file that lost its header line has a row of
    names, emails and phone numbers there, and a message is published, sent and logged."""
    declared = TABLES_BY_NAME.get(table)
    if declared is not None and name in declared.column_names:
        return name
    return f"column {header.index(name) + 1}{' ' + where if where else ''}"


def schema(columns: dict[str, list[str]], previous: dict[str, list[str]], settings: WatchSettings) -> list[Finding]:
    """Columns added to or removed from each raw file's header since the previous export."""
    found = []
    for table, now in columns.items():
        before = previous.get(table)
        if before is None:
            continue
        added = [_shown_column(table, c, now) for c in now if c not in before]
        removed = [_shown_column(table, c, before, "of the previous header") for c in before if c not in now]
        if not added and not removed:
            continue
        parts = ([f"{len(added)} column(s) added ({', '.join(added)})"] if added else []) + (
            [f"{len(removed)} removed ({', '.join(removed)})"] if removed else [])
        found.append(Finding("schema", table, "refused" if settings.refuse_schema_change else "warning",
                             f"{table}: " + " and ".join(parts) + " since the previous export",
                             len(added), len(removed)))
    return found


def refuse(findings: list[Finding]) -> None:
    """Raise WatchRefusal (exit 2) naming the first finding a user's threshold made a refusal."""
    refused = [f for f in findings if f.status == "refused"]
    if refused:
        more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
        raise WatchRefusal(f"export refused by the watch: {refused[0].message}{more}")  # status.WATCH_REFUSAL
