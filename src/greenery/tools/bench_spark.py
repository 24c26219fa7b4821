"""`make bench-spark`: `greenery build` on Spark (local) against the same build on DuckDB.

For each scale the same generated export is built twice, each in a process of its own, measured as
`make bench` measures (greenery.tools.bench.measure): `greenery build` (DuckDB) and
`greenery build --engine spark` (Spark local[*], marts as Parquet, then the DuckDB warehouse made
from them). Each build's own step timings come from its run_results JSON. With --docs the table
is written into docs/engines-and-scale.md's "When the data outgrows one machine" section.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from greenery import config
from greenery.tools.bench import BENCH_DIR, SCALE_PAGE, Measure, measure, split_at_markers, update_docs

DOCS_START, DOCS_END = "<!-- bench-spark:start -->", "<!-- bench-spark:end -->"


def run_scale(scale: str, folder: Path, env: dict[str, str], master: str) -> tuple[list[Measure], list[str]]:
    greenery = [sys.executable, "-m", "greenery"]
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    export = folder / "export"
    results = [measure(scale, "sample", [*greenery, "sample", "--out", str(export), "--scale", scale], env)]
    notes = []
    for engine in ("duckdb", "spark"):
        warehouse = folder / engine / "w.duckdb"
        warehouse.parent.mkdir()
        command = [*greenery, "build", "--engine", engine, "--data-dir", str(export), "--warehouse", str(warehouse),
                   "--spark-master", master, "--marts-dir", str(folder / engine / "marts")]
        run_env = {**env, "GREENERY_HISTORY": str(folder / engine / "history.duckdb")}
        results.append(measure(scale, f"greenery build --engine {engine}", command, run_env))
        timings = json.loads(config.run_results_path(warehouse).read_text())["build"]["timings"]
        notes.append(f"scale {scale}, {engine}: " + ", ".join(f"{step} {s:.1f} s" for step, s in timings.items()))
    duck, spark = results[-2], results[-1]
    spark.floor_ratio = round(spark.wall_s / duck.wall_s, 1)
    duck.floor_ratio = 1.0
    return results, notes


def markdown(results: list[Measure], notes: list[str]) -> str:
    lines = ["| scale | step | wall (s) | CPU (s) | peak RSS, all processes (MB) | × DuckDB |",
             "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {r.scale} | {r.step} | {r.wall_s:.2f} | {r.cpu_s:.2f} | {r.rss_all_mb:,.0f} | "
              f"{'' if r.floor_ratio is None else f'{r.floor_ratio:g}'} |" for r in results]
    lines += ["", *[f"- {note}" for note in notes], "",
              "CPU (s) counts the Python process only, not Spark's JVM; the memory column counts both."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m greenery.tools.bench_spark", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", nargs="+", default=["1", "10", "100"], help="sample scales (default 1 10 100)")
    parser.add_argument("--spark-master", default="local[*]", help="Spark master (default local[*])")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "spark", help="work folder")
    parser.add_argument("--docs", action="store_true", help="write the table into docs/engines-and-scale.md")
    args = parser.parse_args(argv)
    if args.docs:
        split_at_markers(SCALE_PAGE, DOCS_START, DOCS_END)  # before minutes of measuring, not after

    env = {k: v for k, v in os.environ.items() if k not in {"GREENERY_DATA_DIR", "GREENERY_WAREHOUSE",
                                                             "GREENERY_MARTS_DIR", "SOURCE_DATE_EPOCH"}}
    results, notes = [], []
    for scale in args.scales:
        print(f"bench-spark: scale {scale} ...", flush=True)
        measured, said = run_scale(scale, args.out / f"scale-{scale}", env, args.spark_master)
        results += measured
        notes += said
    from importlib.metadata import version

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    machine = (f"Measured by `make bench-spark` on {time.strftime('%Y-%m-%d')}: {os.cpu_count()} cores, "
               f"Spark {version('pyspark')} on {args.spark_master}, DuckDB {version('duckdb')}; "
               f"load average at the end {load} (other work shares these cores: ratios vary between runs).")
    table = markdown(results, notes)
    print(f"\n{machine}\n\n{table}")
    if args.docs:
        update_docs(table, machine, DOCS_START, DOCS_END)
        print(f"written: {SCALE_PAGE.relative_to(config.ROOT)} (When the data outgrows one machine)")


if __name__ == "__main__":
    main()
