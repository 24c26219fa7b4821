"""The project's models and data tests, read from the SQL files and the YAML beside them.

Each layer folder under models/ holds one SQL file per model (named after the table it makes),
the SQL assertions that guard it, and one YAML file documenting both. Dependencies are read from
the SQL with DuckDB's own parser, so the build order can never drift from the code. What the
parsers make of each text is kept by the text's digest (Parsed), so that a build whose models did
not change does not parse them again.
"""

from __future__ import annotations

import contextlib
import graphlib
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from greenery import config
from greenery.config import MODELS_DIR
from greenery.contract import TABLES_BY_NAME
from greenery.db import duckdb
from greenery.outputs import atomic, ownership

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


def _parse_tables(sql: str) -> set[str]:
    names = duckdb.get_table_names(sql, qualified=True)
    return {name.split(" AS ")[0].strip().strip('"') for name in names}


def _parse_yaml(text: str):
    import yaml  # 10 ms of imports: only when a text is not in the parse cache

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml's parser: 5x faster


def _plain(value) -> bool:
    """Whether JSON holds `value` exactly: text keys; text, whole and real numbers, booleans, null, lists."""
    if value is None or type(value) in (str, int, float, bool):
        return True
    if type(value) is list:
        return all(_plain(item) for item in value)
    return type(value) is dict and all(type(key) is str and _plain(item) for key, item in value.items())


def _parsers() -> str:
    """The parsers whose output the cache holds: DuckDB's version, and PyYAML's (its package's first file,
    which names the version, found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("yaml")
    try:
        pyyaml = hashlib.sha256(Path(spec.origin).read_bytes()).hexdigest()[:16] if spec and spec.origin else "none"
    except OSError:
        pyyaml = "unknown"
    return f"duckdb {duckdb.__version__}, pyyaml {pyyaml}"


class Parsed:
    """What PyYAML's safe loader and DuckDB's parser made of a text, by the text's sha256, kept in a JSON
    file (config.parse_cache_path(): $GREENERY_PARSE_CACHE, else data/cache/parsed.json).

    Reading the models' YAML and finding the tables of each SQL file (with an in-memory DuckDB instance
    for the parser) cost ~50 ms of CPU on every build; reading their results back costs ~3 ms. Only the
    parsers' outputs are kept: every check of load_manifest still runs on them, so a manifest read from
    the cache is the manifest the files make. A YAML document JSON cannot hold exactly (a date, a key
    that is not text) is parsed each time. The parsers' versions are part of the file: other parsers,
    an empty cache. The file is read only when this user owns it, and written only where nothing is, or
    over a cache of ours (this shape, this user's: checked again just before), through a new file and one
    rename; a lost update between two runs is only a parse the next time. An entry damaged since it was
    written (not JSON) is parsed again, never a failed build."""

    FORMAT = 1
    KEEP = 2_000  # entries per kind; the oldest go first (a test's altered models, a file edited often)

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()  # the manifest is read on a thread, the snapshots on another
        self._kinds: dict[str, dict[str, object]] | None = None
        self._writable = False
        self._changed = False

    def _entries(self, kind: str) -> dict[str, object]:
        if self._kinds is None:  # read once, on first use
            self._kinds = {"yaml": {}, "tables": {}}
            found = ownership.read_own_json(self.path, mine=True)  # another user's file: never adopted
            self._writable = ownership.kind(self.path) is None or self._ours(found)
            if self._ours(found) and found["parsers"] == _parsers():
                self._kinds = {name: dict(found[name]) for name in self._kinds}
        return self._kinds[kind]

    @classmethod
    def _ours(cls, found: object) -> bool:
        return (isinstance(found, dict) and found.get("format") == cls.FORMAT and isinstance(found.get("parsers"), str)
                and isinstance(found.get("yaml"), dict) and all(isinstance(v, str) for v in found["yaml"].values())
                and isinstance(found.get("tables"), dict)
                and all(isinstance(v, list) and all(isinstance(n, str) for n in v) for v in found["tables"].values()))

    def _get(self, kind: str, text: str) -> tuple[str, object | None]:
        key = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        with self._lock:
            return key, self._entries(kind).get(key)

    def _put(self, kind: str, key: str, value: object) -> None:
        with self._lock:
            entries = self._entries(kind)
            entries[key] = value
            for old in list(entries)[:max(0, len(entries) - self.KEEP)]:
                del entries[old]
            self._changed = True

    def yaml(self, text: str):
        """yaml.safe_load(text) (libyaml's loader where built in); a new object each call."""
        key, found = self._get("yaml", text)
        if found is not None:
            with contextlib.suppress(ValueError):  # an entry damaged since it was written: parsed again
                return json.loads(found)
        document = _parse_yaml(text)
        if _plain(document):
            self._put("yaml", key, json.dumps(document))
        return document

    def tables(self, sql: str) -> set[str]:
        """The tables DuckDB's parser finds in `sql` (table_references)."""
        key, found = self._get("tables", sql)
        if found is not None:
            return set(found)
        names = _parse_tables(sql)
        self._put("tables", key, sorted(names))
        return names

    def save(self) -> None:
        """Write what was parsed since the file was read, if anything was and the file is ours to write."""
        with self._lock:
            if not (self._changed and self._writable):
                return
            if ownership.kind(self.path) is not None and not self._ours(ownership.read_own_json(self.path, mine=True)):
                return  # someone put a file there since it was read: theirs, never written over
            document = {"format": self.FORMAT, "parsers": _parsers(), **self._kinds}
            self._changed = False
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                atomic.write_text(self.path, json.dumps(document, separators=(",", ":")))
            except OSError:
                pass  # a read-only data folder: the texts are parsed each time, nothing else changes


_CACHES: dict[Path, Parsed] = {}
_CACHES_LOCK = threading.Lock()


def parsed() -> Parsed:
    """This process's parse cache at config.parse_cache_path() (one per path: the tests change it)."""
    path = config.absolute(config.parse_cache_path())
    with _CACHES_LOCK:
        if path not in _CACHES:
            _CACHES[path] = Parsed(path)
        return _CACHES[path]


def parse_yaml(text: str):
    """A YAML text as PyYAML's safe loader reads it, from the parse cache when it was read before."""
    return parsed().yaml(text)


def table_references(sql: str) -> set[str]:
    """Tables a query reads, as `name` or `schema.name` (CTE names excluded), by DuckDB's parser
    (from the parse cache when this very text was parsed before)."""
    return parsed().tables(sql)


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
    doc = parse_yaml(yml_files[0].read_text()) or {}
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
    parsed().save()
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
