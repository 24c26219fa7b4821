"""The `greenery` command: build the warehouse, generate a sample, publish the report.

Exit codes (see README): 0 success, 1 an error-level data test failed, 2 unusable input,
3 another run holds the same output, 4 a notebook or the book render failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from greenery import config
from greenery.engines import add_engine_arguments
from greenery.errors import DataTestFailure, ExitCode, GreeneryError

DATA_HELP = "the export's folder (default: $GREENERY_DATA_DIR, else data/raw/, else a generated sample)"


def print_build(result, out=print) -> None:
    loaded = result.loaded
    counts = ", ".join(f"{name} {rows:,}" for name, rows in loaded.rows.items())
    out(f"Read {loaded.total_rows:,} rows from {len(loaded.rows)} files: {counts}")
    for warning in loaded.warnings:
        out(f"  warning: {warning}")
    from greenery.manifest import load_manifest

    models = load_manifest().models
    out(f"Models ({len(result.model_rows)}), in build order:")
    for name, rows in result.model_rows.items():
        out(f"  {models[name].folder + '/' + name:<48} " + (f"{rows:>10,} rows" if rows is not None else "      view"))
    out(f"Data tests ({len(result.tests)}), passed first:")
    for test in sorted(result.tests, key=lambda t: (t.status != "pass", t.status == "fail")):
        if test.status == "pass":
            out(f"  PASS {test.name} ({test.model})")
            continue
        keys = ", ".join(test.failing_keys)
        out(f"  {test.status.upper():4} {test.name} ({test.model}): {test.failing_rows:,} row(s), e.g. {keys}")
        out(f"       assumption: {test.rationale}")
    summary = result.summary
    out(f"Data tests: {summary['pass']} passed, {summary['warn']} warned, {summary['fail']} failed")
    out(f"Results: {config.run_results_path(result.warehouse)}")


def cmd_build(args: argparse.Namespace) -> int:
    from greenery.engines import choose_source, engine_build

    source = choose_source(args)  # hook (issue 14): a Spark build may read a URI
    print(f"Data: {source.path} ({source.label}; chosen by {source.chosen_by})")
    warehouse = config.warehouse_path(args.warehouse)
    try:
        result = engine_build(args)(source, warehouse)  # hook (issue 14): DuckDB's build, or Spark's
    except DataTestFailure as failure:
        print_build(failure.result)
        print(f"Build stopped: error-level data tests failed; the previous warehouse at {warehouse} is kept.",
              file=sys.stderr)
        return ExitCode.DATA_TEST_FAILED
    print_build(result)
    print(f"Warehouse: {warehouse} (built in {result.seconds:.2f} s)")
    return ExitCode.OK


def cmd_sample(args: argparse.Namespace) -> int:
    from greenery.sample import generate

    rows = generate(Path(args.out), scale=args.scale, seed=args.seed)
    counts = ", ".join(f"{name} {n:,}" for name, n in rows.items())
    print(f"Wrote a sample export (seed {args.seed}, scale {args.scale:g}) to {args.out}: {counts}")
    return ExitCode.OK


def cmd_report(args: argparse.Namespace) -> int:
    from greenery.engines import engine_options
    from greenery.report import publish

    return publish(data_dir=args.data_dir, out=args.out, warehouse=args.warehouse,
                   **engine_options(args))  # hook (issue 14)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="greenery", description=__doc__.split("\n\n")[0],
                                  epilog="Exit codes: 0 ok, 1 data test failed, 2 bad input, 3 busy, 4 report failed.")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    build = commands.add_parser("build", help="load the export, build all models, run all data tests")
    build.add_argument("--data-dir", help=DATA_HELP)
    build.add_argument("--warehouse", help=f"the DuckDB file to write (default: {config.WAREHOUSE_PATH})")
    add_engine_arguments(build)  # hook (issue 14)
    build.set_defaults(run=cmd_build)

    sample = commands.add_parser("sample", help="write a Greenery-shaped sample export")
    sample.add_argument("--out", required=True, help="folder to write the seven CSV files into")
    sample.add_argument("--scale", type=float, default=1.0, help="1 is about the real export's size (default 1)")
    sample.add_argument("--seed", type=int, default=config.SAMPLE_SEED, help="same seed, same bytes (default 42)")
    sample.set_defaults(run=cmd_sample)

    report = commands.add_parser("report", help="build the warehouse, run the notebooks, publish the book")
    report.add_argument("--data-dir", help=DATA_HELP)
    report.add_argument("--out", help=f"where the book is published (default: {config.HTML_DIR})")
    report.add_argument("--warehouse", help=f"the DuckDB file to write (default: {config.WAREHOUSE_PATH})")
    add_engine_arguments(report)  # hook (issue 14)
    report.set_defaults(run=cmd_report)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except GreeneryError as error:
        print(f"error: {error}", file=sys.stderr)
        return int(error.exit_code)
