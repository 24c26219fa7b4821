"""`make bench-spark`: `greenery build` on Spark, local and on a standalone cluster, against DuckDB.

For each scale the same generated export (and the real export, when it is beside the checkout) is
built in a process of its own per engine, measured as `make bench` measures
(greenery.tools.bench.measure): `greenery build` (DuckDB), then `greenery build --engine spark`
on local[*] and on a standalone cluster on 127.0.0.1 (a master and a worker started from pyspark's
own spark-class by greenery.tools.spark_cluster for the run, and stopped after it, also when a step
fails). Each build's own step timings and its number of Spark jobs come from its run_results JSON.
With --docs the table is written into docs/engines-and-scale.md's "When the data outgrows one machine"
section.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

from greenery import config
from greenery.tools.bench import BENCH_DIR, SCALE_PAGE, Measure, measure, split_at_markers, update_docs

DOCS_START, DOCS_END = "<!-- bench-spark:start -->", "<!-- bench-spark:end -->"


JOB_TARGET, SECONDS_TARGET = 15, 25.0  # issue 24: a Spark build of the real export on the local cluster


def describe(timings: dict) -> str:
    return ", ".join(f"{step} {value:.0f}" if step == "spark jobs" else f"{step} {value:.1f} s"
                     for step, value in timings.items())


def run_scale(scale: str, folder: Path, env: dict[str, str],
              masters: dict[str, str], export: Path | None = None) -> tuple[list[Measure], list[str], dict]:
    """One export (generated at `scale`, or `export` as given) built on DuckDB, then on Spark on each
    of `masters` (label -> master URL). Returns the measures, the step notes and each Spark build's jobs."""
    greenery = [sys.executable, "-m", "greenery"]
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    results, notes, jobs = [], [], {}
    if export is None:
        export = folder / "export"
        results.append(measure(scale, "sample", [*greenery, "sample", "--out", str(export), "--scale", scale], env))
    runs = [("duckdb", "duckdb", "local[*]"), *(("spark", label, url) for label, url in masters.items())]
    for engine, label, master in runs:
        out = folder / label.replace("[*]", "")
        warehouse = out / "w.duckdb"
        out.mkdir()
        command = [*greenery, "build", "--engine", engine, "--data-dir", str(export), "--warehouse", str(warehouse),
                   "--spark-master", master, "--marts-dir", str(out / "marts")]
        run_env = {**env, "GREENERY_HISTORY": str(out / "history.duckdb")}
        step = "greenery build --engine duckdb" if engine == "duckdb" else f"greenery build --engine spark, {label}"
        results.append(measure(scale, step, command, run_env))
        timings = json.loads(config.run_results_path(warehouse).read_text())["build"]["timings"]
        notes.append(f"{scale}, {label}: {describe(timings)}")
        if engine == "spark":
            jobs[(scale, label)] = (int(timings["spark jobs"]), results[-1].wall_s)
    duck = next(r for r in results if r.step.endswith("duckdb"))
    duck.floor_ratio = 1.0
    for r in results:
        if "spark" in r.step:
            r.floor_ratio = round(r.wall_s / duck.wall_s, 1)
    return results, notes, jobs


def markdown(results: list[Measure], notes: list[str], jobs: dict) -> str:
    lines = ["| scale | step | wall (s) | CPU (s) | peak RSS, all processes (MB) | Spark jobs | × DuckDB |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in results:
        label = r.step.rpartition(", ")[2] if "spark" in r.step else None
        count = jobs.get((r.scale, label), ("",))[0]
        lines.append(f"| {r.scale} | {r.step} | {r.wall_s:.2f} | {r.cpu_s:.2f} | {r.rss_all_mb:,.0f} | {count} | "
                     f"{'' if r.floor_ratio is None else f'{r.floor_ratio:g}'} |")
    lines += ["", *[f"- {note}" for note in notes], "",
              "CPU (s) counts the Python process only, not Spark's JVMs; the memory column counts the driver's "
              "processes (the standalone cluster's master, worker and executor run apart and are not counted)."]
    return "\n".join(lines)


def verdict(jobs: dict) -> list[str]:
    """The targets on the real export against the standalone cluster, in words."""
    found = jobs.get(("real export", "standalone cluster"))
    if found is None:
        return ["target not checked: no real export (GREENERY_DATA_DIR or ../shared/greenery) or no cluster run"]
    count, seconds = found
    return [f"real export on the standalone cluster: {count} Spark jobs (target <= {JOB_TARGET}): "
            f"{'met' if count <= JOB_TARGET else 'MISSED'}; {seconds:.1f} s (target <= {SECONDS_TARGET:g} s): "
            f"{'met' if seconds <= SECONDS_TARGET else 'MISSED'}"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m greenery.tools.bench_spark", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", nargs="+", default=["1", "10", "100"], help="sample scales (default 1 10 100)")
    parser.add_argument("--no-cluster", action="store_true", help="local[*] only: no standalone cluster")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "spark", help="work folder")
    parser.add_argument("--docs", action="store_true", help="write the table into docs/engines-and-scale.md")
    args = parser.parse_args(argv)
    if args.docs:
        split_at_markers(SCALE_PAGE, DOCS_START, DOCS_END)  # before minutes of measuring, not after

    env = {k: v for k, v in os.environ.items() if k not in {"GREENERY_DATA_DIR", "GREENERY_WAREHOUSE",
                                                             "GREENERY_MARTS_DIR", "SOURCE_DATE_EPOCH"}}
    real = config.real_export_dir()
    results, notes, jobs = [], [], {}
    with contextlib.ExitStack() as stack:
        masters = {"local[*]": "local[*]"}
        if not args.no_cluster:
            from greenery.tools import spark_cluster

            shutil.rmtree(args.out / "cluster", ignore_errors=True)
            cluster = stack.enter_context(spark_cluster.running(args.out / "cluster"))
            masters["standalone cluster"] = cluster.url
            print(f"bench-spark: a standalone cluster at {cluster.url}", flush=True)
        runs = [(scale, None) for scale in args.scales] + ([("real export", real)] if real else [])
        for scale, export in runs:
            print(f"bench-spark: {scale} ...", flush=True)
            folder = args.out / ("real-export" if export else f"scale-{scale}")
            measured, said, counted = run_scale(scale, folder, env, masters, export)
            results += measured
            notes += said
            jobs |= counted
    from importlib.metadata import version

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    where = "local[*] and a standalone cluster on 127.0.0.1 (one master, one worker with every core)" \
        if not args.no_cluster else "local[*]"
    machine = (f"Measured by `make bench-spark` on {time.strftime('%Y-%m-%d')}: {os.cpu_count()} cores, "
               f"Spark {version('pyspark')} on {where}, DuckDB {version('duckdb')}; "
               f"load average at the end {load} (other work shares these cores: ratios vary between runs).")
    table = markdown(results, notes, jobs)
    print(f"\n{machine}\n\n{table}\n")
    for line in verdict(jobs):
        print(line)
    if args.docs:
        update_docs(table, machine, DOCS_START, DOCS_END)
        print(f"written: {SCALE_PAGE.relative_to(config.ROOT)} (When the data outgrows one machine)")


if __name__ == "__main__":
    main()
