"""The models' YAML and SQL agree, dependencies come from the SQL, layers read only downward."""

from __future__ import annotations

import os
import re
import shutil

import pytest

from greenery.config import MODELS_DIR
from greenery.warehouse.manifest import ManifestError, data_tests_dir, load_manifest, table_references


def test_dependencies_are_read_from_the_sql():
    sql = "with a as (select * from stg_orders o join raw.users u on o.user_id = u.user_id) select * from a, dim_x"
    assert table_references(sql) == {"stg_orders", "raw.users", "dim_x"}
    manifest = load_manifest()
    assert manifest.models["fct_orders"].depends_on == {"stg_orders", "stg_promos", "int_order_item_totals"}
    assert manifest.models["stg_orders"].reads_raw == {"orders"}


def test_build_order_puts_every_model_after_what_it_reads():
    manifest = load_manifest()
    position = {m.name: i for i, m in enumerate(manifest.build_order())}
    for model in manifest.models.values():
        assert all(position[up] < position[model.name] for up in model.depends_on), model.name


def test_every_model_is_documented_with_grain_and_every_column():
    for model in load_manifest().models.values():
        assert model.grain and model.description and model.key, model.name
        assert model.columns, f"{model.name} documents no columns"


def test_every_data_test_has_severity_and_rationale():
    tests = load_manifest().tests
    assert len(tests) >= 40
    assert {t.severity for t in tests} == {"error", "warn"}
    assert all(len(t.rationale) > 20 for t in tests)


def test_one_staging_model_per_raw_table():
    from greenery.contract import RAW_TABLES

    staging = [m for m in load_manifest().models.values() if m.layer == "staging"]
    assert sorted(m.name for m in staging) == sorted(f"stg_{t.name}" for t in RAW_TABLES)


def _copy_models(tmp_path):
    target = tmp_path / "models"
    shutil.copytree(MODELS_DIR, target)
    shutil.copytree(data_tests_dir(MODELS_DIR), data_tests_dir(target))
    load_manifest.cache_clear()
    return target


def test_undocumented_sql_file_is_refused(tmp_path):
    models = _copy_models(tmp_path)
    (models / "marts/core/fct_new.sql").write_text("select * from fct_orders")
    with pytest.raises(ManifestError, match="undocumented: \\['fct_new'\\]"):
        load_manifest(models)


def test_a_singular_test_declared_nowhere_is_refused(tmp_path):
    models = _copy_models(tmp_path)
    (data_tests_dir(models) / "assert_forgotten.sql").write_text("select 1 where false")
    with pytest.raises(ManifestError, match="assert_forgotten.sql is declared under no folder's data_tests"):
        load_manifest(models)


def test_failing_rows_are_counted_in_the_unit_a_test_declares():
    manifest = load_manifest()
    assert manifest.failing("assert_user_sessions_plausible", 1) == "1 account"  # one row per account
    assert manifest.failing("assert_timestamps_plausible", 2) == "2 timestamps"
    assert manifest.failing("unique_stg_orders_order_id", 1) == "1 row"  # generic tests: rows of their model
    assert manifest.failing("assert_order_total_adds_up", 1_234) == "1,234 rows"  # no unit declared: rows


def test_failing_rows_in_a_readers_words_are_named_by_the_models_grain():
    manifest = load_manifest()
    assert manifest.found("assert_shipped_orders_have_estimate", 21) == "21 orders"  # stg_orders: one row per order
    assert manifest.found("unique_stg_addresses_address_id", 2) == "2 addresses"
    assert manifest.found("unique_stg_promos_promo_id", 1) == "1 promo code"  # a grain of two words
    assert manifest.found("assert_user_sessions_plausible", 3) == "3 accounts"  # a declared unit wins
    assert manifest.found("relationships_stg_order_items_order_id__stg_orders", 4) == "4 rows"  # order and product


def test_model_titles_drop_the_layer_prefix():
    models = load_manifest().models
    assert models["fct_order_items"].title == "Order items"
    assert models["dim_user_order_history"].title == "User order history"
    assert models["stg_users"].title == "Users"


def test_what_the_data_tests_page_shows_above_its_fold_names_no_model_column_or_parameter():
    # The book lists the tests that warn (an error stops it) by their rationale and handling, in the
    # answer a manager reads: a snake_case name (fct_account_traffic, was_delivered_late) would not read.
    for test in load_manifest().tests:
        if test.severity == "warn":
            assert not re.search(r"\b[a-z]+_[a-z_]+\b", f"{test.rationale} {test.handling}"), test.name


def test_a_unit_that_is_not_one_word_is_refused(tmp_path):
    models = _copy_models(tmp_path)
    staging = models / "staging" / "_staging.yml"
    staging.write_text(staging.read_text().replace("    unit: account\n", "    unit: <b>accounts</b>\n"))
    with pytest.raises(ManifestError, match="assert_user_sessions_plausible: unit must be one lower-case word"):
        load_manifest(models)


def test_a_mart_reading_raw_is_refused(tmp_path):
    models = _copy_models(tmp_path)
    (models / "marts/core/dim_products.sql").write_text("select * from raw.products")
    with pytest.raises(ManifestError, match="only staging models read raw tables"):
        load_manifest(models)


def test_marketing_may_not_read_product(tmp_path):
    models = _copy_models(tmp_path)
    path = models / "marts/marketing/fct_order_promos.sql"
    path.write_text(path.read_text().replace("select * from fct_orders", "select * from fct_orders, fct_sessions"))
    with pytest.raises(ManifestError, match="marts/marketing may not read marts/product/fct_sessions"):
        load_manifest(models)


def _fresh_process(monkeypatch, cache_path):
    """What a new process sees: the parse cache at `cache_path`, nothing parsed or read yet."""
    from greenery.warehouse import manifest as module

    monkeypatch.setenv("GREENERY_PARSE_CACHE", str(cache_path))
    monkeypatch.setattr(module, "_CACHES", {})
    load_manifest.cache_clear()
    return module


def _parsers_refuse(monkeypatch, module):
    def refuse(text):
        raise AssertionError(f"parsed again: {text[:40]!r}")

    monkeypatch.setattr(module, "_parse_tables", refuse)
    monkeypatch.setattr(module, "_parse_yaml", refuse)


def test_a_manifest_read_back_from_the_parse_cache_is_the_one_its_files_make(tmp_path, monkeypatch):
    """The second build of unchanged models parses nothing (no YAML, no DuckDB parser) and gets the same
    manifest: every model, every test with its parameters, arguments and the tables it reads."""
    models = _copy_models(tmp_path)
    module = _fresh_process(monkeypatch, tmp_path / "cache" / "parsed.json")
    fresh = load_manifest(models)
    assert (tmp_path / "cache" / "parsed.json").is_file()
    module = _fresh_process(monkeypatch, tmp_path / "cache" / "parsed.json")
    _parsers_refuse(monkeypatch, module)
    again = load_manifest(models)
    assert again == fresh and list(again.models) == list(fresh.models)
    assert [(t.params, t.arguments, t.reads) for t in again.tests] == [(t.params, t.arguments, t.reads) for t in fresh.tests]
    assert again.models["fct_orders"].depends_on == {"stg_orders", "stg_promos", "int_order_item_totals"}
    load_manifest.cache_clear()


def test_a_text_is_found_in_the_parse_cache_by_its_content_only(tmp_path, monkeypatch):
    """Kept by the text's digest: the same SQL is not parsed again, an edited one is (and its answer kept)."""
    path = tmp_path / "parsed.json"
    first = _fresh_process(monkeypatch, path).parsed()
    assert first.tables("select * from stg_orders as o join raw.users as u on o.user_id = u.user_id") == {"stg_orders", "raw.users"}
    first.save()
    module = _fresh_process(monkeypatch, path)
    calls = []
    real = module._parse_tables
    monkeypatch.setattr(module, "_parse_tables", lambda sql: calls.append(sql) or real(sql))
    again = module.parsed()
    assert again.tables("select * from stg_orders as o join raw.users as u on o.user_id = u.user_id") == {"stg_orders", "raw.users"}
    assert calls == []
    assert again.tables("with a as (select 1) select * from a, dim_x") == {"dim_x"}  # edited: parsed
    assert calls == ["with a as (select 1) select * from a, dim_x"]
    load_manifest.cache_clear()


def test_a_yaml_document_json_cannot_hold_is_parsed_each_time(tmp_path, monkeypatch):
    """A date (or a key that is not text) would come back from JSON as something else: never kept."""
    import datetime

    path = tmp_path / "parsed.json"
    module = _fresh_process(monkeypatch, path)
    text = "when: 2024-01-02\n"
    assert module.parsed().yaml(text) == {"when": datetime.date(2024, 1, 2)}
    assert module.parsed().yaml("a: [1, 2.5, true, null, x]\n") == {"a": [1, 2.5, True, None, "x"]}
    module.parsed().save()
    module = _fresh_process(monkeypatch, path)
    assert module.parsed().yaml(text) == {"when": datetime.date(2024, 1, 2)}  # parsed again, still a date
    _parsers_refuse(monkeypatch, module)
    assert module.parsed().yaml("a: [1, 2.5, true, null, x]\n") == {"a": [1, 2.5, True, None, "x"]}
    load_manifest.cache_clear()


@pytest.mark.parametrize("foreign", ["not json", '{"format": 1, "parsers": "x", "yaml": [], "tables": {}}', "link"])
def test_a_file_at_the_parse_cache_path_that_is_not_ours_is_never_read_or_written(tmp_path, monkeypatch, foreign):
    path = tmp_path / "parsed.json"
    if foreign == "link":
        (tmp_path / "elsewhere.json").write_text("{}")
        path.symlink_to(tmp_path / "elsewhere.json")
    else:
        path.write_text(foreign)
    module = _fresh_process(monkeypatch, path)
    assert module.parsed().tables("select * from stg_orders") == {"stg_orders"}
    module.parsed().save()
    if foreign == "link":
        assert path.is_symlink() and (tmp_path / "elsewhere.json").read_text() == "{}"
    else:
        assert path.read_text() == foreign
    load_manifest.cache_clear()


def test_a_parse_cache_of_other_parsers_is_not_used(tmp_path, monkeypatch):
    """Another DuckDB or PyYAML may read a text otherwise: their answers are dropped, ours written instead."""
    import hashlib
    import json

    path = tmp_path / "parsed.json"
    sql = "select * from stg_orders"
    key = hashlib.sha256(sql.encode()).hexdigest()
    path.write_text(json.dumps({"format": 1, "parsers": "duckdb 0.0.1, pyyaml 0", "yaml": {}, "tables": {key: ["wrong"]}}))
    module = _fresh_process(monkeypatch, path)
    assert module.parsed().tables(sql) == {"stg_orders"}
    module.parsed().save()
    written = json.loads(path.read_text())
    assert written["parsers"] == module._parsers() and written["tables"] == {key: ["stg_orders"]}
    load_manifest.cache_clear()


def _planted(path, parsers, yaml=None, tables=None):
    import json

    path.write_text(json.dumps({"format": 1, "parsers": parsers, "yaml": yaml or {}, "tables": tables or {}}))


def test_a_damaged_entry_of_the_parse_cache_is_parsed_again_not_a_failed_build(tmp_path, monkeypatch):
    """An entry of ours that is no longer JSON (a disk's error, an edit) failed every build with exit 5
    (`unexpected JSONDecodeError`) until the cache was found and deleted by hand: it is parsed again, and
    the entry written anew."""
    import hashlib
    import json

    path = tmp_path / "parsed.json"
    module = _fresh_process(monkeypatch, path)
    text = "models:\n  - name: a\n"
    key = hashlib.sha256(text.encode()).hexdigest()
    _planted(path, module._parsers(), yaml={key: "{not json"})
    assert module.parsed().yaml(text) == {"models": [{"name": "a"}]}
    module.parsed().save()
    assert json.loads(json.loads(path.read_text())["yaml"][key]) == {"models": [{"name": "a"}]}
    load_manifest.cache_clear()


def test_another_users_parse_cache_is_neither_read_nor_written(tmp_path, monkeypatch):
    """At a path in a shared folder ($GREENERY_PARSE_CACHE=/tmp/...), a file another user put there in our
    shape would have given its answers for our models (a data test's severity, a model's dependencies)."""
    import hashlib

    path = tmp_path / "parsed.json"
    module = _fresh_process(monkeypatch, path)
    sql = "select * from stg_orders"
    _planted(path, module._parsers(), tables={hashlib.sha256(sql.encode()).hexdigest(): ["wrong"]})
    planted = path.read_text()
    real_uid = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: real_uid + 1)  # the file is now another user's
    assert module.parsed().tables(sql) == {"stg_orders"}
    module.parsed().save()
    assert path.read_text() == planted
    load_manifest.cache_clear()


def test_a_file_put_at_the_parse_cache_path_while_the_models_were_read_is_kept(tmp_path, monkeypatch):
    """Nothing was there when the cache was first looked for; someone's file is there when it is saved."""
    path = tmp_path / "parsed.json"
    module = _fresh_process(monkeypatch, path)
    assert module.parsed().tables("select * from stg_orders") == {"stg_orders"}
    path.write_text("my notes\n")
    module.parsed().save()
    assert path.read_text() == "my notes\n"
    load_manifest.cache_clear()
