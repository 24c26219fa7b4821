"""`make bench`'s verdicts: each target judged against its own bound, the README's table its headlines."""

from pathlib import Path

from greenery.tools import bench


def test_targets_of_dbt_and_spark_are_judged_against_their_bounds():
    build = bench.Measure("real export", "greenery build --engine spark, standalone cluster", 25.0, 3.0, 0, 0)
    assert bench.extra_targets(9.9, (build, 16)) == [
        ("dbt-duckdb's `dbt build` ÷ `greenery build`, the same models and tests", "9.9", "≥ 10", False),
        ("Spark build of the real export on a standalone cluster", "25.0 s", "≤ 25 s", True),  # at the bound: met
        ("Spark jobs in that build", "16", "≤ 15", False),
    ]
    assert bench.extra_targets(None, None) == []


def test_the_readme_table_holds_the_headline_targets_only():
    checks = [("greenery build on the real export", "0.25 s", "≤ 0.3 s", True),
              ("greenery build on the real export, CPU seconds", "0.30 s", "", None),  # for reference: left out
              ("unchanged report ÷ cold report, scale 1", "0.030", "≤ 0.25", True),  # not a headline: left out
              ("greenery report on the real export, cold", "7.0 s", "≤ 6 s", False)]
    assert bench.headline_table(checks).splitlines() == [
        "| what | measured | target | |", "|---|---:|---:|---|",
        "| greenery build on the real export | 0.25 s | ≤ 0.3 s | met |",
        "| greenery report on the real export, cold | 7.0 s | ≤ 6 s | MISSED |"]


def test_build_scales_come_after_the_full_scales_smallest_first_and_a_scale_in_both_is_measured_in_full():
    assert bench.scale_runs(["1", "100"], ["1000", "100", "500"]) == [
        ("1", None, True), ("100", None, True), ("500", None, False), ("1000", None, False)]
    assert bench.scale_runs([], ["1000"]) == [("1000", None, False)]


def test_a_build_scale_measures_the_sample_the_floor_and_the_build_only(tmp_path, monkeypatch):
    steps = []

    def measured(scale, step, command, env):
        steps.append(step)
        return bench.Measure(scale, step, {"floor": 2.0}.get(step.split(":")[0], 3.0), 1.0, 0, 0)

    monkeypatch.setattr(bench, "measure", measured)
    previous = tmp_path / "scale-100"
    previous.mkdir()
    (previous / "history.duckdb").write_bytes(b"")  # a scale below with a history: no grown build all the same
    results = bench.run_scale("1000", None, tmp_path / "scale-1000", {}, previous=previous, report=False)
    assert steps == ["sample", "floor: DuckDB loads the CSVs", "greenery build"]
    assert [r.floor_ratio for r in results] == [None, 1.0, 1.5]
    steps.clear()
    bench.run_scale("100", None, tmp_path / "again", {}, previous=previous)
    assert steps == ["sample", "floor: DuckDB loads the CSVs", "greenery build", bench.GROWN,
                     "greenery report, cold", "greenery report, unchanged"]


def test_the_steps_with_targets_are_repeated_and_their_median_run_kept(tmp_path, monkeypatch):
    """The floor and the build alternate, each run into files of its own, the last into the files later steps
    read; the real export's cold report and rerun are repeated too, each run from the history as the build
    left it. The median run is kept (the lower middle of an even count), with every run's wall time."""
    walls = iter([2.0, 3.3, 1.0, 3.0, 3.0, 2.9,  # floor, build alternating: medians 2.0 and 3.0
                  9.0, 0.5, 8.0, 0.4, 10.0, 0.6])  # cold report, unchanged, three times: 9.0 and 0.5
    calls, copied = [], []

    def measured(scale, step, command, env):
        calls.append((step, command[-1], env.get("GREENERY_HISTORY")))
        if step.startswith("greenery report, cold"):
            copied.append(Path(env["GREENERY_HISTORY"]).read_bytes())
        if step.startswith("greenery build"):
            Path(env["GREENERY_HISTORY"]).write_bytes(b"history")
        return bench.Measure(scale, step, next(walls), 1.0, 0, 0)

    monkeypatch.setattr(bench, "measure", measured)
    folder = tmp_path / "scale-real"
    results = bench.run_scale("real", tmp_path / "export", folder, {"GREENERY_HISTORY": "unused"}, repeats=3)
    floors = [c for c in calls if c[0].startswith("floor")]
    builds = [c for c in calls if c[0] == "greenery build"]
    assert [c[0].split(":")[0] for c in calls[:6]] == ["floor", "greenery build"] * 3
    assert [Path(c[1]).name for c in floors] == ["floor-run1.duckdb", "floor-run2.duckdb", "floor.duckdb"]
    assert [Path(c[2]).name for c in builds] == ["history-run1.duckdb", "history-run2.duckdb", "history.duckdb"]
    reports = [c for c in calls if c[0].startswith("greenery report")]
    assert [(c[0].split(", ")[1], Path(c[1]).name, Path(c[2]).name) for c in reports] == [
        ("cold", "html-run1", "history-report-run1.duckdb"), ("unchanged", "html-run1", "history-report-run1.duckdb"),
        ("cold", "html-run2", "history-report-run2.duckdb"), ("unchanged", "html-run2", "history-report-run2.duckdb"),
        ("cold", "html", "history.duckdb"), ("unchanged", "html", "history.duckdb")]
    assert copied == [b"history"] * 3  # each cold report from the history as the build left it
    assert sorted(p.name for p in folder.iterdir()) == ["history.duckdb"]  # the earlier runs' files removed
    kept = {r.step: r for r in results}
    assert kept["floor: DuckDB loads the CSVs"].wall_s == 2.0 and kept["greenery build"].wall_s == 3.0
    assert kept["greenery build"].walls == (3.3, 3.0, 2.9) and kept["greenery build"].floor_ratio == 1.5
    assert kept["greenery report, cold"].wall_s == 9.0 and kept["greenery report, unchanged"].wall_s == 0.5
    assert bench._spread(kept["greenery report, cold"]) == " (8.00–10.00, 3 runs)"


def test_a_sample_scale_s_report_runs_once(tmp_path, monkeypatch):
    steps = []

    def measured(scale, step, command, env):
        steps.append(step)
        return bench.Measure(scale, step, 1.0, 1.0, 0, 0)

    monkeypatch.setattr(bench, "measure", measured)
    bench.run_scale("10", None, tmp_path / "scale-10", {}, repeats=2)
    assert steps == ["sample", "floor: DuckDB loads the CSVs", "greenery build", "floor: DuckDB loads the CSVs",
                     "greenery build", "greenery report, cold", "greenery report, unchanged"]


def _measures(scale: str, floor: float, build: float, report: bool) -> list:
    rows = [bench.Measure(scale, "sample", 1.0, 1.0, 0, 0),
            bench.Measure(scale, "floor: DuckDB loads the CSVs", floor, floor, 0, 0),
            bench.Measure(scale, "greenery build", build, build, 0, 0, round(build / floor, 2))]
    if report:
        rows += [bench.Measure(scale, "greenery report, cold", 10.0, 10.0, 0, 500),
                 bench.Measure(scale, "greenery report, unchanged", 1.0, 1.0, 0, 100)]
    return rows


def test_targets_of_a_build_scale_are_its_ratio_and_growth_never_a_report_it_did_not_run():
    results = _measures("100", 1.0, 1.25, report=True) + _measures("1000", 10.0, 16.0, report=False)
    checks = {what: (value, wanted, met) for what, value, wanted, met in bench.check_targets(results, {})}
    assert checks["build ÷ floor at scale 100"] == ("1.25", "≤ 1.3", True)
    assert checks["build ÷ floor at scale 1000"] == ("1.60", "≤ 1.5", False)
    assert checks["time(1000) ÷ time(100): greenery build"] == ("12.8", "≤ 10", False)  # 16 / 1.25
    assert checks["time(1000) ÷ time(100): floor: DuckDB loads the CSVs"] == ("10.0", "≤ 10", True)
    assert checks["unchanged report ÷ cold report, scale 100"] == ("0.100", "≤ 0.25", True)
    assert checks["peak memory of greenery report at scale 100, all processes"] == ("500 MB", "≤ 1,024 MB", True)
    assert not [what for what in checks if "report" in what and "1000" in what]


def test_the_real_exports_absolute_targets_are_also_given_against_the_floor_of_the_same_run():
    """The same code took 0.32 and 0.49 s to build the real export in two sessions of this machine, its floor
    0.22 and 0.36 s: a figure divided by the floor of its own run is the machine's speed left out."""
    results = _measures("real", 0.36, 0.49, report=True)
    checks = {what: (value, wanted, met) for what, value, wanted, met in bench.check_targets(results, {})}
    assert checks["greenery build on the real export"] == ("0.49 s", "≤ 0.3 s", False)
    assert checks["greenery build on the real export ÷ floor"] == ("1.36", "", None)
    assert checks["greenery report on the real export, cold ÷ floor"] == ("27.8", "", None)  # 10.0 / 0.36
    assert bench.headline_table(list(bench.check_targets(results, {}))).count("÷ floor") == 0  # for reference only
