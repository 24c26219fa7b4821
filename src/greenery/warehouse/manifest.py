"""The project's models and data tests, read from the SQL files and the YAML beside them.

Each layer folder under models/ holds one SQL file per model (named after the table it makes),
the SQL assertions that guard it, and one YAML file documenting both. Dependencies are read from
the SQL with DuckDB's own parser, so the build order can never drift from the code.
"""

from __future__ import annotations

import graphlib
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from greenery.config import MODELS_DIR
from greenery.contract import TABLES_BY_NAME
from greenery.db import duckdb

YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser where built in: 5x faster
LAYERS = ("staging", "intermediate", "marts")
SEVERITIES = ("error", "warn")
MATERIALIZATIONS = ("table", "view")
GENERIC_TESTS = ("unique", "not_null", "relationships", "accepted_values")


class ManifestError(Exception):
    """The models or their YAML contradict each other (a project bug, not bad data)."""


@dataclass(frozen=True)
class Model:
    name: str
    layer: str  # staging, intermediate or marts
    area: str | None  # core, marketing or product for marts
    path: Path
    sql: str
    description: str
    grain: str
    serves: str  # marts: the questions it answers
    key: tuple[str, ...]
    columns: dict[str, str]  # documented column -> description
    depends_on: frozenset[str]  # other models
    reads_raw: frozenset[str]  # raw tables
    materialized: str = "table"  # view: recomputed when read (staging renames cost nothing that way)

    @property
    def key_sql(self) -> str:
        """An expression naming a row of this model, for listing failing rows."""
        parts = [f'"{k}"::varchar' for k in self.key]
        return parts[0] if len(parts) == 1 else f"concat_ws(' / ', {', '.join(parts)})"

    @property
    def folder(self) -> str:
        return f"{self.layer}/{self.area}" if self.area else self.layer

    @property
    def title(self) -> str:
        """The model's name in words, for readers who do not read SQL: fct_order_items -> "Order items"."""
        words = re.sub(r"^(stg|int|fct|dim)_", "", self.name).replace("_", " ")
        return words[:1].upper() + words[1:]

    @property
    def row_noun(self) -> str | None:
        """What one row is, from the grain "one row per order" -> "order"; None for a compound grain."""
        match = re.fullmatch(r"one row per ([a-z]+(?: [a-z]+)?)", self.grain.strip())
        return match.group(1) if match and " and " not in match.group(1) else None


@dataclass(frozen=True)
class DataTest:
    name: str
    kind: str  # a generic kind or "assertion"
    model: str
    column: str | None
    severity: str
    rationale: str
    sql: str  # returns the failing rows; the first column names each one
    handling: str = ""  # what the models do with rows that fail (for the data-tests chapter)
    params: dict = field(default_factory=dict, hash=False, compare=False)
    unit: str = "row"  # what one failing row is (an assertion may return accounts, not rows of its model)
    arguments: dict = field(default_factory=dict, hash=False, compare=False)  # a generic test's, as in the YAML
    # The tables its SQL reads (`raw.<table>` or a model), None when not known: `greenery build` runs a test
    # beside the models when it reads only what the load committed (greenery.warehouse.build).
    reads: frozenset[str] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Manifest:
    models: dict[str, Model]
    tests: list[DataTest]

    def failing(self, test_name: str, count: int) -> str:
        """`count` failing rows of a test in words: "1 row", "3 accounts"."""
        unit = next((t.unit for t in self.tests if t.name == test_name), "row")
        return f"{count:,} {unit}{'' if count == 1 else 's'}"

    def found(self, test_name: str, count: int) -> str:
        """`count` failing rows of a test in a reader's words: "21 orders", "1 account", "3 rows"
        (rows of the tested model are named by its grain where it has a one-noun grain)."""
        test = next((t for t in self.tests if t.name == test_name), None)
        noun = test.unit if test else "row"
        if noun == "row" and test and test.model in self.models:
            noun = self.models[test.model].row_noun or "row"
        plural = noun + ("es" if noun.endswith(("s", "x", "ch", "sh")) else "s")
        return f"{count:,} {noun if count == 1 else plural}"

    def build_order(self) -> list[Model]:
        sorter = graphlib.TopologicalSorter({m.name: m.depends_on for m in self.models.values()})
        sorter.prepare()
        order: list[str] = []
        while sorter.is_active():
            ready = sorted(sorter.get_ready())  # deterministic among independent models
            order.extend(ready)
            sorter.done(*ready)
        return [self.models[name] for name in order]

    def edges(self) -> list[tuple[str, str]]:
        """(upstream, downstream) pairs, raw tables named `raw.<table>`."""
        pairs = []
        for model in self.models.values():
            pairs += [(f"raw.{t}", model.name) for t in sorted(model.reads_raw)]
            pairs += [(up, model.name) for up in sorted(model.depends_on)]
        return pairs


def table_references(sql: str) -> set[str]:
    """Tables a query reads, as `name` or `schema.name` (CTE names excluded), by DuckDB's parser."""
    names = duckdb.get_table_names(sql, qualified=True)
    return {name.split(" AS ")[0].strip().strip('"') for name in names}


def _severity(config: dict, where: str) -> tuple[str, str]:
    severity = config.get("severity", "error")
    rationale = (config.get("rationale") or "").strip()
    if severity not in SEVERITIES:
        raise ManifestError(f"{where}: severity must be one of {SEVERITIES}, not {severity!r}")
    if not rationale:
        raise ManifestError(f"{where}: every data test needs a one-line rationale")
    return severity, rationale


def _generic_test(model: Model, column: str, kind: str, config: dict, where: str) -> DataTest:
    severity, rationale = _severity(config, where)
    col, table, key = f'"{column}"', model.name, model.key_sql
    params: dict = {}
    arguments: dict = {}
    if kind == "unique":
        sql = f"select {col}::varchar from {table} where {col} is not null group by {col} having count(*) > 1"
    elif kind == "not_null":
        sql = f"select {key} from {table} where {col} is null"
    elif kind == "relationships":
        parent, field_ = config["to"], config.get("field", column)
        arguments = {"to": parent, "field": field_}
        sql = (
            f"select {key} from {table} as child where child.{col} is not null and not exists "
            f'(select 1 from {parent} as parent where parent."{field_}" = child.{col})'
        )
    elif kind == "accepted_values":
        params = {"accepted": [str(v) for v in config["values"]]}
        arguments = {"values": params["accepted"]}
        sql = f"select {key} from {table} where {col} is not null and not list_contains($accepted, {col}::varchar)"
    else:
        raise ManifestError(f"{where}: unknown data test {kind!r}; use one of {GENERIC_TESTS} or an assertion")
    suffix = f"__{config['to']}" if kind == "relationships" else ""
    name = f"{kind}_{table}_{column}{suffix}"
    reads = frozenset({table, config["to"]} if kind == "relationships" else {table})  # the SQL above: no parse
    return DataTest(name, kind, table, column, severity, rationale, sql, (config.get("handling") or "").strip(), params,
                    arguments=arguments, reads=reads)


def data_tests_dir(models_dir: Path) -> Path:
    """Where the singular tests' SQL lives: `data_tests/` beside `models/` (dbt's tests/ folder)."""
    return models_dir.parent / "data_tests"


def _read_folder(folder: Path, models_dir: Path) -> tuple[list[Model], list[DataTest]]:
    yml_files = sorted(folder.glob("_*.yml"))
    if len(yml_files) != 1:
        raise ManifestError(f"{folder}: expected one _<folder>.yml documenting its models, found {len(yml_files)}")
    doc = yaml.load(yml_files[0].read_text(), Loader=YAML_LOADER) or {}
    relative = folder.relative_to(models_dir).parts
    layer, area = relative[0], (relative[1] if len(relative) > 1 else None)
    folder_materialized = doc.get("materialized", "table")
    sql_files = {p.stem: p for p in folder.glob("*.sql")}
    declared_models = {m["name"]: m for m in doc.get("models", [])}
    declared_tests = {t["name"]: t for t in doc.get("data_tests", [])}
    undeclared = set(sql_files) - set(declared_models)
    missing = set(declared_models) - set(sql_files)
    if undeclared or missing:
        raise ManifestError(
            f"{yml_files[0]}: SQL files and YAML disagree "
            f"(undocumented: {sorted(undeclared)}, documented without SQL: {sorted(missing)})"
        )

    models = []
    for name, entry in declared_models.items():
        sql = sql_files[name].read_text()
        refs = table_references(sql)
        raw = {r.split(".", 1)[1] for r in refs if r.startswith("raw.")}
        for field_ in ("description", "grain", "key"):
            if not entry.get(field_):
                raise ManifestError(f"{yml_files[0]}: model {name} needs a {field_}")
        key = entry["key"]
        materialized = entry.get("materialized", folder_materialized)
        if materialized not in MATERIALIZATIONS:
            raise ManifestError(f"{yml_files[0]}: {name}: materialized must be one of {MATERIALIZATIONS}")
        models.append(
            Model(
                name=name,
                layer=layer,
                area=area,
                path=sql_files[name],
                sql=sql,
                description=entry["description"].strip(),
                grain=entry["grain"].strip(),
                serves=(entry.get("serves") or "").strip(),
                key=tuple(key if isinstance(key, list) else [key]),
                columns={c["name"]: (c.get("description") or "").strip() for c in entry.get("columns", [])},
                depends_on=frozenset(r for r in refs if not r.startswith("raw.")),
                reads_raw=frozenset(raw),
                materialized=materialized,
            )
        )

    tests = [t for model in models for t in _column_tests(model, declared_models[model.name], yml_files[0])]
    for name, entry in declared_tests.items():
        severity, rationale = _severity(entry, f"{yml_files[0]}: {name}")
        path = data_tests_dir(models_dir) / f"{name}.sql"
        if not path.is_file():
            raise ManifestError(f"{yml_files[0]}: data test {name} is declared, but {path} does not exist")
        unit = str(entry.get("unit", "row")).strip()
        if not re.fullmatch(r"[a-z]+", unit):
            raise ManifestError(f"{yml_files[0]}: {name}: unit must be one lower-case word (row, account...), "
                                f"not {unit!r}")
        sql = path.read_text()
        tests.append(
            DataTest(name, "assertion", entry["model"], entry.get("column"), severity, rationale,
                     sql, (entry.get("handling") or "").strip(), unit=unit, reads=frozenset(table_references(sql)))
        )
    return models, tests


def _column_tests(model: Model, entry: dict, where: Path) -> list[DataTest]:
    tests = []
    for column in entry.get("columns", []):
        for test in column.get("data_tests", []):
            kind, config = next(iter(test.items())) if isinstance(test, dict) else (test, {})
            where_ = f"{where}: {model.name}.{column['name']}"
            tests.append(_generic_test(model, column["name"], kind, config or {}, where_))
    return tests


def _check(manifest: Manifest) -> None:
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    for model in manifest.models.values():
        unknown = model.depends_on - set(manifest.models)
        if unknown:
            raise ManifestError(f"{model.path}: reads unknown table(s) {sorted(unknown)}")
        bad_raw = model.reads_raw - set(TABLES_BY_NAME)
        if bad_raw:
            raise ManifestError(f"{model.path}: reads unknown raw table(s) {sorted(bad_raw)}")
        if model.reads_raw and model.layer != "staging":
            raise ManifestError(f"{model.path}: only staging models read raw tables")
        if model.layer == "staging" and model.depends_on:
            raise ManifestError(f"{model.path}: staging models read raw tables only")
        for upstream in map(manifest.models.get, model.depends_on):
            upward = rank[upstream.layer] > rank[model.layer]
            sideways_mart = (model.layer == "marts" and upstream.layer == "marts"
                             and upstream.area not in ("core", model.area))
            if upward or sideways_mart:
                raise ManifestError(f"{model.path}: {model.folder} may not read {upstream.folder}/{upstream.name}")
    for test in manifest.tests:
        if test.model not in manifest.models:
            raise ManifestError(f"data test {test.name} guards unknown model {test.model}")
    names = [t.name for t in manifest.tests]
    if len(names) != len(set(names)):
        raise ManifestError("two data tests share a name")


@cache
def load_manifest(models_dir: Path = MODELS_DIR) -> Manifest:
    models: dict[str, Model] = {}
    tests: list[DataTest] = []
    for yml in sorted(models_dir.rglob("_*.yml")):
        folder_models, folder_tests = _read_folder(yml.parent, models_dir)
        for model in folder_models:
            if model.name in models:
                raise ManifestError(f"{model.path}: a model named {model.name} already exists")
            models[model.name] = model
        tests += folder_tests
    declared = {t.name for t in tests if t.kind == "assertion"}
    orphans = sorted(p.name for p in data_tests_dir(models_dir).glob("*.sql") if p.stem not in declared)
    if orphans:
        raise ManifestError(f"{data_tests_dir(models_dir)}: {orphans[0]} is declared under no folder's data_tests")
    manifest = Manifest(models, tests)
    _check(manifest)
    return manifest


def spark_sql(manifest: Manifest) -> dict[str, str]:
    """Every model's and data test's SQL as Spark SQL (`greenery build --engine spark`), by name.

    Raises ManifestError naming the file whose SQL does not transpile, or transpiles into something
    that would mean another thing on Spark (see greenery.engines.transpile)."""
    from greenery.warehouse.engines.transpile import TranspileError, to_spark  # sqlglot: only when Spark is asked for

    translated = {}
    for name, sql, where in [*((m.name, m.sql, m.path) for m in manifest.models.values()),
                             *((t.name, t.sql, f"data test {t.name} on {t.model}") for t in manifest.tests)]:
        try:
            translated[name] = to_spark(sql)
        except TranspileError as error:
            raise ManifestError(f"{where}: does not transpile to Spark SQL: {error}") from None
    return translated
