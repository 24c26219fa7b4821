"""The in-process engine records what a kernel would: the same outputs, the same failures."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import nbformat
import papermill
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from greenery.publisher import shell_engine

CELLS = [
    "x = 41  # parameters",
    "print('one')\nprint('two')\nimport sys\nprint('warned', file=sys.stderr)\nprint('three')",
    "from IPython.display import Markdown, display\ndisplay(Markdown('**bold**'))\nx + 1",
    "from myst_nb import glue\nglue('answer', x + 1, display=False)",
    "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([1, 2])\nplt.show()",
    "fig, ax = plt.subplots()\nax.bar(['a'], [1])",  # left open: shown when the cell ends, as in a kernel
    "class Png:\n    def __repr__(self):\n        return 'Png()'\n    def _repr_png_(self):\n        return b'\\x89PNG\\r\\n\\x1a\\n' + bytes(range(40))\nPng()",
    "h = display(Markdown('first'), display_id=True)\nh.update(Markdown('second'))",
    "",  # an empty cell is not run and keeps no count
]


def notebook(*cells: str) -> nbformat.NotebookNode:
    nb = new_notebook(cells=[new_markdown_cell("# A page"), *map(new_code_cell, cells)])
    nb.cells[1].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


# Our engine runs in a process of its own, as a chapter does (a fork of the warm server, which imported
# pyplot before any shell existed): the test process's own charts' state never reaches it.
IN_A_PROCESS = """
import json, sys
import matplotlib.pyplot
import nbformat, papermill
from greenery.publisher import shell_engine
nb = nbformat.reads(sys.stdin.read(), as_version=4)
ran = papermill.execute_notebook(nb, None, parameters=json.loads(sys.argv[1]), engine_name=shell_engine.ENGINE,
                                 kernel_name="python3", language="python", progress_bar=False)
sys.stdout.write(nbformat.writes(ran))
"""


def run(nb: nbformat.NotebookNode, engine: str | None, **parameters) -> nbformat.NotebookNode:
    """In this process: with our engine, the cells run here; with papermill's own, in a kernel."""
    return papermill.execute_notebook(copy.deepcopy(nb), None, parameters=parameters, engine_name=engine,
                                      kernel_name="python3", language="python", progress_bar=False)


def run_apart(nb: nbformat.NotebookNode, **parameters) -> nbformat.NotebookNode:
    """With our engine in a process of its own, as a chapter runs."""
    done = subprocess.run([sys.executable, "-c", IN_A_PROCESS, json.dumps(parameters)], input=nbformat.writes(nb),
                          capture_output=True, text=True, timeout=300, check=True)
    return nbformat.reads(done.stdout, as_version=4)


def shown(nb: nbformat.NotebookNode) -> list:
    """What a reader (and nbval) sees: each code cell's count and outputs."""
    return [(c.get("execution_count"), c.get("outputs")) for c in nb.cells if c.cell_type == "code"]


def test_the_outputs_are_those_a_kernel_sends():
    nb = notebook(*CELLS)
    ours = run_apart(nb, x=1)
    theirs = run(nb, None, x=1)  # papermill's own engine: nbclient and a kernel of this environment
    assert shown(ours) == shown(theirs)
    assert ours.metadata.language_info == theirs.metadata.language_info
    # and they are what was worked out: streams, the result's count, the glue, base64, the update
    [_, _, streams, display_and_result, glued, figure, open_figure, image, updated, empty] = shown(ours)
    # each stream buffered until the cell ends, stdout's first: as a kernel sends a quick cell's prints
    assert [(o.name, o.text) for o in streams[1]] == [("stdout", "one\ntwo\nthree\n"), ("stderr", "warned\n")]
    assert [o.output_type for o in display_and_result[1]] == ["display_data", "execute_result"]
    assert display_and_result[1][1].data["text/plain"] == "2" and display_and_result[1][1].execution_count == 4
    assert glued[1][0].metadata["scrapbook"]["name"] == "answer"
    assert "image/png" in figure[1][0].data and "image/png" in open_figure[1][-1].data
    assert image[1][0].data["image/png"].startswith("iVBORw0KGgo")  # base64, as a kernel sends bytes
    assert updated[1][0].data["text/markdown"] == "second"
    assert empty == (None, [])


def test_a_failing_cell_stops_the_run_and_is_raised_as_a_kernels_would_be():
    nb = notebook("x = 1", "raise KeyError('segment')", "print('never')")
    with pytest.raises(papermill.PapermillExecutionError) as ours:
        run(nb, shell_engine.ENGINE)
    assert (ours.value.ename, ours.value.evalue, ours.value.exec_count) == ("KeyError", "'segment'", 2)


def test_each_notebook_starts_with_an_empty_namespace():
    run(notebook("leaked = 1"), shell_engine.ENGINE)
    with pytest.raises(papermill.PapermillExecutionError, match="NameError"):
        run(notebook("x = 1", "leaked"), shell_engine.ENGINE)


MYST = ("---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\nkernelspec:\n"
        "  display_name: Python 3\n  language: python\n  name: python3\n---\n\n# A chapter\n\n")


def chapter(tmp_path, *cells: str):
    source = tmp_path / "chapter.md"
    source.write_text(MYST + "".join(f"```{{code-cell}} ipython3\n{cell}\n```\n\n" for cell in cells))
    return source


@pytest.mark.parametrize("ending", ["raise SystemExit(0)", "import sys\nsys.exit()", "exit()"])
def test_a_cell_that_ends_the_chapter_is_a_failure_naming_it_never_a_shorter_chapter(ending, tmp_path):
    """papermill takes SystemExit(0) for a notebook that chose to stop, and kept the chapter cut short
    (cached, and published when nothing pasted its values); `exit()` failed on a missing method."""
    from greenery.errors import ReportError
    from greenery.publisher.chapter_process import execute

    source = chapter(tmp_path, "x = 1", ending, "y = 2")
    with pytest.raises(ReportError, match=r"chapter.md: cell In \[2\] \(.*\) (ended the chapter early \(|raised )"
                                          r"SystemExit"):
        execute(source, tmp_path / "out.ipynb", {})
    assert not (tmp_path / "out.ipynb").exists()


def test_a_chapter_whose_process_ends_itself_is_a_failure_naming_it(tmp_path, monkeypatch):
    """os._exit(0) in a cell: the process ended with 0 and no notebook; it was an unexpected error (exit 5)."""
    from greenery.errors import ReportError
    from greenery.publisher import chapter_runs

    source = chapter(tmp_path, "import os\nos._exit(0)")
    monkeypatch.setattr(chapter_runs, "notebook_path", lambda entry: source)
    stage = tmp_path / "stage"
    stage.mkdir()
    cache = chapter_runs.ChapterCache(tmp_path / "cache")
    with pytest.raises(ReportError, match="the chapter's process ended before the chapter did"):
        chapter_runs.run_all(["notebooks/x"], stage, {"notebooks/x": {}}, {"notebooks/x": "k" * 24}, cache,
                             lambda *a: None)
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


def test_last_times_that_are_not_times_are_ignored_for_the_order():
    from greenery.publisher.chapter_runs import expected_seconds

    guess = expected_seconds("notebooks/summary", {})
    for odd in (10**400, -5, float("nan"), float("inf"), "3", True, [1], None):
        assert expected_seconds("notebooks/summary", {"notebooks/summary": odd}) == guess
    assert expected_seconds("notebooks/summary", {"notebooks/summary": 2}) == 2.0


def test_a_result_two_chapters_need_is_computed_once_per_report(tmp_path, monkeypatch):
    """Two chapters running at the same time ask for the same result (greenery.chapter_kit.shared): one
    computes it, the other waits and reads it; each shows the same value. The run's folder goes with its stage."""
    from greenery.publisher import chapter_runs

    counter = tmp_path / "computed"
    sources = {}
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        sources[f"notebooks/{name}"] = chapter(folder, (
            "import time\nimport pandas as pd\nfrom greenery.chapter_kit import shared\n"
            "def slow(n):\n"
            f"    with open({str(counter)!r}, 'a') as handle:\n"
            "        handle.write('x')\n"
            "    time.sleep(1)\n"
            "    return pd.DataFrame({'n': [n]})\n"
            "print(int(shared.computed('t', slow, 7).loc[0, 'n']))"))
    monkeypatch.setattr(chapter_runs, "notebook_path", lambda entry: sources[entry])
    stage = tmp_path / "stage"
    stage.mkdir()
    entries = list(sources)
    chapter_runs.run_all(entries, stage, {e: {} for e in entries}, {e: e[-1] * 24 for e in entries},
                         chapter_runs.ChapterCache(tmp_path / "cache"), lambda *a: None, workers=2)
    assert counter.read_text() == "x"
    for entry in entries:
        shown = nbformat.read(stage / f"{entry}.ipynb", as_version=4).cells[1].outputs
        assert [o.get("text") for o in shown] == ["7\n"]
    assert len(list((stage / ".shared").iterdir())) == 1


def test_each_chapter_is_handed_on_once_it_is_staged_and_cached_while_others_run(tmp_path, monkeypatch):
    """`staged(entry)` (greenery report cleans the chapter for the render there): a reused chapter at once,
    before any chapter runs; a run one as soon as it ended, with its executed notebook in the stage and,
    as executed, in the cache; here while the slow chapter still runs."""
    import psutil

    from greenery.publisher import chapter_runs

    (tmp_path / "q").mkdir()
    (tmp_path / "s").mkdir()
    sources = {"notebooks/quick": chapter(tmp_path / "q", "print(1)"),
               "notebooks/slow": chapter(tmp_path / "s", "import time\ntime.sleep(3)")}
    monkeypatch.setattr(chapter_runs, "notebook_path", lambda entry: sources[entry])
    cache = chapter_runs.ChapterCache(tmp_path / "cache")
    entries = ["notebooks/quick", "notebooks/slow"]
    keys = {e: e[-1] * 24 for e in entries}
    seen = []

    def staged(entry):
        staged_bytes = (stage / f"{entry}.ipynb").read_bytes()
        assert cache.path(entry, keys[entry]).read_bytes() == staged_bytes  # cached before anything changes it
        running = [p for p in psutil.Process().children() if "chapter" in p.cmdline()[4:5]]
        seen.append((entry, len(running)))
        (stage / f"{entry}.ipynb").write_text(staged_bytes.decode().replace('"1\\n"', '"cleaned\\n"'))

    stage = tmp_path / "stage"
    stage.mkdir()
    chapter_runs.run_all(entries, stage, {e: {} for e in entries}, keys, cache, lambda *a: None, workers=2,
                         staged=staged)
    assert seen == [("notebooks/quick", 1), ("notebooks/slow", 0)]  # quick: handed on while slow still ran
    kept = nbformat.read(cache.path("notebooks/quick", keys["notebooks/quick"]), as_version=4)
    assert [o.text for c in kept.cells for o in c.get("outputs", [])] == ["1\n"]  # the cache keeps it as executed
    seen.clear()
    again = tmp_path / "again"
    again.mkdir()
    stage = again
    chapter_runs.run_all(entries, again, {e: {} for e in entries}, keys, cache, lambda *a: None, workers=2,
                         staged=staged)
    assert seen == [("notebooks/quick", 0), ("notebooks/slow", 0)]  # both reused: handed on at once


def test_chapters_cleaned_one_by_one_stage_the_same_book_as_all_at_once(tmp_path, monkeypatch):
    """`prepare_chapter` as each chapter finishes, then `prepare_stage` for the rest, stages the same files as
    `prepare_stage` alone; the stamp's provenance is built when `prepare_stage` runs, as before."""
    import shutil

    from greenery import config
    from greenery.publisher import book_stage

    prov = book_stage.Provenance("a Greenery export", "0123456789ab", "2021-02-10T14:00:00+00:00", "code",
                                 "2000-01-01T00:00:00+00:00")
    monkeypatch.setattr(book_stage, "provenance", lambda source, warehouse: prov)
    monkeypatch.setattr(book_stage, "build_time", lambda: __import__("datetime").datetime(2026, 12, 1, 21, 0,
                                                                                         tzinfo=__import__("datetime").UTC))
    original = tmp_path / "original"
    (original / "notebooks").mkdir(parents=True)
    shutil.copy(config.BOOK_CONFIG_PATH, original / config.BOOK_CONFIG_PATH.name)
    entries = ["notebooks/a", "notebooks/b", "notebooks/c"]
    parameters = {e: {"warehouse": "w", "alpha": 0.1 * (i + 1)} for i, e in enumerate(entries)}
    for entry in entries:
        nb = nbformat.v4.new_notebook()
        nb.metadata["papermill"] = {"x": 1}
        nb.cells = [nbformat.v4.new_code_cell("alpha = 0.1", metadata={"tags": ["injected-parameters"]}),
                    nbformat.v4.new_markdown_cell("# " + entry, metadata={"papermill": {}, "execution": {}})]
        nbformat.write(nb, original / f"{entry}.ipynb")
    whole, split = tmp_path / "whole", tmp_path / "split"
    shutil.copytree(original, whole)
    shutil.copytree(original, split)
    at_once = book_stage.prepare_stage(whole, entries, parameters, None, None)
    for entry in entries[:2]:
        book_stage.prepare_chapter(split, entry, parameters[entry], prov)
    one_by_one = book_stage.prepare_stage(split, entries, parameters, None, None, prov, entries[:2])
    assert one_by_one == at_once and at_once["built_at"] == "2026-12-01T21:00:00+00:00"
    files = sorted(p.relative_to(whole) for p in whole.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(split) for p in split.rglob("*") if p.is_file())
    for name in files:
        assert (whole / name).read_bytes() == (split / name).read_bytes(), name
    assert "Computed with" in (split / "notebooks/a.ipynb").read_text()


def test_a_chapter_the_report_asked_for_never_makes_its_stage_again(tmp_path):
    """The fresh-clone CI caught it under load: Ctrl-C during the chapters left `.book.staging-PID/notebooks`. The
    report removes its stage when it stops; a chapter process it had just asked for started a moment later
    and made the stage's folder again for its output. Run by the report (a shared folder given), a chapter
    whose folder is gone fails at once and makes nothing; run alone, it still makes its output's folder."""
    from greenery.publisher.chapter_process import ERROR_PREFIX, child

    source = chapter(tmp_path, "x = 1")
    gone = tmp_path / ".book.staging-1"
    shared = tmp_path / "shared"
    shared.mkdir()
    run = subprocess.run([sys.executable, "-m", "greenery.publisher.chapter_process", str(source),
                          str(gone / "notebooks" / "x.ipynb"), "{}", "60", str(shared)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 4 and not gone.exists()
    assert run.stderr.strip().splitlines()[-1] == (
        f"{ERROR_PREFIX}{gone / 'notebooks'}: no such folder (the report that staged it has stopped)")
    assert child([str(source), str(tmp_path / "alone" / "x.ipynb"), "{}", "60"]) == 0
    assert (tmp_path / "alone" / "x.ipynb").is_file()
