"""`make bench`'s verdicts: each target judged against its own bound, the README's table its headlines."""

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
