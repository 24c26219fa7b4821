"""CSV records counted and measured by a pass of our own, independent of DuckDB's reader.

DuckDB's CSV reader drops a record longer than its buffer without a word (a 100 MB value on line 2
of events.csv: 3,552 events loaded instead of 3,553, exit 0). So the loader does not take the
reader's row count on trust: it counts the records itself, refuses any longer than the limit it
gives the reader, and compares the two counts (load.py).

A record ends at a line feed outside quotes (`"` toggles quoting; an escaped quote `""` toggles it
twice), so a quoted value may span lines; CRLF and LF both end one; a last record without a final
line break still counts; a blank line is no record (DuckDB skips blank lines too).

The pass is streaming and runs at C speed: the file is read in chunks, numpy finds the line feeds,
and the quote state is a running parity of quote bytes, computed only for chunks that hold a quote
or start inside one (events.csv, most of the export, has no quotes at all). A file of at most
SMALL_FILE_BYTES (the real export's largest is under 1 MB) is counted by a loop over its lines
instead, with the same rules: importing numpy costs about 0.1 s, more than `greenery build` spends
loading such an export, and the build never needs numpy otherwise. The chunks are read into one
buffer, reused (a fresh 16 MB object per chunk, each page faulted in, doubled the count's CPU).

`greenery build` reads each export file once for both of its readers: the fingerprint's sha256
(greenery.outputs.fingerprint) is fed the very bytes counted here (ExportScan), instead of a
second pass over the file beside DuckDB's read (at scale 1000, 1 GB read twice).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path

from greenery.outputs import fingerprint
from greenery.outputs.fingerprint import Hasher

CHUNK_BYTES = 4 << 20  # one buffer, reused; of 1, 4 and 16 MB the fastest with a sha256 fed the same bytes
SMALL_FILE_BYTES = 4 << 20  # up to this size: counted in Python (a few ms), numpy not imported
LF, CR, QUOTE = 0x0A, 0x0D, 0x22


@dataclass(frozen=True)
class Records:
    count: int  # records in the file, the header included
    longest: int  # bytes of the longest record, without its line ending (as DuckDB's max_line_size counts)
    longest_at: int  # byte offset where the longest record starts
    too_long_at: int | None  # byte offset of the first record longer than the limit, if any
    too_long_bytes: int  # its length
    identity: tuple[int, ...] = ()  # the file's identity (file_identity) before it was counted


def file_identity(path: Path) -> tuple[int, ...]:
    """What the file system records of a file's content (the digest cache's identity): any write changes
    its size or its times."""
    return tuple(fingerprint.file_identity(path.stat()))


def count_records(path: Path, limit: int, hasher: Hasher | None = None) -> Records:
    """The records of the CSV file at `path`, and the first one longer than `limit` bytes; `hasher`
    (a hashlib object), when given, is fed every byte of the file in the same read."""
    identity = file_identity(path)
    if identity[2] <= SMALL_FILE_BYTES:
        with path.open("rb") as handle:  # read once, whole: it is small
            data = handle.read(SMALL_FILE_BYTES + 1)
        if len(data) <= SMALL_FILE_BYTES:  # else it grew since: streamed like any large file
            if hasher is not None:
                hasher.update(data)
            return replace(_count_lines(data, limit), identity=identity)
    return replace(_count_chunks(path, limit, hasher), identity=identity)


def _count_lines(data: bytes, limit: int) -> Records:
    """count_records for a file read whole, by a loop over its lines: a line ends the record unless
    the quotes so far are odd; the last piece, after the last line feed, is the record without one."""
    count = longest = longest_at = too_long_bytes = 0
    too_long_at: int | None = None
    start = position = 0  # where the current record starts, and the current line
    in_quotes = False
    lines = data.split(b"\n")
    last = len(lines) - 1
    for index, line in enumerate(lines):
        end = position + len(line)  # the offset of this line's line feed (or of the file's end)
        position = end + 1
        if line.count(b'"') & 1:
            in_quotes = not in_quotes
        if in_quotes and index != last:
            continue
        size = end - start
        if size and data[end - 1] == CR:  # CRLF: the CR belongs to the line ending
            size -= 1
        if size:  # a blank line is no record
            count += 1
            if size > longest:
                longest, longest_at = size, start
            if too_long_at is None and size > limit:
                too_long_at, too_long_bytes = start, size
        start = position
    return Records(count, longest, longest_at, too_long_at, too_long_bytes)


def _count_chunks(path: Path, limit: int, hasher: Hasher | None = None) -> Records:
    """count_records for a file of any size: streamed in chunks, line feeds found by numpy."""
    import numpy as np  # only for files above SMALL_FILE_BYTES: see the module's doc

    count = longest = longest_at = too_long_bytes = 0
    too_long_at: int | None = None
    in_quotes = False  # the state at the start of the chunk
    last_end = -1  # offset of the last record-ending line feed (-1: before the file)
    before = 0  # the byte before the chunk (a CR there may end the first line of the chunk)
    offset = 0  # offset of the chunk in the file
    buffer = bytearray(CHUNK_BYTES)  # one buffer and one array of comparisons for every chunk
    whole, is_feed = np.frombuffer(buffer, dtype=np.uint8), np.empty(CHUNK_BYTES, dtype=bool)
    with path.open("rb", buffering=0) as handle:
        while size := handle.readinto(buffer):
            if hasher is not None:
                hasher.update(memoryview(buffer)[:size])
            data = whole[:size]
            feeds = np.flatnonzero(np.equal(data, LF, out=is_feed[:size]))
            if in_quotes or buffer.find(b'"', 0, size) >= 0:
                # Quotes before each byte, mod 2 (uint8 wraps at 256, which keeps the parity).
                parity = np.cumsum(data == QUOTE, dtype=np.uint8) & 1
                outside = parity[feeds] == (1 if in_quotes else 0)
                feeds = feeds[outside]
                in_quotes = bool(parity[-1]) != in_quotes
            ends = feeds + offset  # record-ending line feeds, as file offsets
            starts = np.concatenate(([last_end + 1], ends[:-1] + 1))
            sizes = ends - starts
            previous = np.where(feeds > 0, data[feeds - 1], before)  # the byte before each line feed
            sizes = sizes - ((previous == CR) & (sizes > 0))
            count += int(np.count_nonzero(sizes))
            if sizes.size:
                at = int(np.argmax(sizes))
                if sizes[at] > longest:
                    longest, longest_at = int(sizes[at]), int(starts[at])
                if too_long_at is None and sizes[at] > limit:
                    first = int(np.flatnonzero(sizes > limit)[0])
                    too_long_at, too_long_bytes = int(starts[first]), int(sizes[first])
                last_end = int(ends[-1])
            before = int(data[-1])
            offset += size
    tail = offset - last_end - 1 - (1 if before == CR and offset - last_end - 1 > 0 else 0)
    if tail > 0:  # a last record without a final line break
        count += 1
        if tail > longest:
            longest, longest_at = tail, last_end + 1
        if too_long_at is None and tail > limit:
            too_long_at, too_long_bytes = last_end + 1, tail
    return Records(count, longest, longest_at, too_long_at, too_long_bytes)


def physical_line(path: Path, byte_offset: int) -> int:
    """The line an editor shows for a byte offset (DuckDB counts rows, which differ after a quoted
    newline). Streams: the offset may lie a gigabyte into the file."""
    lines, left = 1, byte_offset
    with path.open("rb") as handle:
        while left > 0 and (chunk := handle.read(min(left, CHUNK_BYTES))):
            lines += chunk.count(b"\n")
            left -= len(chunk)
    return lines


def mixed_line_ending(path: Path) -> tuple[int, str] | None:
    """The first line (as an editor numbers them) whose record ends otherwise than the header's, and
    why, or None. DuckDB's reader cannot read a CSV file whose records end both with CRLF and with a
    line feed alone ("invalid state", no line): only on the way to that error. A line break inside
    quotes is part of a value, never an ending."""
    with path.open("rb") as handle:
        crlf, in_quotes = None, False
        for number, line in enumerate(handle, start=1):
            if line.count(b'"') & 1:
                in_quotes = not in_quotes
            if in_quotes or not line.endswith(b"\n"):
                continue
            ends_crlf = line.endswith(b"\r\n")
            if crlf is None:
                crlf = ends_crlf
            elif ends_crlf != crlf:
                alone, other = ("CR LF", "a line feed alone") if ends_crlf else ("a line feed alone", "CR LF")
                return number, (f"this line ends with {alone}, the lines before it with {other}: save the file "
                                "with one kind of line ending")
    return None


class ExportScan:
    """One build's reads of an export's files, each file read once for both of its readers: the
    fingerprint's sha256 (`export`: fingerprint.export reading the files through `read`) and the
    loader's record count (`records`); whichever asks for a file first reads it, the other takes
    what that read found.

    `greenery build` begins the fingerprint (`fingerprinted`) before the load: the fingerprint first
    names the files it will read (those whose digest is not cached), and the load waits for that
    (DECLARE_DEADLINE_S at most), then for the counts of those files, counting the others itself. The
    export's fingerprint is kept: the history records it, and asking fingerprint.export again would
    read again every file written less than fingerprint.SETTLED_NS before it was hashed (a freshly
    generated sample)."""

    DECLARE_DEADLINE_S = 10.0  # the fingerprint names its files after a stat of each: milliseconds

    def __init__(self, limit: Callable[[], int], fingerprinted: bool = False):
        self._limit = limit  # config.max_record_bytes, asked when a count is first needed (it may refuse)
        self._changes = threading.Condition()
        self._undeclared = fingerprinted  # the fingerprint has yet to name the files it reads
        self._counts: dict[Path, Future] = {}  # each file's Records, from the read that began first
        self._fingerprint_counts: set[Path] = set()  # the files whose count the fingerprint's read gives
        self._exports: dict[Path, str] = {}

    def _declare(self, paths: list[Path]) -> None:
        with self._changes:
            for path in map(Path.resolve, paths):
                if path not in self._counts:
                    self._counts[path] = Future()
                    self._fingerprint_counts.add(path)
            self._undeclared = False
            self._changes.notify_all()

    def read(self, path: Path, hasher: Hasher) -> None:
        """Feed `hasher` the bytes of the file at `path`, counting its records in the same read unless
        the load has begun counting them."""
        resolved = path.resolve()
        with self._changes:
            if resolved not in self._counts:
                self._counts[resolved] = Future()
                self._fingerprint_counts.add(resolved)
            counted = self._counts[resolved]
            mine = resolved in self._fingerprint_counts and not counted.done()
        if not mine:
            fingerprint.hash_file(path, hasher)
            return
        try:
            counted.set_result(count_records(path, self._limit(), hasher))
        except BaseException as error:
            counted.set_exception(error)  # the load counts again, and meets the error itself
            raise

    def records(self, path: Path) -> Records:
        """count_records of the file at `path`: the fingerprint's count when its read gives one (waited
        for: that read is under way), else a count of the load's own."""
        resolved = path.resolve()
        with self._changes:
            self._changes.wait_for(lambda: not self._undeclared, timeout=self.DECLARE_DEADLINE_S)
            counted = self._counts.get(resolved)
            mine = counted is None
            if mine:
                counted = self._counts[resolved] = Future()
        if not mine:
            if counted.exception() is None:
                return counted.result()
            return count_records(path, self._limit())  # the other read failed: this one meets why
        try:
            counted.set_result(count_records(path, self._limit()))
        except BaseException as error:
            counted.set_exception(error)
            raise
        return counted.result()

    def export(self, data_dir: Path) -> str:
        """fingerprint.export of `data_dir`, its files read by `read`; computed once."""
        with self._changes:
            known = self._exports.get(data_dir)
        if known is not None:
            return known
        try:
            known = fingerprint.export(data_dir, read=self.read, reading=self._declare)
        finally:
            with self._changes:
                self._undeclared = False
                for path in self._fingerprint_counts:  # a read that never came (an error on the way)
                    if not self._counts[path].done():
                        self._counts[path].set_exception(RuntimeError("the fingerprint stopped before this file"))
                self._changes.notify_all()
        with self._changes:
            self._exports[data_dir] = known
        return known
