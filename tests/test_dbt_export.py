"""`greenery export-dbt DIR`: the models and data tests as a dbt project, and dbt running it.

The first tests need no dbt: how table names become source() and ref(), what the YAML says, which
folders the command may write. The last ones run `dbt build` (dbt-core and dbt-duckdb 1.10 in
.venv-dbt, installed by `make dbt-test`) on the project exported for the hand-made shop and for the
sample, and find every mart equal to greenery's, row for row as text, and every data test with
greenery's outcome. Without .venv-dbt they are skipped, saying so; `make dbt-test` makes them required.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import tree_digest
from shop import write_shop

from greenery import cli, config, db
from greenery.errors import ExitCode
from greenery.warehouse.build import DataSource, build
from greenery.warehouse.dbt_project import DBT_DATABASE, WAREHOUSE_ALIAS, DbtExportError, export, to_dbt_sql
from greenery.warehouse.manifest import load_manifest

MANIFEST = load_manifest()
MODELS = set(MANIFEST.models)
MARTS = [m.name for m in MANIFEST.build_order() if m.layer == "marts"]


# --- table names become source() and ref(), by the syntax tree -------------------------------------------------

def test_raw_tables_become_sources_and_models_refs_keeping_ctes_columns_and_aliases():
    sql = """
    with stg_orders_cte as (select * from stg_orders)
    select stg_users.user_id, child.stg_products, 'stg_orders' as label
    from stg_users
    join raw.orders as child on child.user_id = stg_users.user_id
    join stg_orders_cte on true
    """
    assert to_dbt_sql(sql, MODELS, "t") == (
        "WITH stg_orders_cte AS (\n"
        "  SELECT\n"
        "    *\n"
        "  FROM {{ ref('stg_orders') }} AS stg_orders\n"
        ")\n"
        "SELECT\n"
        "  stg_users.user_id,\n"
        "  child.stg_products,\n"  # a column named like a model is a column
        "  'stg_orders' AS label\n"  # and a string is a string
        "FROM {{ ref('stg_users') }} AS stg_users\n"
        "JOIN {{ source('greenery_raw', 'orders') }} AS child\n"
        "  ON child.user_id = stg_users.user_id\n"
        "JOIN stg_orders_cte\n"  # a CTE stays a CTE
        "  ON TRUE\n"
    )


@pytest.mark.parametrize(("sql", "reason"), [
    ("with stg_orders as (select 1) select * from stg_orders", "the CTE stg_orders shadows the model"),
    ("select * from orders", "reads orders, which is neither a model nor a CTE"),
    ("select * from raw.shipments", "reads raw.shipments, which is not a raw table"),
    ("select * from main.stg_orders", "reads main.stg_orders"),
    ("select '{{ var(\"x\") }}' from stg_orders", "which dbt would read as Jinja"),
    ("select 1; select 2", "expected exactly one statement"),
])
def test_sql_that_would_mean_something_else_in_dbt_is_refused_by_name(sql, reason):
    with pytest.raises(DbtExportError, match=reason):
        to_dbt_sql(sql, MODELS, "t")


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "dbt"
    export(project, tmp_path / "w.duckdb", MANIFEST)
    return project


def _yaml(project: Path, name: str) -> dict:
    return yaml.safe_load((project / name).read_text())


def test_every_model_and_data_test_is_exported_with_its_materialization_name_and_severity(tmp_path):
    project = _project(tmp_path)
    sql = sorted(p.relative_to(project).as_posix() for p in project.rglob("*.sql"))
    assert len([p for p in sql if p.startswith("models/")]) == 25
    assert len([p for p in sql if p.startswith("tests/")]) == 14
    assert "models/marts/core/fct_orders.sql" in sql and "tests/assert_order_total_adds_up.sql" in sql
    assert "raw." not in (project / "models/staging/stg_orders.sql").read_text()
    assert "{{ source('greenery_raw', 'orders') }}" in (project / "models/staging/stg_orders.sql").read_text()

    staging = {m["name"]: m for m in _yaml(project, "models/staging/_staging.yml")["models"]}
    core = {m["name"]: m for m in _yaml(project, "models/marts/core/_core.yml")["models"]}
    assert staging["stg_users"]["config"]["materialized"] == "view"  # the folder's materialization
    assert core["fct_events"]["config"]["materialized"] == "view"  # the model's own
    assert core["fct_orders"]["config"]["materialized"] == "table"  # greenery's default
    assert _yaml(project, "dbt_project.yml")["models"]["greenery"]["+materialized"] == "table"

    users = {c["name"]: c for c in staging["stg_users"]["columns"]}
    assert users["address_id"]["data_tests"] == [{"relationships": {
        "name": "relationships_stg_users_address_id__stg_addresses",
        "arguments": {"to": "ref('stg_addresses')", "field": "address_id"},
        "config": {"severity": "warn", "meta": {"rationale": "A user's address should be on file; without it we "
                                                 "cannot place the user on the map, but counts still hold."}}}}]
    assert [next(iter(t)) for t in users["user_id"]["data_tests"]] == ["unique", "not_null"]
    promos = {c["name"]: c for c in staging["stg_promos"]["columns"]}
    accepted = promos["promo_status"]["data_tests"][0]["accepted_values"]
    assert accepted["arguments"] == {"values": ["active", "inactive"]} and accepted["config"]["severity"] == "warn"

    singular = {t["name"]: t for t in _yaml(project, "tests/_data_tests.yml")["data_tests"]}
    assert singular["assert_zipcode_five_digits"]["config"]["severity"] == "warn"
    assert singular["assert_order_total_adds_up"]["config"]["severity"] == "error"

    exported = {}  # every test of the manifest, once, with its kind and severity
    for path in project.rglob("_*.yml"):
        for model in _yaml(project, path.relative_to(project).as_posix()).get("models", []):
            for column in model["columns"]:
                for test in column.get("data_tests", []):
                    (kind, entry), = test.items()
                    exported[entry["name"]] = (kind, entry["config"]["severity"])
    exported |= {name: ("assertion", t["config"]["severity"]) for name, t in singular.items()}
    assert exported == {t.name: (t.kind, t.severity) for t in MANIFEST.tests}


def test_the_profile_attaches_the_warehouse_read_only_and_builds_into_the_project(tmp_path):
    project = _project(tmp_path)
    output = _yaml(project, "profiles.yml")["greenery"]["outputs"]["duckdb"]
    assert output["type"] == "duckdb" and output["path"] == str(project / DBT_DATABASE)
    assert output["attach"] == [{"path": str(tmp_path / "w.duckdb"), "alias": WAREHOUSE_ALIAS, "read_only": True}]
    (source,) = _yaml(project, "models/_sources.yml")["sources"]
    assert (source["database"], source["schema"]) == (WAREHOUSE_ALIAS, "raw")
    assert [t["name"] for t in source["tables"]] == ["users", "addresses", "products", "promos", "orders",
                                                      "order_items", "events"]
    assert _yaml(project, "dbt_project.yml")["flags"] == {"send_anonymous_usage_stats": False, "version_check": False}


# --- the folder: new, empty, or one this command wrote ------------------------------------------------------------

def _run(*argv: str) -> int:
    return cli.main(list(argv))


def test_a_second_export_is_byte_identical_and_leaves_what_dbt_wrote_alone(tmp_path):
    project = _project(tmp_path)
    first = tree_digest(project)
    (project / "target").mkdir()
    (project / "target" / "run_results.json").write_text("{}")
    (project / "logs").mkdir()
    (project / "logs" / "dbt.log").write_text("log")
    (project / DBT_DATABASE).write_text("dbt's")
    logs = [p.name for p in config.log_paths(project / DBT_DATABASE)]  # DuckDB's logs beside dbt's database
    for name in logs:
        (project / name).write_text("dbt's log")
    assert _run("export-dbt", str(project), "--warehouse", str(tmp_path / "w.duckdb")) == ExitCode.OK
    assert (project / "target" / "run_results.json").read_text() == "{}"
    assert (project / "logs" / "dbt.log").read_text() == "log" and (project / DBT_DATABASE).read_text() == "dbt's"
    assert all((project / name).read_text() == "dbt's log" for name in logs)
    for name in ("target", "logs", DBT_DATABASE, *logs):
        (project / name).unlink() if (project / name).is_file() else __import__("shutil").rmtree(project / name)
    assert tree_digest(project) == first


def test_a_file_the_export_wrote_before_and_no_longer_writes_is_removed(tmp_path):
    project = _project(tmp_path)
    stamp = json.loads((project / config.DBT_STAMP).read_text())
    (project / "models" / "old").mkdir()
    (project / "models" / "old" / "stg_gone.sql").write_text("select 1")
    stamp["files"].append("models/old/stg_gone.sql")
    (project / config.DBT_STAMP).write_text(json.dumps(stamp))
    export(project, tmp_path / "w.duckdb", MANIFEST)
    assert not (project / "models" / "old").exists()
    assert "models/old/stg_gone.sql" not in json.loads((project / config.DBT_STAMP).read_text())["files"]


@pytest.mark.parametrize("setup", ["foreign_folder", "foreign_file_in_ours", "symlink_in_ours", "file", "jinja_path"])
def test_a_folder_this_command_did_not_write_is_refused_and_left_as_it_was(tmp_path, capsys, setup):
    project = tmp_path / "dbt"
    if setup == "foreign_folder":
        project.mkdir()
        (project / "dbt_project.yml").write_text("name: theirs\n")
    elif setup == "foreign_file_in_ours":
        project = _project(tmp_path)
        (project / "models" / "theirs.sql").write_text("select 1")
    elif setup == "symlink_in_ours":
        project = _project(tmp_path)
        (project / "elsewhere").symlink_to(tmp_path)
    elif setup == "file":
        project.write_text("a file")
    else:
        project = tmp_path / "{{ dbt }}"
    before = tree_digest(tmp_path)
    assert _run("export-dbt", str(project), "--warehouse", str(tmp_path / "w.duckdb")) == ExitCode.BAD_INPUT
    message = capsys.readouterr().err
    assert message.count("\n") == 1 and "error:" in message and "Traceback" not in message
    assert tree_digest(tmp_path) == before


def test_a_warehouse_greenery_did_not_build_is_refused(tmp_path, capsys):
    (tmp_path / "w.duckdb").write_text("not a warehouse")
    assert _run("export-dbt", str(tmp_path / "dbt"), "--warehouse", str(tmp_path / "w.duckdb")) == ExitCode.BAD_INPUT
    assert "is not a warehouse greenery built" in capsys.readouterr().err
    assert not (tmp_path / "dbt").exists()


# --- dbt itself runs the export ------------------------------------------------------------------------------------

def _dbt_missing() -> str | None:
    if not config.DBT_BIN.is_file():
        return f"dbt is not installed in {config.DBT_BIN.parent.parent} (make dbt-test installs it)"
    return None


def _needs_dbt():
    missing = _dbt_missing()
    if missing and os.environ.get("GREENERY_REQUIRE_DBT"):  # `make dbt-test`: dbt must run, not be skipped
        pytest.fail(f"make dbt-test cannot run dbt: {missing}")
    if missing:
        pytest.skip(f"dbt tests skipped: {missing}")


def dbt_build(project: Path, command: str = "build") -> dict[str, tuple[str, int]]:
    """`dbt build` (or another dbt command) of an exported project; every data test's (status, failing
    rows) it ran, by greenery's name."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
    done = subprocess.run([str(config.DBT_BIN), command, "--profiles-dir", str(project), "--project-dir", str(project)],
                          cwd=project, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    nodes = json.loads((project / "target" / "manifest.json").read_text())["nodes"]
    results = json.loads((project / "target" / "run_results.json").read_text())["results"]
    assert all(r["status"] != "error" for r in results), [r["unique_id"] for r in results if r["status"] == "error"]
    return {nodes[r["unique_id"]]["name"]: (r["status"], r["failures"]) for r in results
            if r["unique_id"].startswith("test.")}


def _greenery_results(warehouse: Path) -> dict[str, tuple[str, int]]:
    results = json.loads(config.run_results_path(warehouse).read_text())["results"]
    return {r["name"]: (r["status"], r["failing_rows"]) for r in results}


def _mart_rows(con, catalog: str, mart: str) -> tuple[list, list]:
    columns = db.rows(con, "select column_name, data_type from information_schema.columns "
                           "where table_catalog = $c and table_schema = 'main' and table_name = $t "
                           "order by ordinal_position", {"c": catalog, "t": mart})
    text = ", ".join(f'"{name}"::varchar' for name, _ in columns)
    return columns, db.rows(con, f"select {text} from {catalog}.main.{mart} order by all")


def assert_same_as_greenery(warehouse: Path, project: Path, outcomes: dict[str, tuple[str, int]]) -> None:
    greenery = _greenery_results(warehouse)
    assert {n: s for n, (s, _) in outcomes.items()} == {n: s for n, (s, _) in greenery.items()}
    # dbt's accepted_values counts distinct wrong values, greenery counts rows; every other kind counts alike
    counted_alike = {t.name for t in MANIFEST.tests if t.kind != "accepted_values"}
    assert {n: c for n, (_, c) in outcomes.items() if n in counted_alike} == \
        {n: c for n, (_, c) in greenery.items() if n in counted_alike}
    con = db.connect()
    db.run(con, f"attach $path as {WAREHOUSE_ALIAS} (read_only)", {"path": str(warehouse)})
    db.run(con, "attach $path as dbt (read_only)", {"path": str(project / DBT_DATABASE)})
    for mart in MARTS:
        columns, rows = _mart_rows(con, WAREHOUSE_ALIAS, mart)
        assert rows, f"{mart} is empty: the comparison would prove nothing"
        assert _mart_rows(con, "dbt", mart) == (columns, rows), mart
    con.close()


@pytest.fixture(scope="module")
def shop_in_dbt(tmp_path_factory):
    _needs_dbt()
    root = tmp_path_factory.mktemp("dbt-shop")
    warehouse = root / "w.duckdb"
    build(DataSource(write_shop(root / "export"), "test", None), warehouse, history=root / "history.duckdb")
    export(root / "dbt", warehouse, MANIFEST)
    return warehouse, root / "dbt", dbt_build(root / "dbt")


def test_dbt_builds_the_shops_marts_and_test_results_as_greenery_does(shop_in_dbt):
    warehouse, project, outcomes = shop_in_dbt
    assert len(outcomes) == len(MANIFEST.tests)
    assert_same_as_greenery(warehouse, project, outcomes)


def test_dbt_builds_the_samples_marts_and_warnings_as_greenery_does(tmp_path):
    _needs_dbt()
    from greenery.sample import generate

    generate(tmp_path / "export", config.SAMPLE_SCALE, config.SAMPLE_SEED)
    warehouse = tmp_path / "w.duckdb"
    build(DataSource(tmp_path / "export", "test", None), warehouse, history=tmp_path / "history.duckdb")
    assert _run("export-dbt", str(tmp_path / "dbt"), "--warehouse", str(warehouse)) == ExitCode.OK
    outcomes = dbt_build(tmp_path / "dbt")
    assert {"warn"} <= {status for status, _ in outcomes.values()}  # the sample warns: outcomes differ in kind
    assert_same_as_greenery(warehouse, tmp_path / "dbt", outcomes)


def _faulty(rows) -> None:
    """Three faults, worked out by hand: a promo status no rule knows (accepted_values, warn), a
    four-digit ZIP code (assert_zipcode_five_digits, warn), and o1 charged 26.00 where its items
    (20.00) and shipping (5.00) add up to 25.00 (assert_order_total_adds_up, error)."""
    rows["promos"][0]["status"] = "expired"
    rows["addresses"][0]["zipcode"] = "2139"
    rows["orders"][0]["order_total"] = "26.0"


def test_dbt_ends_each_test_as_greenery_does_when_the_shop_fails_and_warns(tmp_path):
    """greenery refuses the build and keeps it as <warehouse>.rejected.duckdb; exported against that,
    dbt runs the models and then the tests (`dbt build` would skip what lies below a failure) and
    ends every test as greenery did."""
    _needs_dbt()
    from greenery.errors import DataTestFailure

    warehouse = tmp_path / "w.duckdb"
    with pytest.raises(DataTestFailure):
        build(DataSource(write_shop(tmp_path / "export", edit=_faulty), "test", None), warehouse,
              history=tmp_path / "history.duckdb")
    rejected = config.rejected_path(warehouse)
    greenery = _greenery_results(warehouse)  # written beside the warehouse, also for a refused build
    assert {n: r for n, r in greenery.items() if r[0] != "pass"} == {
        "accepted_values_stg_promos_promo_status": ("warn", 1),
        "assert_zipcode_five_digits": ("warn", 1),
        "assert_order_total_adds_up": ("fail", 1),
    }
    export(tmp_path / "dbt", rejected, MANIFEST)
    dbt_build(tmp_path / "dbt", "run")
    outcomes = dbt_build(tmp_path / "dbt", "test")
    assert {n: s for n, (s, _) in outcomes.items()} == {n: s for n, (s, _) in greenery.items()}
    assert outcomes["assert_order_total_adds_up"] == ("fail", 1)
