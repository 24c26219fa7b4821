"""`greenery export-dbt DIR`: the models and data tests as a dbt project (dbt-core with dbt-duckdb).

The same work, for a team that runs dbt: every model's SQL with `{{ source() }}` and `{{ ref() }}` in
place of the tables it reads, every singular data test under `tests/`, and the YAML beside each
folder with dbt's `unique`, `not_null`, `relationships` and `accepted_values` tests, each under
greenery's own name and severity. Table names are replaced in sqlglot's syntax tree (parsed and
rendered in DuckDB's dialect), never by searching the text, so a CTE or a column that happens to
share a model's name is never touched.

The raw tables are not loaded again by dbt: the profile attaches, read-only, a warehouse that
`greenery build` made, and the sources are its `raw` schema. That schema is the raw contract applied
(exact types, every refused value refused), which a dbt source reading the CSVs would not be; so the
dbt project always starts from exactly what greenery's models start from.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import yaml

from greenery import __version__, config
from greenery.contract import RAW_TABLES, TABLES_BY_NAME
from greenery.errors import UsageError
from greenery.outputs import atomic
from greenery.outputs.locking import exclusive
from greenery.outputs.ownership import check_dbt_target, read_dbt_stamp
from greenery.warehouse.manifest import DataTest, Manifest, ManifestError, Model

PROJECT = "greenery"  # the dbt project's and profile's name
SOURCE = "greenery_raw"  # {{ source('greenery_raw', 'orders') }}
WAREHOUSE_ALIAS = "greenery_warehouse"  # the attached greenery warehouse, as dbt's database name
DBT_DATABASE = "dbt.duckdb"  # where dbt builds the models, inside the project folder
JINJA = ("{{", "}}", "{%", "%}", "{#", "#}")  # dbt renders every SQL and YAML file with Jinja


class DbtExportError(ManifestError):
    """A model or data test cannot be written as dbt SQL as it stands (a project bug, not bad data)."""


def _no_jinja(text: str, where: str) -> None:
    """dbt renders SQL and YAML with Jinja: text of ours that looks like Jinja would be executed."""
    found = next((mark for mark in JINJA if mark in text), None)
    if found:
        raise DbtExportError(f"{where}: holds {found!r}, which dbt would read as Jinja")


def to_dbt_sql(sql: str, models: set[str], where: str) -> str:
    """One model's or data test's DuckDB SQL with `raw.<table>` as a source() and every model it reads
    as a ref(); rendered by sqlglot in DuckDB's dialect."""
    import sqlglot  # only for the export: `greenery build` never imports sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    _no_jinja(sql, where)
    try:
        trees = [t for t in sqlglot.parse(sql, read="duckdb") if t is not None]
    except SqlglotError as error:
        raise DbtExportError(f"{where}: sqlglot cannot parse it: {str(error).splitlines()[0]}") from None
    if len(trees) != 1:
        raise DbtExportError(f"{where}: expected exactly one statement, found {len(trees)}")
    tree = trees[0]
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}

    def jinja(call: str) -> exp.Var:
        return exp.Var(this="{{ " + call + " }}")  # a Var is rendered verbatim: the Jinja call as written

    def replace(node: exp.Expression) -> exp.Expression:
        if not isinstance(node, exp.Table) or not isinstance(node.this, exp.Identifier):
            return node  # a table function (read_csv, unnest...) or a subquery's alias: not a table name
        name, schema = node.name, node.db
        if node.catalog:
            raise DbtExportError(f"{where}: reads {node.sql('duckdb')}, a table in another database")
        if schema == "raw":
            if name not in TABLES_BY_NAME:
                raise DbtExportError(f"{where}: reads raw.{name}, which is not a raw table")
            call = f"source('{SOURCE}', '{name}')"
        elif schema:
            raise DbtExportError(f"{where}: reads {schema}.{name}; only raw.<table> and models are known")
        elif name in ctes:
            if name in models:
                raise DbtExportError(f"{where}: the CTE {name} shadows the model of that name; rename it")
            return node
        elif name in models:
            call = f"ref('{name}')"
        else:
            raise DbtExportError(f"{where}: reads {name}, which is neither a model nor a CTE")
        renamed = node.copy()
        renamed.set("this", jinja(call))
        renamed.set("db", None)
        if not renamed.alias:
            # `from stg_orders` then `stg_orders.order_id`: the columns still name the table
            renamed.set("alias", exp.TableAlias(this=exp.to_identifier(name)))
        return renamed

    try:
        return tree.transform(replace).sql("duckdb", pretty=True) + "\n"
    except SqlglotError as error:
        raise DbtExportError(f"{where}: sqlglot cannot render it: {str(error).splitlines()[0]}") from None


def _dump(document: dict, where: str) -> str:
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120)
    _no_jinja(text, where)
    return text


def _generic(test: DataTest) -> dict:
    """One of greenery's generic tests as dbt's: the same kind, name, severity and arguments."""
    config_ = {"severity": test.severity, "meta": {"rationale": test.rationale}}
    if test.handling:
        config_["meta"]["handling"] = test.handling
    entry: dict = {"name": test.name}
    if test.kind == "relationships":
        entry["arguments"] = {"to": f"ref('{test.arguments['to']}')", "field": test.arguments["field"]}
    elif test.kind == "accepted_values":
        entry["arguments"] = {"values": list(test.arguments["values"])}
    entry["config"] = config_
    return {test.kind: entry}


def _folder_yaml(folder: str, models: list[Model], tests: list[DataTest]) -> dict:
    by_column: dict[tuple[str, str], list[DataTest]] = {}
    for test in tests:
        if test.kind != "assertion":
            by_column.setdefault((test.model, test.column), []).append(test)
    entries = []
    for model in models:
        columns = []
        for column, description in model.columns.items():
            entry = {"name": column, "description": description}
            guards = by_column.pop((model.name, column), [])
            if guards:
                entry["data_tests"] = [_generic(t) for t in guards]
            columns.append(entry)
        meta = {"grain": model.grain, "key": list(model.key)}
        if model.serves:
            meta["serves"] = model.serves
        entries.append({"name": model.name, "description": model.description,
                        "config": {"materialized": model.materialized, "meta": meta}, "columns": columns})
    if by_column:
        (model, column), _ = next(iter(by_column.items()))
        raise DbtExportError(f"{folder}: a data test guards {model}.{column}, a column its YAML does not list")
    return {"version": 2, "models": entries}


def _sources_yaml() -> dict:
    tables = [{"name": t.name, "description": f"{t.file_name} of the export, loaded and typed by greenery's "
               "raw contract (greenery build).",
               "columns": [{"name": c.name, "data_type": c.type, **({"meta": {"personal_data": True}} if c.pii else {})}
                           for c in t.columns]}
              for t in RAW_TABLES]
    return {"version": 2, "sources": [{
        "name": SOURCE,
        "description": "The raw export as greenery loaded it: the `raw` schema of a warehouse `greenery build` "
                       "made, attached read-only (profiles.yml).",
        "database": WAREHOUSE_ALIAS,
        "schema": "raw",
        "tables": tables,
    }]}


def _singular_yaml(tests: list[DataTest]) -> dict:
    entries = []
    for test in tests:
        meta = {"model": test.model, "unit": test.unit, "rationale": test.rationale}
        if test.handling:
            meta["handling"] = test.handling
        entries.append({"name": test.name, "description": test.rationale,
                        "config": {"severity": test.severity, "meta": meta}})
    return {"version": 2, "data_tests": entries}


def _profiles(warehouse: Path, project: Path) -> dict:
    for path, what in ((warehouse, "the warehouse"), (project, "the dbt project")):
        if any(mark in str(path) for mark in ("{", "}")):
            raise UsageError(f"{what} {path}: a path with {{ or }} cannot be written into profiles.yml, which "
                             "dbt reads as Jinja; choose another path")
    return {PROJECT: {"target": "duckdb", "outputs": {"duckdb": {
        "type": "duckdb",
        "path": str(project / DBT_DATABASE),
        "threads": os.cpu_count() or 1,
        "attach": [{"path": str(warehouse), "alias": WAREHOUSE_ALIAS, "read_only": True}],
    }}}}


def _dbt_project_yaml() -> dict:
    return {
        "name": PROJECT,
        "version": __version__,
        "config-version": 2,
        "profile": PROJECT,
        "model-paths": ["models"],
        "test-paths": ["tests"],
        # Nothing leaves the machine: no usage statistics, no look-up of dbt's latest version.
        "flags": {"send_anonymous_usage_stats": False, "version_check": False},
        "models": {PROJECT: {"+materialized": "table"}},  # greenery's default; views say so in their YAML
    }


README = """# Greenery's models and data tests as a dbt project

Written by `greenery export-dbt` (greenery {version}); a new export into this folder rewrites the
files it wrote, listed in `{stamp}`, and leaves what dbt writes (`target/`, `logs/`, `{database}`) alone.

The sources are the `raw` schema of the warehouse `greenery build` made, attached read-only
(`profiles.yml` names it: {warehouse}). Build it first, then run, from this folder:

    greenery build --warehouse {warehouse}
    dbt build --profiles-dir .

dbt builds the models into `{database}` here. Edit the models and tests in greenery, not here:
the next export replaces these files.
"""


def project_files(manifest: Manifest, warehouse: Path, project: Path) -> dict[str, str]:
    """Every file of the dbt project, by its path inside the project folder."""
    names = set(manifest.models)
    files: dict[str, str] = {}
    folders: dict[str, list[Model]] = {}
    for model in manifest.build_order():
        relative = model.path.relative_to(config.MODELS_DIR).as_posix()
        files[f"models/{relative}"] = to_dbt_sql(model.sql, names, str(model.path))
        folders.setdefault(model.folder, []).append(model)
    for folder, models in sorted(folders.items()):
        path = f"models/{folder}/_{folder.rsplit('/', 1)[-1]}.yml"
        guarding = [t for t in manifest.tests if t.model in {m.name for m in models}]
        files[path] = _dump(_folder_yaml(folder, models, guarding), path)
    files["models/_sources.yml"] = _dump(_sources_yaml(), "models/_sources.yml")
    singular = [t for t in manifest.tests if t.kind == "assertion"]
    for test in singular:
        files[f"tests/{test.name}.sql"] = to_dbt_sql(test.sql, names, f"data test {test.name}")
    files["tests/_data_tests.yml"] = _dump(_singular_yaml(singular), "tests/_data_tests.yml")
    files["dbt_project.yml"] = _dump(_dbt_project_yaml(), "dbt_project.yml")
    files["profiles.yml"] = yaml.safe_dump(_profiles(warehouse, project), sort_keys=False, allow_unicode=True)
    files["README.md"] = README.format(version=__version__, stamp=config.DBT_STAMP, database=DBT_DATABASE,
                                       warehouse=warehouse)
    return files


def _stamp(files) -> str:
    return json.dumps({"written_by": "greenery export-dbt", "greenery_version": __version__,
                       "files": sorted(files)}, indent=2) + "\n"


def export(project: Path, warehouse: Path, manifest: Manifest) -> list[str]:
    """Write the dbt project into `project` (missing, empty, or one this command wrote); return the files
    written. Every file is made before the first is written, so a model that cannot be exported
    leaves the folder as it was; each file is replaced in one rename, and the stamp lists a file
    before it is written, so that an export cut short is still ours to write over."""
    project, warehouse = Path(os.path.abspath(project)), Path(os.path.abspath(warehouse))
    check_dbt_target(project)
    files = project_files(manifest, warehouse, project)
    with exclusive(project, "the dbt project"):
        check_dbt_target(project)  # again under the lock: another export may have written meanwhile
        previous = set(read_dbt_stamp(project).get("files", []))
        present = {p.relative_to(project).as_posix() for p in project.rglob("*")
                   if p.is_file() and p.parts[len(project.parts)] not in config.DBT_OWN_FILES} \
            if project.is_dir() else set()
        project.mkdir(parents=True, exist_ok=True)
        atomic.write_text(project / config.DBT_STAMP, _stamp(previous | set(files)))
        for name, text in files.items():
            target = project / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if not (target.is_file() and target.read_text() == text):
                atomic.write_text(target, text)
        for name in sorted((previous & present) - set(files)):  # ours, written before, gone from the models
            (project / name).unlink()
            with contextlib.suppress(OSError):  # an emptied folder of ours goes too; a full one stays
                (project / name).parent.rmdir()
        atomic.write_text(project / config.DBT_STAMP, _stamp(files))
    return sorted(files)
