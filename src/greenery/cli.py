"""The `greenery` command: build the warehouse, generate a sample, publish the report.

This module alone turns outcomes into exit codes (greenery.errors.ExitCode, documented in
docs/operating.md) and prints them: one line on stderr for every failure, a traceback only with --debug.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
import traceback
from pathlib import Path

from greenery import config, errors
from greenery.errors import DataTestFailure, ExitCode, GreeneryError, Interrupted, UsageError, unexpected_reason
from greenery.warehouse.engines import add_engine_arguments, add_watch_arguments

DATA_HELP = "the export's folder (default: $GREENERY_DATA_DIR, else data/raw/, else a generated sample)"
EXIT_CODES = ("Exit codes: 0 ok, 1 data test failed, 2 bad input or argument, 3 busy, 4 report failed, "
              "5 unexpected error, 130/143 interrupted.")


def _print_failure(failure: DataTestFailure, what_is_kept: str) -> None:
    from greenery.warehouse.build import summary_lines

    for line in summary_lines(failure.result):
        print(line)
    print(f"Build stopped: error-level data tests failed; {what_is_kept}", file=sys.stderr)


def cmd_build(args: argparse.Namespace) -> int:
    from greenery import db

    config.check_duckdb_settings()
    # The DuckDB instance the build runs in, opened on a thread while the imports and checks below run:
    # it costs ~25 ms of wall time, Python's lock left meanwhile. Closed here if the build never takes it.
    # Opened with a small export's threads (config.build_threads): the build sets more for a larger one.
    instance = db.connect_beside(config.build_threads(0)) if args.engine == "duckdb" else None
    try:
        return _build(args, instance)
    finally:
        db.close_when_open(instance)


def _build(args: argparse.Namespace, instance) -> int:
    from greenery.outputs.locking import exclusive
    from greenery.outputs.ownership import check_outputs
    from greenery.warehouse.build import summary_lines
    from greenery.warehouse.engines import choose_source, engine_build

    warehouse = config.absolute(config.warehouse_path(args.warehouse))
    check_outputs(warehouse, config.absolute(config.history_path()), config.absolute(config.digest_cache_path()))
    source = choose_source(args)  # before the lock: a refused export leaves nothing behind; Spark may read a URI
    print(errors.one_line(f"Data: {source.path} ({source.label}; chosen by {source.chosen_by})"))
    existed = warehouse.exists()
    with exclusive(warehouse, "the warehouse"):
        try:
            result = engine_build(args, instance)(source, warehouse, built_at=config.pinned_build_time())
        except DataTestFailure as failure:
            _print_failure(failure, f"the previous warehouse at {warehouse} is kept." if existed
                           else "no warehouse was written.")
            return ExitCode.DATA_TEST_FAILED
    few = result.measured_exports is not None and result.measured_exports < 2  # nothing to compare yet
    moved = []
    if not few:  # imported only then: 3 ms of a first build's 0.3 s
        from greenery.publisher.status import moved_lines  # not publisher.run: a build never loads the book's libraries

        moved = moved_lines(warehouse)
    for line in summary_lines(result) + moved:
        print(line)
    print(errors.one_line(f"Warehouse: {warehouse} (built in {result.seconds:.2f} s)"))
    return ExitCode.OK


def cmd_sample(args: argparse.Namespace) -> int:
    from greenery.sample import generate, generate_series, parse_plant

    if args.plant and not args.series:
        print("error: --plant needs --series N (a change is planted in a series of exports)", file=sys.stderr)
        return ExitCode.BAD_INPUT
    if args.series:
        plant = parse_plant(args.plant, args.series) if args.plant else None
        folders = generate_series(Path(args.out), args.series, scale=args.scale, seed=args.seed, plant=plant)
        orders = ", ".join(f"{rows['orders']:,}" for rows in folders.values())
        print(errors.one_line(f"Wrote a series of {len(folders)} daily exports (seed {args.seed}, scale {args.scale:g}"
                              + (f", planted {plant}" if plant else "") + f") to {args.out}/day-01 ... "
                              f"{next(reversed(folders))}; orders per day: {orders}"))
        return ExitCode.OK
    rows = generate(Path(args.out), scale=args.scale, seed=args.seed)
    counts = ", ".join(f"{name} {n:,}" for name, n in rows.items())
    print(errors.one_line(f"Wrote a sample export (seed {args.seed}, scale {args.scale:g}) to {args.out}: {counts}"))
    return ExitCode.OK


def cmd_export_dbt(args: argparse.Namespace) -> int:
    from greenery.outputs.ownership import check_plain_path, check_warehouse_source
    from greenery.warehouse.dbt_project import DBT_DATABASE, export
    from greenery.warehouse.manifest import load_manifest

    check_plain_path(Path(args.dir), "export-dbt")  # as given: `x/..` is another folder than it seems to be
    warehouse = config.warehouse_path(args.warehouse).absolute()
    check_warehouse_source(warehouse)
    manifest = load_manifest()
    project = Path(args.dir).absolute()
    files = export(project, warehouse, manifest)
    singular = sum(t.kind == "assertion" for t in manifest.tests)
    lines = [f"Wrote a dbt project to {project}: {len(manifest.models)} models, {len(manifest.tests) - singular} "
             f"generic and {singular} singular data tests ({len(files)} files)",
             f"Sources: the raw schema of {warehouse}, attached read-only; dbt builds into {project / DBT_DATABASE}"]
    if not warehouse.is_file():
        lines.append(f"Note: {warehouse} does not exist yet: run `greenery build --warehouse {warehouse}` before dbt")
    lines.append(f"Run it: cd {project} && dbt build --profiles-dir .")
    for line in lines:
        print(errors.one_line(line))
    return ExitCode.OK


def cmd_report(args: argparse.Namespace) -> int:
    from greenery.publisher.notify import run_recorded
    from greenery.publisher.run import publish
    from greenery.warehouse.engines import engine_options, watch_settings

    config.check_duckdb_settings()  # a wrong setting is an argument error: nothing is recorded
    watch = watch_settings(args)  # so is a bad threshold

    def run() -> int:
        publish(data_dir=args.data_dir, out=args.out, warehouse=args.warehouse, analysis=args.param,
                timeout=args.chapter_timeout, built_at=config.pinned_build_time(), watch=watch,
                **engine_options(args))
        return ExitCode.OK

    try:
        return run_recorded(run, out=args.out, warehouse=args.warehouse, data_dir=args.data_dir,
                            notify_url=args.notify)
    except DataTestFailure as failure:
        _print_failure(failure, "the warehouse and the book are unchanged.")
        print(errors.one_line(f"Not published: the book at {Path(args.out or config.HTML_DIR)} is unchanged."))
        return ExitCode.DATA_TEST_FAILED


def _path(text: str) -> str:
    """A path option: an empty one is a mistake (a variable that was not set), never the default."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the path is empty: name it, or leave the option out")
    return text


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {text!r}")
    return value


def _days(text: str) -> int:
    value = _seed(text)
    if not 1 <= value <= 365:
        raise argparse.ArgumentTypeError(f"expected 1 to 365 days, got {text!r}")
    return value


def _scale(text: str) -> float:
    value = _positive_finite(text)
    if value > config.SAMPLE_MAX_SCALE:
        raise argparse.ArgumentTypeError(f"expected at most {config.SAMPLE_MAX_SCALE:,}, got {text!r}")
    return value


def _positive_finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number above 0, got {text!r}")
    return value


def _chapter_timeout(text: str) -> float:
    value = _positive_finite(text)
    if value > config.CHAPTER_TIMEOUT_MAX:
        raise argparse.ArgumentTypeError(f"expected at most {config.CHAPTER_TIMEOUT_MAX:,} (a week), got {text!r}")
    return value


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="greenery", description=__doc__.split("\n\n")[0], epilog=EXIT_CODES)
    top.add_argument("--debug", action="store_true", help="on an unexpected error, print the traceback")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    build = commands.add_parser("build", help="load the export, build all models, run all data tests",
                                epilog=EXIT_CODES)
    build.add_argument("--data-dir", help=DATA_HELP)
    build.add_argument("--warehouse", type=_path, help=f"the DuckDB file to write (default: {config.WAREHOUSE_PATH}); "
                                           "only a missing file or a warehouse greenery built")
    add_engine_arguments(build)
    add_watch_arguments(build)
    build.set_defaults(run=cmd_build)

    sample = commands.add_parser("sample", help="write a Greenery-shaped sample export", epilog=EXIT_CODES)
    sample.add_argument("--out", required=True, type=_path,
                        help="folder to write the seven CSV files into: missing, empty, or a sample greenery made")
    sample.add_argument("--scale", type=_scale, default=config.SAMPLE_SCALE,
                        help=f"1 is about the real export's size (default 1, at most {config.SAMPLE_MAX_SCALE:,})")
    sample.add_argument("--seed", type=_seed, default=config.SAMPLE_SEED, help="same seed, same bytes (default 42)")
    sample.add_argument("--series", type=_days, metavar="N",
                        help="write N daily exports of the same shop into OUT/day-01 ... (each day's own orders)")
    sample.add_argument("--plant", metavar="CHANGE", help="with --series: plant a change, repeat-drop:SIZE@DAY "
                        "(the chance of a second order SIZE lower from DAY on, e.g. repeat-drop:0.3@5)")
    sample.set_defaults(run=cmd_sample)

    export_dbt = commands.add_parser("export-dbt", help="write the models and data tests as a dbt project "
                                     "(dbt-duckdb) reading the raw tables of a greenery warehouse", epilog=EXIT_CODES)
    export_dbt.add_argument("dir", type=_path, metavar="DIR",
                            help="the project folder: missing, empty, or a dbt project greenery exported")
    export_dbt.add_argument("--warehouse", type=_path,
                            help=f"the warehouse whose raw schema the project reads (default: $GREENERY_WAREHOUSE, "
                                 f"else {config.WAREHOUSE_PATH}); missing (build it next) or one greenery built")
    export_dbt.set_defaults(run=cmd_export_dbt)

    report = commands.add_parser("report", help="build the warehouse, run the notebooks, publish the book",
                                 epilog=EXIT_CODES)
    report.add_argument("--data-dir", help=DATA_HELP)
    report.add_argument("--out", type=_path, help=f"where the book is published (default: {config.HTML_DIR}); only a "
                                      "missing or empty folder, or a book greenery published")
    report.add_argument("--warehouse", type=_path, help=f"the DuckDB file to write (default: {config.WAREHOUSE_PATH})")
    report.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="set a chapter parameter (repeatable), e.g. --param follow_up_hours=24")
    report.add_argument("--chapter-timeout", type=_chapter_timeout, default=config.CHAPTER_TIMEOUT,
                        metavar="SECONDS", help=f"stop a chapter that runs longer (default {config.CHAPTER_TIMEOUT}, "
                        f"at most {config.CHAPTER_TIMEOUT_MAX:,})")
    report.add_argument("--notify", metavar="URL", help="POST a short JSON message (Slack-compatible `text`) "
                        "to this webhook when the build is refused, warns or fails")
    add_engine_arguments(report)
    add_watch_arguments(report)
    report.set_defaults(run=cmd_report)
    return top


PATH_OPTIONS = ("data_dir", "warehouse", "out", "marts_dir", "dir")  # `dir`: export-dbt's DIR
PATH_VARIABLES = ("GREENERY_HISTORY", "GREENERY_DIGEST_CACHE", "GREENERY_PARSE_CACHE")  # written by builds


def _refuse_undecodable_paths(args: argparse.Namespace) -> None:
    """A path whose name holds bytes that are not UTF-8 cannot be passed on (DuckDB, Sphinx, JSON):
    refused with one line (exit 2), the bytes shown as escapes."""
    given = [("export-dbt" if name == "dir" else f"--{name.replace('_', '-')}", getattr(args, name, None))
             for name in PATH_OPTIONS]
    given += [(f"${name}", os.environ.get(name)) for name in PATH_VARIABLES]
    for option, value in given:
        if not isinstance(value, str):
            continue
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            shown = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            raise UsageError(f"{option} {shown}: the path holds bytes that are not UTF-8; rename it, "
                             "or name another path") from None


def _on_signal(signum, frame):
    name = signal.Signals(signum).name
    stop = Interrupted(name, ExitCode.TERMINATED if signum == signal.SIGTERM else ExitCode.INTERRUPTED)
    errors.record_signal(stop)  # kept: DuckDB turns what this raises during a query into its own RuntimeError
    if signum == signal.SIGINT:
        raise KeyboardInterrupt  # as Python's own handler: libraries (and the chapters' runner) expect it
    raise stop


def _never_fail_on_encoding() -> None:
    """What the terminal cannot show (a non-ASCII key under PYTHONIOENCODING=ascii, say) is written
    as an escape: printing a line must never fail a run, least of all after it published."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError, OSError):
            stream.reconfigure(errors="backslashreplace")


class _Visible:
    """A terminal stream through which no control character passes raw (greenery.chapter_kit.escape.terminal):
    a value from the data in a message (an ESC in a promo name) is shown, never obeyed.

    A reader that goes away (`greenery build | head -1`) stops the messages, never the run: what it
    does and its exit status do not depend on who reads its log. The rest goes to /dev/null."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> int:
        from greenery.chapter_kit.escape import terminal

        try:
            return self.stream.write(terminal(text))
        except BrokenPipeError:
            self._reader_gone()
            return len(text)

    def flush(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            self._reader_gone()

    def _reader_gone(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())  # also for the interpreter's own last flush
            os.close(devnull)

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


def main(argv: list[str] | None = None) -> int:
    _never_fail_on_encoding()
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Visible(sys.stdout), _Visible(sys.stderr)
    try:
        return _main(argv)
    finally:
        sys.stdout, sys.stderr = streams


def _main(argv: list[str] | None) -> int:
    args = parser().parse_args(argv)  # bad arguments: usage and exit 2 (argparse)
    # SIGINT only where Python's own handler is (a shell that runs us in the background ignores it)
    previous = {number: signal.signal(number, _on_signal) for number in (signal.SIGTERM, signal.SIGINT)
                if number == signal.SIGTERM or signal.getsignal(number) is signal.default_int_handler}
    errors.record_signal(None)
    try:
        _refuse_undecodable_paths(args)
        return int(args.run(args))
    except GreeneryError as error:
        if errors.received_signal():  # a library made the signal its own error
            return _stopped(errors.received_signal())
        print(f"error: {error}", file=sys.stderr)
        return int(error.exit_code)
    except (Interrupted, KeyboardInterrupt) as stop:
        return _stopped(errors.received_signal() or stop)
    except Exception as error:  # a full disk, a bug: one line, and the traceback on request
        if errors.received_signal():  # DuckDB turns a signal during a query into RuntimeError("Query interrupted")
            return _stopped(errors.received_signal())
        if args.debug:
            traceback.print_exc()
        print(f"error: unexpected {unexpected_reason(error)} (run with --debug for the traceback)", file=sys.stderr)
        return int(ExitCode.UNEXPECTED)
    finally:
        errors.record_signal(None)  # this command's, not the next one's (tests run several in one process)
        for number, handler in previous.items():
            signal.signal(number, handler)


def _stopped(stop: BaseException) -> int:
    name, code = (stop.signal_name, stop.exit_code) if isinstance(stop, Interrupted) else (
        "SIGINT", ExitCode.INTERRUPTED)
    print(f"stopped by {name}: child processes and temporary files removed; the last good outputs are kept",
          file=sys.stderr)
    return int(code)
