"""Results two chapters of one report share (greenery.chapter_kit.shared): computed once, read back exactly,
never reused for other data, parameters or code, never read half-written; a wait for another chapter has a
deadline."""

from __future__ import annotations

import fcntl
import json
import math
import os
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_survival import FLIP

from greenery.chapter_kit import indicators, shared, survival


def _frame() -> pd.DataFrame:
    """Every kind of column the shared results hold, with the values that do not survive a careless copy."""
    return pd.DataFrame({
        "indicator": pd.Series(["promo", None, "hour"], dtype="str"),  # pandas' text, NaN where missing
        "same_as": pd.Series([None, "promo", None], dtype=object),  # None kept as None, not NaN
        "mixed": pd.Series([1.5, math.nan, "x"], dtype=object),
        "p": [0.1 + 0.2, math.nan, -0.0],  # 0.30000000000000004 to the last bit, NaN, the sign of zero
        "ratio": [math.inf, 1e-310, 2.0],
        "n": np.array([1, 2**62, -3], dtype="int64"),
        "order": np.array([1, 2, 3], dtype="int32"),
        "is_signal": [True, False, True],
    })


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert list(a.dtypes) == list(b.dtypes)
    for name in a.columns:
        assert [type(v) for v in a[name]] == [type(v) for v in b[name]], name
        if a[name].dtype.kind == "f":
            assert np.array_equal(np.signbit(a[name].to_numpy()), np.signbit(b[name].to_numpy()))


def test_a_result_reads_back_exactly():
    original = _frame()
    back = shared.decode_frame(json.loads(json.dumps(shared.encode_frame(original))))
    _same(original, back)
    assert back.loc[1, "same_as"] == "promo" and back.loc[0, "same_as"] is None
    assert back.loc[0, "p"] == 0.30000000000000004 and math.copysign(1, back.loc[2, "p"]) == -1


def test_the_chapters_results_read_back_exactly():
    # The two functions the chapters share, on the hand-worked fixtures of test_survival.
    swept = indicators.sweep.compute(FLIP)
    _same(swept, shared.decode_frame(json.loads(json.dumps(shared.encode_frame(swept)))))
    rows = pd.DataFrame([{"indicator": "promo", "segment": s, "segment_order": o, "buyer": b, "hours_followed": h,
                          "reordered": e} for b, (s, o, h, e) in enumerate(
        [("promo", 1, 1.0, True), ("promo", 1, 2.0, False), ("promo", 1, 5.0, True), ("promo", 1, 7.0, True),
         ("promo", 1, 9.0, False), ("no promo", 2, 3.0, True), ("no promo", 2, 4.0, True),
         ("no promo", 2, 6.0, False), ("no promo", 2, 8.0, True), ("no promo", 2, 10.0, True)])])
    tests = survival.indicator_tests.compute(rows, indicators.TITLES)
    assert tests.loc[0, "testable"] and tests.loc[0, "same_as"] is None
    _same(tests, shared.decode_frame(json.loads(json.dumps(shared.encode_frame(tests)))))


class _Counted:
    def __init__(self):
        self.calls = 0

    def __call__(self, frame: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
        self.calls += 1
        return frame.assign(p=frame["p"] * alpha)


def _share(monkeypatch, folder: Path) -> None:
    """This process shares through `folder` for one test (what the chapter runner does for a chapter)."""
    monkeypatch.setattr(shared, "_folder", None)  # put back after the test
    shared.share_through(folder)


def test_computed_once_then_read(tmp_path, monkeypatch):
    _share(monkeypatch, tmp_path)
    compute = _Counted()
    first = shared.computed("t", compute, _frame(), alpha=0.05)
    again = shared.computed("t", compute, _frame(), alpha=0.05)
    assert compute.calls == 1
    _same(first, again)
    assert [p.name for p in tmp_path.iterdir()] == [f"t-{shared.key('t', (_frame(),), {'alpha': 0.05})[:32]}.json"]


def test_never_reused_for_other_data_parameters_or_code(tmp_path, monkeypatch):
    _share(monkeypatch, tmp_path)
    compute = _Counted()
    shared.computed("t", compute, _frame(), alpha=0.05)
    shared.computed("t", compute, _frame(), alpha=0.01)  # another parameter
    assert compute.calls == 2
    changed = _frame()
    changed.loc[2, "p"] = 0.0  # another warehouse: one value differs, and only in the sign of a zero
    assert shared.computed("t", compute, changed, alpha=0.05).loc[2, "p"] == 0.0
    assert compute.calls == 3
    renamed = _frame().rename(columns={"n": "m"})
    shared.computed("t", compute, renamed, alpha=0.05)
    assert compute.calls == 4
    texts = _frame()
    texts["indicator"] = pd.Series(["promo", "hour", None], dtype="str")  # the same texts, moved
    shared.computed("t", compute, texts, alpha=0.05)
    assert compute.calls == 5
    mixed = _frame()
    mixed.loc[0, "mixed"] = 1.5000000000000002  # one object's last bit
    shared.computed("t", compute, mixed, alpha=0.05)
    assert compute.calls == 6
    monkeypatch.setattr(shared, "_code", lambda: "other code")
    shared.computed("t", compute, _frame(), alpha=0.05)
    assert compute.calls == 7


def test_without_the_report_folder_nothing_is_shared(tmp_path, monkeypatch):
    monkeypatch.setattr(shared, "_folder", None)
    compute = _Counted()
    shared.computed("t", compute, _frame())
    shared.computed("t", compute, _frame())
    assert compute.calls == 2


def test_a_damaged_result_is_never_read(tmp_path, monkeypatch):
    _share(monkeypatch, tmp_path)
    compute = _Counted()
    path = tmp_path / f"t-{shared.key('t', (_frame(),), {})[:32]}.json"
    whole = json.dumps(shared.encode_frame(compute(_frame())), separators=(",", ":"))
    for damaged in (whole[: len(whole) // 2], whole.replace('"int64"', '"int8"'),
                    whole.replace('["str","promo"]', '["str",1]')):
        path.write_text(damaged)
        compute.calls = 0
        _same(shared.computed("t", compute, _frame()), _Counted()(_frame()))
        assert compute.calls == 1, damaged[:80]
    path.unlink()
    os.symlink(tmp_path / "elsewhere.json", path)  # a link is never followed
    (tmp_path / "elsewhere.json").write_text(whole)
    compute.calls = 0
    shared.computed("t", compute, _frame())
    assert compute.calls == 1


def test_a_chapter_waits_for_the_one_computing(tmp_path, monkeypatch):
    # Another chapter holds the folder's lock while it computes, then writes the result: this one waits and
    # reads it rather than computing it twice.
    _share(monkeypatch, tmp_path)
    compute = _Counted()
    path = tmp_path / f"t-{shared.key('t', (_frame(),), {})[:32]}.json"
    other = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(other, fcntl.LOCK_EX)

    def the_other_chapter():
        time.sleep(0.3)
        result = _Counted()(_frame())
        result.loc[0, "p"] = 42.0  # what only the other chapter's result holds
        path.write_text(json.dumps(shared.encode_frame(result)))
        os.close(other)  # releases the lock

    thread = threading.Thread(target=the_other_chapter)
    thread.start()
    got = shared.computed("t", compute, _frame())
    thread.join()
    assert compute.calls == 0 and got.loc[0, "p"] == 42.0


def test_the_wait_has_a_deadline(tmp_path, monkeypatch):
    _share(monkeypatch, tmp_path)
    monkeypatch.setattr(shared, "WAIT_SECONDS", 0.2)
    compute = _Counted()
    other = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(other, fcntl.LOCK_EX)  # a chapter stuck while holding the lock
    try:
        started = time.monotonic()
        shared.computed("t", compute, _frame())
        assert compute.calls == 1 and time.monotonic() - started < 5
    finally:
        os.close(other)


def test_the_chapters_functions_are_shared(tmp_path, monkeypatch):
    _share(monkeypatch, tmp_path)
    first = indicators.sweep(FLIP)
    assert len(list(tmp_path.glob("indicators.sweep-*.json"))) == 1
    calls = []
    monkeypatch.setattr(indicators.stats, "independence", lambda *a, **k: calls.append(a))
    _same(first, indicators.sweep(FLIP))  # read, not computed: no test ran
    assert calls == []
    with pytest.raises(AttributeError):  # other counts at one window: computed (the stand-in test is no test)
        indicators.sweep({10: FLIP[10], 20: FLIP[20].assign(buyers=FLIP[20]["buyers"] + 1)})


def test_the_publisher_reads_the_folders_name_without_importing_pandas():
    """`greenery report` names the folder to its chapters: an unchanged report imports neither numpy nor
    pandas for that (0.3 s of its half-second budget)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", "import sys\nfrom greenery.publisher import run\n"
                           "print(sorted({'numpy', 'pandas'} & set(sys.modules)))"],
                          capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"


def test_what_cannot_be_stored_exactly_is_computed_and_never_stored(tmp_path, monkeypatch):
    _share(monkeypatch, tmp_path)
    assert shared.computed("t", lambda: {"not": "a frame"}) == {"not": "a frame"}
    indexed = pd.DataFrame({"a": [1, 2]}, index=[5, 6])
    assert shared.computed("t", lambda: indexed) is indexed
    assert list(tmp_path.iterdir()) == []


def test_only_the_folder_the_runner_names_is_shared_through(tmp_path, monkeypatch):
    """The attacker's review: a folder named by an environment variable a shell or a notebook server
    passed on was written to, and a result planted there was published. Only the runner's argument
    counts (chapter_process), and a link or a file there shares nothing."""
    from greenery.publisher import chapter_process

    planted = tmp_path / "someone"
    planted.mkdir()
    monkeypatch.setenv("GREENERY_SHARED_RESULTS", str(planted))
    monkeypatch.setattr(shared, "_folder", None)
    compute = _Counted()
    shared.computed("t", compute, _frame())
    shared.computed("t", compute, _frame())
    assert compute.calls == 2 and list(planted.iterdir()) == []
    link = tmp_path / "link"
    link.symlink_to(planted, target_is_directory=True)
    for given in (link, tmp_path / "missing", tmp_path / "file.txt"):
        shared.share_through(given)
        assert shared._folder is None, given
    # the runner's fifth argument: the report's folder, given before the chapter runs
    ran = {}
    monkeypatch.setattr(chapter_process, "execute", lambda *a, **k: ran.setdefault("folder", shared._folder))
    own = tmp_path / "stage" / ".shared"
    own.mkdir(parents=True)
    assert chapter_process.child(["a.md", "a.ipynb", "{}", "60", str(own)]) == 0
    assert ran["folder"] == own


def test_a_result_nested_past_the_parser_is_computed(tmp_path, monkeypatch):
    _share(monkeypatch, tmp_path)
    compute = _Counted()
    (tmp_path / f"t-{shared.key('t', (_frame(),), {})[:32]}.json").write_text("[" * 200_000)
    shared.computed("t", compute, _frame())
    assert compute.calls == 1


def test_the_window_sweep_is_shared_by_the_warehouses_build_and_runs_no_query_twice(shop_warehouse, tmp_path,
                                                                                      monkeypatch):
    """The chapter that reads the sweep of every window runs none of its windows' queries: it is keyed by the
    warehouse's build, the analysis's SQL and the parameters, and it is the sweep of the windows' frames."""
    from greenery import db
    from greenery.chapter_kit import analyses

    traffic = {"max_sessions_per_hour": 10, "max_sessions_per_account": 50}
    con = db.connect(shop_warehouse, read_only=True)
    try:
        expected = indicators.sweep.compute({h: analyses.frame(con, "repeat_by_indicator",
                                                               {**traffic, "follow_up_hours": h}) for h in (1, 2, 3)})
        assert len(expected)
        _share(monkeypatch, tmp_path)
        _same(indicators.sweep_windows(con, traffic, 1, 3), expected)
        assert len(list(tmp_path.glob("indicators.sweep_windows-*.json"))) == 1
        queries = []
        frame = analyses.frame
        monkeypatch.setattr(analyses, "frame", lambda con, name, *a: queries.append(name) or frame(con, name, *a))
        _same(indicators.sweep_windows(con, {"max_sessions_per_account": 50, "max_sessions_per_hour": 10}, 1, 3),
              expected)  # read back: the same rules in another order are the same rules
        assert queries == ["build_info"]  # which build it is: the one query of the chapter that reads it
        indicators.sweep_windows(con, traffic, 1, 4)  # another window: computed, and stored apart
        assert queries.count("repeat_by_indicator") == 4
        assert len(list(tmp_path.glob("indicators.sweep_windows-*.json"))) == 2
    finally:
        con.close()
