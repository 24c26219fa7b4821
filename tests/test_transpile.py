"""Every model and data test transpiles from DuckDB's SQL to Spark's (sqlglot), and what would
mean another thing on Spark is refused by name. Needs sqlglot only: no Java, no pyspark."""

from __future__ import annotations

import dataclasses

import pytest
import sqlglot
from sqlglot import exp

from greenery.errors import ExitCode
from greenery.warehouse.engines.spark import duckdb_schemas, spark_type
from greenery.warehouse.engines.transpile import TranspileError, tables_read, to_spark
from greenery.warehouse.manifest import Manifest, ManifestError, load_manifest, spark_sql


def test_every_model_and_data_test_transpiles_to_spark_sql():
    manifest = load_manifest()
    translated = spark_sql(manifest)
    assert set(translated) == set(manifest.models) | {t.name for t in manifest.tests}
    assert all(isinstance(sqlglot.parse_one(sql, read="spark"), exp.Query) for sql in translated.values())


def test_raw_tables_become_spark_views_and_duckdb_idioms_are_translated():
    sql = to_spark(load_manifest().models["stg_orders"].sql)
    assert "raw_orders" in sql and "raw.orders" not in sql
    assert to_spark("select x::varchar from t") == "SELECT CAST(x AS STRING) FROM t"
    assert to_spark("select count(*) filter (where a = 'b') from t") == "SELECT COUNT(*) FILTER(WHERE a = 'b') FROM t"
    assert to_spark("select strftime(ts, '%A') from t") == "SELECT DATE_FORMAT(ts, 'EEEE') FROM t"
    # A data test's values travel as parameters: DuckDB's $name is Spark's :name.
    assert to_spark("select a from t where not list_contains($accepted, a)") == \
        "SELECT a FROM t WHERE NOT ARRAY_CONTAINS(:accepted, a)"


@pytest.mark.parametrize(("sql", "reason"), [
    ("select dayname(ts) from t", "'Mon'"),
    ("select any_value(x) from t group by y", "different row"),
    ("select first(x) from t group by y", "different row"),
    ("select regexp_full_match(a, '[0-9]') from t", "regexp_matches"),
    ("unpivot t on a, b into name n value v", "union all"),
    ("select made_up_function(a) from t", "does not know"),
    ("select 1; select 2", "one statement"),
])
def test_what_would_differ_on_spark_is_refused(sql, reason):
    with pytest.raises(TranspileError, match=reason):
        to_spark(sql)


def test_the_manifest_names_the_model_that_does_not_transpile():
    manifest = load_manifest()
    model = manifest.models["dim_promos"]
    broken = dataclasses.replace(model, sql=model.sql.replace("promo_status = 'active'", "dayname(now()) = 'x'"))
    with pytest.raises(ManifestError, match=r"dim_promos.sql: does not transpile to Spark SQL: dayname"):
        spark_sql(Manifest({**manifest.models, "dim_promos": broken}, manifest.tests))


def test_marts_are_given_the_types_duckdb_gives_them():
    schemas = duckdb_schemas(load_manifest())
    orders = dict(schemas["fct_orders"])
    assert orders["order_total_usd"] == "DECIMAL(12,2)" and orders["created_at"] == "TIMESTAMP"
    assert orders["days_to_delivery"] == "DOUBLE" and orders["has_promo"] == "BOOLEAN"
    assert [spark_type(orders[c]) for c in ("order_total_usd", "created_at", "user_order_number", "order_id")] == \
        ["decimal(12,2)", "timestamp_ntz", "bigint", "string"]
    with pytest.raises(ManifestError, match="no Spark type"):
        spark_type("INTERVAL")


def test_a_spark_build_without_pyspark_or_java_says_what_to_install(tmp_path, monkeypatch, capsys):
    from shop import write_shop

    from greenery import cli
    from greenery.warehouse.engines import spark

    monkeypatch.setattr(spark, "available", lambda: "Java is missing: install a JRE 17 (Debian: "
                                                    "`apt-get install openjdk-17-jre-headless`)")
    code = cli.main(["build", "--engine", "spark", "--data-dir", str(write_shop(tmp_path / "shop")),
                     "--warehouse", str(tmp_path / "w.duckdb")])
    assert code == ExitCode.BAD_INPUT
    assert "openjdk-17-jre-headless" in capsys.readouterr().err
    assert not (tmp_path / "w.duckdb").exists()


def test_spark_settings_are_key_value_pairs(capsys):
    from greenery import cli

    args = cli.parser().parse_args(["build", "--engine", "spark", "--spark-conf", "spark.a=b=c",
                                    "--spark-conf", "spark.x=1", "--spark-master", "spark://h:7077"])
    assert (args.engine, args.spark_master, dict(args.spark_conf)) == ("spark", "spark://h:7077",
                                                                       {"spark.a": "b=c", "spark.x": "1"})
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["build", "--spark-conf", "no-equals-sign"])
    assert "expected KEY=VALUE" in capsys.readouterr().err


def test_the_tables_a_query_reads_are_all_named():
    """A Spark build analyses a data test once the models it reads are made: every table named
    counts, in a subquery, a join or a common table expression (whose own name is harmless: it is no model)."""
    sql = "with a as (select * from X) select * from a join y using (k) where k in (select k from raw_z)"
    assert tables_read(sql) == {"a", "x", "y", "raw_z"}
    manifest = load_manifest()
    translated = spark_sql(manifest)
    for test in manifest.tests:  # every test reads a model, and a relationship both of its models
        read = tables_read(translated[test.name])
        assert read & set(manifest.models), test.name
        if test.kind == "relationships":
            assert {test.model, test.arguments["to"]} <= read
