"""Every exit code of `greenery`, and what each run prints about the data it used."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from shop import uid, write_shop

from greenery import cli, config
from greenery.errors import ExitCode


@pytest.fixture
def no_data_anywhere(tmp_path, monkeypatch):
    """A checkout with nothing in data/raw and no $GREENERY_DATA_DIR."""
    monkeypatch.delenv("GREENERY_DATA_DIR", raising=False)
    monkeypatch.setattr(config, "RAW_DIR", tmp_path / "data" / "raw")
    monkeypatch.setattr(config, "SAMPLE_DIR", tmp_path / "data" / "sample")
    return tmp_path


def test_help_lists_the_commands():
    done = subprocess.run([sys.executable, "-m", "greenery", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    assert all(word in done.stdout for word in ("build", "sample", "report", "Exit codes"))


def test_build_ok_prints_models_and_tests(shop_dir, tmp_path, capsys):
    code = cli.main(["build", "--data-dir", str(shop_dir), "--warehouse", str(tmp_path / "w.duckdb")])
    out = capsys.readouterr().out
    assert code == ExitCode.OK == 0
    assert f"Data: {shop_dir}" in out and "Read 48 rows from 7 files" in out
    assert "marts/marketing/dim_user_order_history" in out and "Data tests:" in out
    assert "0 failed" in out


def test_build_without_data_uses_the_generated_sample_and_says_so(no_data_anywhere, capsys):
    code = cli.main(["build", "--warehouse", str(no_data_anywhere / "w.duckdb")])
    out = capsys.readouterr().out
    assert code == 0
    assert "No export found: generated a sample" in out
    assert "the generated sample (seed 42, scale 1)" in out


def test_environment_variable_chooses_the_data(shop_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GREENERY_DATA_DIR", str(shop_dir))
    assert cli.main(["build", "--warehouse", str(tmp_path / "w.duckdb")]) == 0
    assert "chosen by $GREENERY_DATA_DIR" in capsys.readouterr().out


def test_error_level_failure_exits_1_and_names_the_test(tmp_path, capsys):
    def edit(rows):
        rows["orders"][1]["order_total"] = "99.0"

    export = write_shop(tmp_path / "bad", edit)
    code = cli.main(["build", "--data-dir", str(export), "--warehouse", str(tmp_path / "w.duckdb")])
    captured = capsys.readouterr()
    assert code == ExitCode.DATA_TEST_FAILED == 1
    assert f"FAIL assert_order_total_adds_up (stg_orders): 1 row, e.g. {uid('o2')}" in captured.out
    assert "Build stopped" in captured.err


def test_missing_column_exits_2_naming_file_and_column(shop_dir, tmp_path):
    """Removing a column from a copy of orders.csv makes the build exit 2 naming the file and the column."""
    lines = (shop_dir / "orders.csv").read_text().split("\n")
    header = lines[0].split(",")
    drop = header.index("order_total")
    kept = [",".join(v for i, v in enumerate(line.split(",")) if i != drop) if line else line for line in lines]
    (shop_dir / "orders.csv").write_text("\n".join(kept))
    done = subprocess.run(
        [sys.executable, "-m", "greenery", "build", "--data-dir", str(shop_dir), "--warehouse", str(tmp_path / "w.duckdb")],
        capture_output=True, text=True,
    )
    assert done.returncode == ExitCode.BAD_INPUT == 2
    error_lines = done.stderr.strip().splitlines()
    assert error_lines == [f"error: {shop_dir / 'orders.csv'}:1: column 'order_total': expected column is missing from the header"]


def run_greenery(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "greenery", *args], capture_output=True, text=True)


@pytest.mark.parametrize("command", ["build", "report"])
def test_a_second_run_on_the_same_warehouse_refuses_with_exit_3(command, shop_dir, tmp_path):
    """Another process holds the warehouse (as a running build would): the second run writes nothing."""
    from greenery.outputs.locking import exclusive

    warehouse = tmp_path / "w.duckdb"
    with exclusive(warehouse, "the warehouse"):
        done = run_greenery(command, "--data-dir", str(shop_dir), "--warehouse", str(warehouse))
    assert done.returncode == ExitCode.BUSY == 3
    assert done.stderr.strip().splitlines() == [
        f"error: the warehouse {warehouse} is being written by greenery (pid {os.getpid()}); "
        "wait for it to finish, or use another output path"]
    assert not warehouse.exists()


def test_a_second_report_on_the_same_book_refuses_with_exit_3(shop_dir, tmp_path):
    from greenery.outputs.locking import exclusive

    book = tmp_path / "book"
    with exclusive(book, "the book"):
        done = run_greenery("report", "--data-dir", str(shop_dir), "--out", str(book),
                            "--warehouse", str(tmp_path / "w.duckdb"))
    assert done.returncode == 3
    assert "the book" in done.stderr and "is being written by greenery" in done.stderr
    assert not (tmp_path / "w.duckdb").exists() and not book.exists()


def test_sample_command_writes_the_seven_files(tmp_path, capsys):
    assert cli.main(["sample", "--out", str(tmp_path / "s"), "--scale", "0.5", "--seed", "7"]) == 0
    assert "seed 7, scale 0.5" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "s").glob("*.csv")) == sorted(
        ["users.csv", "addresses.csv", "products.csv", "promos.csv", "orders.csv", "order_items.csv", "events.csv"])


def test_a_data_dir_that_does_not_exist_exits_2_in_one_line(tmp_path):
    missing = tmp_path / "no export here"
    done = run_greenery("build", "--data-dir", str(missing), "--warehouse", str(tmp_path / "w.duckdb"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {missing}: no such folder: expected the export's seven CSV files here"]


@pytest.mark.parametrize("scale", ["0", "nan", "-1", "inf", "lots"])
def test_a_bad_scale_is_an_argument_error(scale, tmp_path):
    done = subprocess.run([sys.executable, "-m", "greenery", "sample", "--out", str(tmp_path / "s"), "--scale", scale],
                          capture_output=True, text=True)
    assert done.returncode == ExitCode.BAD_INPUT == 2
    assert "usage:" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "s").exists()


def test_an_empty_data_dir_is_refused_not_replaced_by_the_sample(tmp_path, capsys):
    assert cli.main(["build", "--data-dir", "", "--warehouse", str(tmp_path / "w.duckdb")]) == ExitCode.BAD_INPUT
    assert capsys.readouterr().err.strip() == "error: --data-dir is empty: name the export's folder, or leave the option out"


def test_an_unexpected_error_has_its_own_code_one_line_and_a_hint(shop_dir, tmp_path, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("something nobody planned for")

    monkeypatch.setattr("greenery.warehouse.build.build", broken)
    args = ["build", "--data-dir", str(shop_dir), "--warehouse", str(tmp_path / "w.duckdb")]
    assert cli.main(args) == ExitCode.UNEXPECTED == 5
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: unexpected RuntimeError: something nobody planned for (run with --debug for the traceback)"]
    assert cli.main(["--debug", *args]) == 5
    assert "Traceback" in capsys.readouterr().err


def test_a_corrupt_history_file_exits_4_and_is_left_alone(shop_dir, tmp_path, monkeypatch, capsys):
    history = tmp_path / "h.duckdb"
    history.write_bytes(b"this is not a database")
    monkeypatch.setenv("GREENERY_HISTORY", str(history))
    code = cli.main(["build", "--data-dir", str(shop_dir), "--warehouse", str(tmp_path / "w.duckdb")])
    assert code == ExitCode.REPORT_FAILED == 4
    assert "not a greenery history file" in capsys.readouterr().err
    assert history.read_bytes() == b"this is not a database" and not (tmp_path / "w.duckdb").exists()
    # refused before any lock is made: nothing is left beside the user's file, nor beside the warehouse
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != shop_dir.name) == ["h.duckdb"]


def test_a_full_disk_while_publishing_exits_5_and_keeps_the_book(sample_book, monkeypatch, capsys):
    import errno

    from conftest import tree_digest

    from greenery.outputs import atomic, fingerprint

    def full(new, published, check_old=None):
        raise OSError(errno.ENOSPC, "No space left on device", str(published))

    monkeypatch.setattr(fingerprint, "book", lambda *args: "a book never published")
    monkeypatch.setattr(atomic, "swap_folder", full)
    before = tree_digest(sample_book.out)
    code = cli.main(["report", "--data-dir", str(sample_book.export), "--out", str(sample_book.out),
                     "--warehouse", str(sample_book.warehouse)])
    assert code == ExitCode.UNEXPECTED
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: unexpected OSError") and "No space left on device" in line
    assert tree_digest(sample_book.out) == before
    assert not list(sample_book.out.parent.glob(".html.staging-*"))


@pytest.mark.parametrize("option,says", [
    ("no_such_parameter=1", "no chapter declares this parameter"),
    ("missing-equals", "expected NAME=VALUE"),
    ("alpha=5e-324", "--param alpha=5e-324: too small to compute with"),
])
def test_a_bad_param_is_refused_before_any_work(option, says, shop_dir, tmp_path, capsys):
    code = cli.main(["report", "--data-dir", str(shop_dir), "--out", str(tmp_path / "book"),
                     "--warehouse", str(tmp_path / "w.duckdb"), "--param", option])
    assert code == ExitCode.BAD_INPUT
    assert says in capsys.readouterr().err
    assert not (tmp_path / "w.duckdb").exists()


def test_a_param_given_twice_is_refused_not_the_last_one_taken(shop_dir, tmp_path, capsys):
    code = cli.main(["report", "--data-dir", str(shop_dir), "--out", str(tmp_path / "book"), "--warehouse",
                     str(tmp_path / "w.duckdb"), "--param", "follow_up_hours=12", "--param", "follow_up_hours=24"])
    assert code == ExitCode.BAD_INPUT
    assert "--param follow_up_hours: given twice; give it once" in capsys.readouterr().err
    assert not (tmp_path / "w.duckdb").exists()


@pytest.mark.parametrize("epoch", ["abc", "-5", "1.5", "99999999999999999999"])
def test_a_bad_source_date_epoch_is_one_line_and_exit_2(epoch, shop_dir, tmp_path, capsys, monkeypatch):
    """SOURCE_DATE_EPOCH=abc exited 5 (a ValueError); it is a setting like any other."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", epoch)
    code = cli.main(["build", "--data-dir", str(shop_dir), "--warehouse", str(tmp_path / "w.duckdb")])
    assert code == ExitCode.BAD_INPUT
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line == f"error: $SOURCE_DATE_EPOCH={epoch!r}: expected whole seconds since 1970-01-01 UTC, e.g. 1612915200"
    assert not (tmp_path / "w.duckdb").exists()


@pytest.mark.parametrize("args", [
    ["build", "--warehouse", ""], ["report", "--out", ""], ["report", "--warehouse", " "],
    ["sample", "--out", ""], ["sample", "--out", "x", "--seed", "-1"], ["sample", "--out", "x", "--scale", "1e12"],
    ["report", "--chapter-timeout", "1e308"], ["report", "--chapter-timeout", "604801"],
])
def test_an_empty_path_or_out_of_range_value_is_an_argument_error(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    done = subprocess.run([sys.executable, "-m", "greenery", *args], capture_output=True, text=True)
    assert done.returncode == ExitCode.BAD_INPUT
    assert "usage:" in done.stderr and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a lock


def test_sample_never_writes_into_a_folder_it_did_not_make(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "orders.csv").write_text("my own orders\n")
    assert cli.main(["sample", "--out", str(mine), "--scale", "0.05"]) == ExitCode.BAD_INPUT
    assert [p.name for p in mine.iterdir()] == ["orders.csv"] and (mine / "orders.csv").read_text() == "my own orders\n"
    assert "holds files this tool did not generate" in capsys.readouterr().err
    ours = tmp_path / "ours"
    assert cli.main(["sample", "--out", str(ours), "--scale", "0.05"]) == 0
    assert cli.main(["sample", "--out", str(ours), "--scale", "0.05", "--seed", "7"]) == 0  # its own: replaced


def test_a_sample_marker_beside_an_export_does_not_make_it_a_sample(tmp_path, capsys):
    """The attacker's case: a `sample.json` copied beside an export's seven CSVs; `greenery sample --out`
    would have replaced the export. The marker records what greenery wrote; these are not those bytes."""
    ours, export = tmp_path / "ours", tmp_path / "export"
    assert cli.main(["sample", "--out", str(ours), "--scale", "0.05"]) == 0
    shutil.copytree(ours, export)
    (export / "orders.csv").write_bytes((export / "orders.csv").read_bytes() + b"\n")  # one byte differs
    before = {p.name: p.read_bytes() for p in export.iterdir()}
    assert cli.main(["sample", "--out", str(export), "--scale", "0.05"]) == ExitCode.BAD_INPUT
    assert "holds files this tool did not generate" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in export.iterdir()} == before
    (ours / "users.csv").unlink()  # a file missing is fine: what is there is still greenery's
    assert cli.main(["sample", "--out", str(ours), "--scale", "0.05"]) == 0


def test_an_interrupted_sample_leaves_the_folder_as_it_was(tmp_path, monkeypatch):
    from greenery import sample

    out = tmp_path / "s"
    sample.generate(out, 0.05, 42)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def stopped(folder, scale, seed, day=None):
        (folder / "users.csv").write_text("half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(sample, "_write", stopped)
    with pytest.raises(KeyboardInterrupt):
        sample.generate(out, 0.05, 7)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["s"]  # no staging folder left


def test_a_missing_key_is_reported_not_a_crash(shop_dir, tmp_path, capsys):
    orders = (shop_dir / "orders.csv").read_text().split("\n")
    orders[1] = "," + orders[1].split(",", 1)[1]  # the first order loses its id
    (shop_dir / "orders.csv").write_text("\n".join(orders))
    code = cli.main(["build", "--data-dir", str(shop_dir), "--warehouse", str(tmp_path / "w.duckdb")])
    captured = capsys.readouterr()
    assert code == ExitCode.DATA_TEST_FAILED
    assert "FAIL not_null_stg_orders_order_id (stg_orders): 1 row, e.g. (null)" in captured.out
    assert "no warehouse was written" in captured.err


@pytest.mark.parametrize("command", ["build", "report"])
@pytest.mark.parametrize("variable,value", [
    ("GREENERY_DUCKDB_MEMORY", "abc"), ("GREENERY_DUCKDB_MEMORY", "100"), ("GREENERY_DUCKDB_MEMORY", "0GB"),
    ("GREENERY_DUCKDB_MEMORY", "1MB"), ("GREENERY_DUCKDB_MEMORY", "63.9 MB"),  # 1MB blamed the export, 10MB exit 5
    ("GREENERY_DUCKDB_THREADS", "0"), ("GREENERY_DUCKDB_THREADS", "two"),
    # digits str.isdigit and re's \d take, but not int() or DuckDB: each was exit 5 "unexpected ValueError/ParserException"
    ("GREENERY_DUCKDB_THREADS", "\u00b2"), ("GREENERY_DUCKDB_MEMORY", "\u0663\u0660\u0660MB"),
    ("GREENERY_DUCKDB_TEMP", "{tmp}/a-file/spill"),  # under a file: no folder can be made there
])
def test_a_bad_duckdb_setting_exits_2_in_one_line_naming_the_variable(command, variable, value, shop_dir, tmp_path):
    (tmp_path / "a-file").write_text("mine\n")
    value = value.format(tmp=tmp_path)
    env = {**os.environ, variable: value, "GREENERY_HISTORY": str(tmp_path / "h.duckdb")}
    done = subprocess.run([sys.executable, "-m", "greenery", command, "--data-dir", str(shop_dir),
                           "--warehouse", str(tmp_path / "w.duckdb")], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == ExitCode.BAD_INPUT
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"error: ${variable}={value!r}: expected ") and "orders.csv" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "shop"]  # nothing written, no status either
    assert (tmp_path / "a-file").read_text() == "mine\n"


def test_the_smallest_memory_setting_builds_the_shop(shop_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("GREENERY_DUCKDB_MEMORY", "64MB")
    monkeypatch.setenv("GREENERY_HISTORY", str(tmp_path / "h.duckdb"))
    assert cli.main(["build", "--data-dir", str(shop_dir), "--warehouse", str(tmp_path / "w.duckdb")]) == 0


def test_duckdbs_out_of_memory_is_said_in_words():
    import duckdb

    from greenery.errors import unexpected_reason

    said = unexpected_reason(duckdb.OutOfMemoryException("Out of Memory Error: failed to pin block of size 256.0 KiB"))
    assert said == ("OutOfMemoryException: DuckDB ran out of the memory it may use ($GREENERY_DUCKDB_MEMORY, 1GB "
                    "unless set): raise it, or free memory, and run again")


def test_good_duckdb_settings_are_taken(monkeypatch, tmp_path):
    monkeypatch.setenv("GREENERY_DUCKDB_MEMORY", "1.5 GiB")
    monkeypatch.setenv("GREENERY_DUCKDB_THREADS", "1")
    monkeypatch.setenv("GREENERY_DUCKDB_TEMP", str(tmp_path / "spill"))
    config.check_duckdb_settings()
    assert not (tmp_path / "spill").exists()  # probed and removed: DuckDB makes it when it spills
    assert config.duckdb_settings()["threads"] == 1


def test_output_the_terminal_cannot_show_is_escaped_never_a_failure(shop_dir, tmp_path):
    """PYTHONIOENCODING=ascii and a name that is not ASCII (printed once the warehouse is published):
    escaped, and the run succeeds, where it used to exit 5 after publishing."""
    warehouse = tmp_path / "entrepôt" / "w.duckdb"
    done = subprocess.run([sys.executable, "-m", "greenery", "build", "--data-dir", str(shop_dir),
                           "--warehouse", str(warehouse)], capture_output=True, timeout=300,
                          env={**os.environ, "PYTHONIOENCODING": "ascii", "GREENERY_HISTORY": str(tmp_path / "h.duckdb")})
    assert done.returncode == ExitCode.OK, done.stderr
    assert b"Warehouse: " + str(tmp_path).encode() + b"/entrep\\xf4t/w.duckdb" in done.stdout
    assert done.stderr == b""


@pytest.mark.parametrize("damage", ["truncated", "bits flipped"])
def test_a_damaged_history_exits_4_with_the_advice_and_is_left_alone(damage, shop_dir, tmp_path, monkeypatch, capsys):
    """Damage past the file's header only shows when a block is read: still the history's failure (exit 4)."""
    history, warehouse = tmp_path / "h.duckdb", tmp_path / "w.duckdb"
    monkeypatch.setenv("GREENERY_HISTORY", str(history))
    args = ["build", "--data-dir", str(shop_dir), "--warehouse", str(warehouse)]
    assert cli.main(args) == 0
    data = bytearray(history.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:  # one byte in every block after the headers: some block of every table is hit
        for offset in range(3 * 4096 + 100, len(data), 4096):
            data[offset] ^= 0xFF
    history.write_bytes(bytes(data))
    good = warehouse.read_bytes()
    capsys.readouterr()
    assert cli.main(args) == ExitCode.REPORT_FAILED
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {history}: ") and line.endswith("move it aside to start a new history, or set $GREENERY_HISTORY to another file")
    assert history.read_bytes() == bytes(data) and warehouse.read_bytes() == good


def test_a_full_disk_while_rendering_exits_5_in_one_line_and_the_status_says_so(sample_book, monkeypatch, capsys):
    """Sphinx fails with 150 coloured lines when the disk fills: one line, exit 5, naming the space."""
    import json

    from conftest import tree_digest

    from greenery.outputs import fingerprint
    from greenery.publisher import processes, run, status

    def full(command, timeout=None, env=None):
        lines = "\n".join(f"\x1b[91mWARNING: could not write page {n}: [Errno 28] No space left on device\x1b[39;49;00m"
                          for n in range(150))
        return subprocess.CompletedProcess(command, 2, "", lines)

    monkeypatch.setattr(fingerprint, "book", lambda *args: "a book never published")
    monkeypatch.setattr(processes, "run", full)
    # No render cache: the render is a full one, started while the chapters run (run.EarlyRender); it ends so
    monkeypatch.setattr(run.EarlyRender, "finish", lambda self: full(["sphinx"]))
    shutil.rmtree(config.render_cache_path(sample_book.warehouse), ignore_errors=True)  # else nothing to render
    before = tree_digest(sample_book.out)
    code = cli.main(["report", "--data-dir", str(sample_book.export), "--out", str(sample_book.out),
                     "--warehouse", str(sample_book.warehouse)])
    assert code == ExitCode.UNEXPECTED
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: unexpected OSError") and "No space left on device: the disk is full" in line
    assert "\x1b" not in line and tree_digest(sample_book.out) == before
    state = json.loads(status.paths(sample_book.out)[0].read_text())
    assert state["attempt"]["error"].startswith("OSError: No space left on device: the disk is full")


def test_build_imports_nothing_it_does_not_need(shop_dir, tmp_path):
    """`greenery build` on a small export never imports pandas, numpy, scipy, matplotlib, sqlglot, the
    Spark engine or the book's libraries (each costs a tenth of a second to a second before any work starts):
    the intervals of the export's headline metrics are computed in the standard library
    (greenery.warehouse.distributions). Nor the `duckdb` package: its engine `_duckdb` is all a build uses
    (greenery.db); nor importlib.metadata (fingerprint.installed_version)."""
    script = ("import sys\nfrom greenery import cli\n"
              "code = cli.main(['build', '--data-dir', sys.argv[1], '--warehouse', sys.argv[2]])\n"
              "heavy = {'pandas', 'numpy', 'scipy', 'matplotlib', 'sqlglot', 'pyspark', 'nbformat', 'duckdb',\n"
              "         'importlib.metadata',\n"
              "         'greenery.warehouse.engines.spark', 'greenery.publisher.run'}\n"
              "print('imported:', sorted(heavy & set(sys.modules)), 'exit', code)\n")
    env = {**os.environ, "GREENERY_HISTORY": str(tmp_path / "h.duckdb")}
    done = subprocess.run([sys.executable, "-c", script, str(shop_dir), str(tmp_path / "w.duckdb")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.stdout.strip().splitlines()[-1] == "imported: [] exit 0", done.stdout + done.stderr


def test_the_engine_the_build_uses_is_the_duckdb_packages_own():
    """greenery.db's `duckdb` is the C extension the `duckdb` package re-exports: the very connect, connection
    class and errors, so an error raised by one is caught by code written against the other. A DuckDB
    release that moved them fails here, not in a build."""
    import duckdb

    from greenery import db

    assert db.duckdb is not duckdb and db.duckdb.__name__ == "_duckdb"
    for name in ("connect", "DuckDBPyConnection", "Error", "TransactionException", "CatalogException",
                 "get_table_names"):
        assert getattr(db.duckdb, name) is getattr(duckdb, name), name
    con = db.connect()
    try:
        assert isinstance(con, duckdb.DuckDBPyConnection)
        with pytest.raises(duckdb.CatalogException):
            db.run(con, "select * from no_such_table")
    finally:
        con.close()


@pytest.mark.parametrize("marker", [
    '{"seed": "x\\n\\n```{literalinclude} ../../secret.txt\\n```\\n", "scale": 1}',  # text read as MyST
    '{"seed": "<script>alert(1)</script> alice@example.com", "scale": 1}',
    '{"seed": 1, "scale": "big"}',
    "{not json",
    "[]",
])
def test_a_sample_marker_greenery_did_not_write_is_refused_never_shown(shop_dir, tmp_path, capsys, marker):
    """`sample.json` names a generated sample in the book, the status and messages: only what
    `greenery sample` writes (whole numbers, a scale) is read; anything else is exit 2, never quoted."""
    export = tmp_path / "export"
    shutil.copytree(shop_dir, export)
    (export / "sample.json").write_text(marker)
    assert cli.main(["build", "--data-dir", str(export), "--warehouse", str(tmp_path / "w.duckdb")]) == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a marker `greenery sample` wrote" in err
    assert "script" not in err and "literalinclude" not in err and "alice" not in err
    assert not (tmp_path / "w.duckdb").exists()


def test_a_reader_that_goes_away_stops_the_messages_not_the_build(tmp_path):
    """`greenery build | head -1` exited 5 (BrokenPipeError) once head had its line: now the build goes
    on, silently, and exits as it would have (0), its warehouse written."""
    assert cli.main(["sample", "--out", str(tmp_path / "s"), "--scale", "0.05"]) == 0
    build = subprocess.Popen([sys.executable, "-m", "greenery", "build", "--data-dir", str(tmp_path / "s"),
                              "--warehouse", str(tmp_path / "w.duckdb")], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env={**os.environ, "GREENERY_HISTORY":
                                                                     str(tmp_path / "h.duckdb")})
    assert build.stdout.readline().startswith("Data: ")
    build.stdout.close()  # as head does once it has its line
    assert build.wait(120) == 0
    assert "error" not in build.stderr.read()
    assert (tmp_path / "w.duckdb").is_file()


def test_a_full_disk_in_duckdbs_own_words_is_said_in_ours():
    """DuckDB reports a full disk in an exception of its own, the cause on a later line: it was shown as
    "database has been invalidated"; now as the disk it is."""
    import duckdb

    from greenery.errors import unexpected_reason

    error = duckdb.FatalException("FATAL Error: Failed: database has been invalidated because of a previous fatal "
                                  "error.\nOriginal error: \"Could not write file \"w\": No space left on device\"")
    assert unexpected_reason(error) == "FatalException: the disk is full; free some space and run again"
    assert unexpected_reason(duckdb.IOException("Disk quota exceeded")).endswith("the disk is full; free some "
                                                                                   "space and run again")
    assert unexpected_reason(duckdb.IOException("IO Error: busy\nmore")) == "IOException: IO Error: busy"


@pytest.mark.parametrize("folder", [b"x/..", b"d\xff"])
def test_export_dbt_refuses_a_folder_given_through_dotdot_or_not_utf8(folder, tmp_path):
    """export-dbt wrote into `x/..` (the folder it named is the parent) and into a folder whose name is
    not UTF-8; every other path option refused both."""
    (tmp_path / "x").mkdir()
    done = subprocess.run([sys.executable, "-m", "greenery", "export-dbt", folder, "--warehouse", "w.duckdb"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == ExitCode.BAD_INPUT
    [line] = done.stderr.splitlines()
    assert line.startswith("error: export-dbt ") and ("holds '..'" in line or "not UTF-8" in line)
    assert [p.name for p in tmp_path.iterdir()] == ["x"] and not list((tmp_path / "x").iterdir())
