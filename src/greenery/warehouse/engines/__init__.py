"""Engines other than DuckDB that build the same models from the same SQL files.

`transpile` turns a model's DuckDB SQL into another dialect with sqlglot (the manifest's models are
written once, in DuckDB's dialect); `spark` builds the models on Apache Spark and lands the marts as
Parquet, from which the DuckDB warehouse the report reads is made. `ENGINES` lists what
`greenery build --engine` accepts.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from greenery.outputs import fingerprint

ENGINES = ("duckdb", "spark")


def add_engine_arguments(command: argparse.ArgumentParser) -> None:
    """--engine, --spark-master, --marts-dir, --spark-conf on `greenery build` and `greenery report`."""
    command.add_argument("--engine", choices=ENGINES, default="duckdb",
                         help="where the models run: duckdb (default) or spark (needs pyspark and Java)")
    command.add_argument("--spark-master", default="local[*]",
                         help="Spark master URL for --engine spark (default local[*]; e.g. spark://host:7077, yarn)")
    command.add_argument("--marts-dir", type=_not_empty,
                         help="where --engine spark writes the marts as Parquet (default: beside the warehouse, "
                              "<warehouse>.marts/; $GREENERY_MARTS_DIR)")
    command.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE", type=_setting,
                         help="a Spark setting for --engine spark, repeatable (e.g. s3a credentials providers)")


def _not_empty(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("the path is empty: name it, or leave the option out")
    return text


def _setting(text: str) -> tuple[str, str]:
    key, equals, value = text.partition("=")
    if not equals or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def _spark_options(args: argparse.Namespace):
    from greenery.warehouse.engines.spark import SparkOptions

    conf = dict(args.spark_conf)
    return SparkOptions(master=args.spark_master, marts_dir=args.marts_dir, conf=conf)


def engine_options(args: argparse.Namespace) -> dict:
    """The keyword arguments `greenery.publisher.run` takes for the engine."""
    spark = _spark_options(args) if args.engine == "spark" else None
    return {"engine": args.engine, "spark": spark}


def choose_source_for(engine: str, data_dir, log=print):
    """As greenery.warehouse.choose_data; a Spark build also reads a URI (s3a://, abfss://, hdfs://)."""
    from greenery.warehouse.build import choose_data

    if engine == "spark" and data_dir and "://" in str(data_dir):
        from greenery.warehouse.engines.spark import uri_source

        return uri_source(str(data_dir))
    return choose_data(data_dir, log)


def choose_source(args: argparse.Namespace):
    return choose_source_for(args.engine, args.data_dir)


def builder(engine: str, spark=None, log: Callable[..., None] = print, watch=None, instance=None) -> Callable:
    """A function (source, warehouse, inputs=None, built_at=None, since=None) -> BuildResult building on
    `engine` (`since`: the build "what changed" compares with; `watch`: the export watch's thresholds;
    `instance`: on DuckDB, the in-memory connection being opened for the build, db.connect_beside).
    The caller holds the warehouse's lock."""
    if engine == "spark":
        from greenery.warehouse.engines import spark as spark_engine

        return lambda source, warehouse, inputs=None, built_at=None, since=None: spark_engine.build(
            source, warehouse, spark, inputs=inputs, built_at=built_at, log=log, since=since, watch=watch)
    from greenery.warehouse.build import build

    return lambda source, warehouse, inputs=None, built_at=None, since=None: build(
        source, warehouse, inputs=inputs, built_at=built_at, log=log, since=since, watch=watch, instance=instance)


def engine_build(args: argparse.Namespace, instance=None) -> Callable:
    return builder(args.engine, engine_options(args)["spark"], watch=watch_settings(args), instance=instance)


def add_watch_arguments(command: argparse.ArgumentParser) -> None:
    """The export watch's thresholds (greenery.warehouse.watch): warnings, and refusals only when set."""
    from greenery.warehouse import watch

    command.add_argument("--stale-after", type=float, default=watch.STALE_AFTER_HOURS, metavar="HOURS",
                         help="warn when the export's last event is older than this at build time "
                              f"(default {watch.STALE_AFTER_HOURS:g})")
    command.add_argument("--refuse-stale-after", type=float, metavar="HOURS",
                         help="refuse (exit 2) an export whose last event is older than this (default: never)")
    command.add_argument("--refuse-shrink", type=float, metavar="SHARE",
                         help="refuse (exit 2) an export in which a raw table lost more than this share of the "
                              "previous export's rows, e.g. 0.5 (default: never; a loss above "
                              f"{watch.SHRINK_TOLERANCE:g} is a warning)")
    command.add_argument("--refuse-schema-change", action="store_true",
                         help="refuse (exit 2) an export whose files gained or lost columns (default: a warning)")


def watch_settings(args: argparse.Namespace):
    from greenery.warehouse.watch import WatchSettings

    return WatchSettings(stale_after_hours=args.stale_after, refuse_stale_after_hours=args.refuse_stale_after,
                         refuse_shrink=args.refuse_shrink, refuse_schema_change=args.refuse_schema_change)


def input_fingerprint(engine: str, source, spark=None, pinned_build_time=None) -> str:
    """What a warehouse built on `engine` from `source` depends on (a Spark build is never taken for a DuckDB one)."""
    if engine == "spark":
        from greenery.warehouse.engines.spark import SparkOptions
        from greenery.warehouse.engines.spark import input_fingerprint as spark_fingerprint

        return spark_fingerprint(source, spark or SparkOptions(), pinned_build_time)
    return fingerprint.warehouse(Path(source.path), pinned_build_time)
