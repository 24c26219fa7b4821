"""Running the chapters: their parameters (declared, and --param), which ones changed, and executing
them, `workers` at a time, each within a time limit, each cached as soon as it finished.

Each chapter is a jupytext notebook executed by papermill in a process of its own, forked from the
warm server that imported its libraries once (greenery.publisher.warm_server), at most `workers` at
a time, the longest first (while the server still imports the statistics, one fewer, light chapters
only), and each within a time limit. A chapter that fails or runs out of time
is reported by name and cell, and every process it started is stopped. A chapter that finished
is cached at once by fingerprint, so a rerun after any failure or signal does not redo it.

Each chapter's process is greenery.publisher.chapter_process. A result two chapters both need is computed
once, in a folder of the run's own (greenery.chapter_kit.shared).
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

from greenery import config
from greenery.chapter_kit.contents import name_of, notebook_path, read_notebook
from greenery.errors import ParameterError, ReportError, UsageError
from greenery.faults import checkpoint
from greenery.outputs import atomic
from greenery.outputs.ownership import kind, read_own
from greenery.publisher import warm_server as warm
from greenery.publisher.chapter_process import ERROR_PREFIX, PARAMETER_PREFIX, shown
from greenery.publisher.processes import die_with_parent, kill_tree
from greenery.publisher.warm_client import NO_SERVER, client_command


@cache
def declared_parameters(entry: str) -> dict[str, object]:
    """The names and default values a chapter's `parameters` cell declares (simple literals only)."""
    notebook = read_notebook(entry)
    cell = next((c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])), None)
    declared: dict[str, object] = {}
    for statement in ast.parse(cell.source).body if cell else []:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1 and isinstance(
                statement.targets[0], ast.Name):
            declared[statement.targets[0].id] = ast.literal_eval(statement.value)
    return declared


RULE = re.compile(r"\[([^\]]+)\]\s*$")  # a parameter's allowed values, at the end of its comment


@cache
def parameter_rules(entry: str) -> dict[str, str]:
    """The allowed values a parameters cell states for a name, in brackets at the end of its comment:
    `[one of: holm, bh]`, `[at least 1]`, `[above 0; below 1]`."""
    cell = next((c for c in read_notebook(entry).cells if "parameters" in c.metadata.get("tags", [])), None)
    rules = {}
    for line in cell.source.splitlines() if cell else []:
        name, _, rest = line.partition("=")
        found = RULE.search(rest.partition("#")[2]) if "#" in rest else None
        if found:
            rules[name.strip()] = found.group(1).strip()
    return rules


def _check_rule(name: str, value: object, rule: str) -> None:
    """Refuse a value the parameters cell's rule does not allow (UsageError, exit 2)."""
    for part in (p.strip() for p in rule.split(";")):
        kind, _, bound = part.partition(" ") if not part.startswith("one of:") else ("one of:", "", part[7:])
        if kind == "one of:":
            allowed = [a.strip() for a in bound.split(",")]
            ok = str(value) in allowed
        elif kind == "at":  # "at least N" / "at most N"
            which, _, number = bound.partition(" ")
            ok = value >= float(number) if which == "least" else value <= float(number)
        elif kind in ("above", "below"):
            ok = value > float(bound) if kind == "above" else value < float(bound)
        else:
            raise ValueError(f"unknown parameter rule {part!r} for {name}")
        if not ok:
            raise UsageError(f"--param {name}={value}: must be {part}")


INT_LIMIT = 2**63  # a whole number travels to DuckDB as BIGINT


def _parse_value(name: str, text: str, default: object) -> object:
    """`text` as the type of the chapter's default; UsageError when it is not one, or when it is one
    no chapter can compute with: a whole number beyond BIGINT, a float that is not a normal number
    (5e-324 halves to 0, and a level of 0 has an infinite critical value)."""
    try:
        if isinstance(default, bool):
            if text.lower() not in {"true", "false"}:
                raise ValueError
            return text.lower() == "true"
        if isinstance(default, int):
            value = int(text)
            if not -INT_LIMIT < value < INT_LIMIT:
                raise UsageError(f"--param {name}={text}: too large to compute with (at most {INT_LIMIT - 1:,})")
            return value
        if isinstance(default, float):
            value = float(text)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError
            if value and abs(value) < sys.float_info.min:
                raise UsageError(f"--param {name}={text}: too small to compute with "
                                 f"(the smallest is {sys.float_info.min:.1e}, or 0)")
            return value
    except ValueError:
        raise UsageError(f"--param {name}={text}: expected {type(default).__name__} "
                         f"(the default is {default!r})") from None
    return text


def analysis_parameters(given: list[str], entries: list[str]) -> dict[str, object]:
    """`--param NAME=VALUE` options, checked against the chapters' parameters cells and typed like
    their defaults. An unknown name or a value of the wrong type is a UsageError (exit 2)."""
    reserved = {"data_dir", "warehouse"}  # set by `greenery report` itself
    declared: dict[str, object] = {}
    rules: dict[str, str] = {}
    for entry in entries:
        declared.update({k: v for k, v in declared_parameters(entry).items() if k not in reserved})
        rules.update(parameter_rules(entry))
    values: dict[str, object] = {}
    for option in given:
        name, equals, text = option.partition("=")
        name = name.strip()
        if not equals or not name:
            raise UsageError(f"--param {option}: expected NAME=VALUE")
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise UsageError(f"--param {name}: no chapter declares this parameter (known: {known})")
        if name in values:  # which one was meant? never the last one silently
            raise UsageError(f"--param {name}: given twice; give it once")
        values[name] = _parse_value(name, text.strip(), declared[name])
        if name in rules:
            _check_rule(name, values[name], rules[name])
    return values


def chapter_parameters(entry: str, common: dict, analysis: dict) -> dict:
    """What papermill injects into one chapter: the common ones and the analysis values it declares."""
    declared = declared_parameters(entry)
    return {**common, **{k: v for k, v in analysis.items() if k in declared}}


class ChapterCache:
    """Executed chapters kept by fingerprint, so an unchanged chapter is never run twice."""

    def __init__(self, folder: Path):
        self.folder = folder

    def path(self, entry: str, key: str) -> Path:
        return self.folder / f"{name_of(entry)}-{key[:24]}.ipynb"

    def get(self, entry: str, key: str) -> Path | None:
        """The executed chapter kept under `key`, or None. An entry that cannot be read as a notebook (a
        file cut short by a full disk or a crash, or edited) is discarded, and the chapter runs again."""
        import nbformat

        found = self.path(entry, key)
        if kind(found) is None:
            return None
        data = read_own(found)
        try:
            if data is not None:
                nbformat.reads(data.decode("utf-8"), as_version=4)
        except Exception:  # NotJSONError, a TypeError on a wrong shape, ...: whatever it is, it is not reusable
            data = None
        if data is None:
            if kind(found) == "file":
                found.unlink()
            return None
        return found

    def put(self, entry: str, key: str, executed: Path) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for old in self.folder.glob(f"{name_of(entry)}-*.ipynb"):  # one version per chapter is enough
            old.unlink(missing_ok=True)
        atomic.copy_file(executed, self.path(entry, key))


def expected_seconds(entry: str, last_seconds: dict[str, float]) -> float:
    """How long a chapter should take: its last run's time, else a guess from its source's length
    (about a second per 100 lines on this report's chapters), for scheduling only."""
    seconds = last_seconds.get(entry)
    if isinstance(seconds, int | float) and not isinstance(seconds, bool):
        with contextlib.suppress(OverflowError):  # a whole number beyond a float's range: not a time
            if 0 <= float(seconds) < 1e9:
                return float(seconds)
    return notebook_path(entry).stat().st_size / 4000


# A MyST notebook's code cell (jupytext): its fence, then its source up to the closing fence.
CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
KIT = "greenery.chapter_kit"


def _kit_modules(code: str) -> set[str]:
    """The kit's modules a cell's code imports, read by Python's own parser (comments, strings, parentheses,
    continued lines and `;` as Python reads them). A cell Python cannot parse (an IPython magic, say): every
    name of it, as if each were imported (a STATISTICS name among them makes the chapter heavy: forked later,
    never wrong)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return set(re.findall(r"\w+", code))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == KIT and not node.level:
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(KIT + ".") and not node.level:
            names.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            names.update(alias.name.split(".")[2] for alias in node.names if alias.name.startswith(KIT + "."))
    return names


def light(entry: str) -> bool:
    """Whether a chapter imports none of the kit's statistics modules (warm_server.STATISTICS), read from its
    code cells' import statements: it can be forked before the chapters' server has imported scipy.stats and
    statsmodels. Only the order of forks depends on it: a chapter that uses scipy after all (the kit's `stats`
    imports it on first use) imports it itself, and its outputs are the same. Source that is not UTF-8 is
    read with replacements here: the chapter's own run reports it."""
    source = notebook_path(entry).read_text(encoding="utf-8", errors="replace")
    names = set().union(*(_kit_modules(code) for code in CODE_CELL.findall(source)))
    return not names & set(warm.STATISTICS)


def _relay(stderr: str) -> None:
    """What a chapter's process printed, less our error line (or its client's, when no server forked it)."""
    for line in stderr.splitlines():
        if line.strip() and not line.startswith((ERROR_PREFIX, PARAMETER_PREFIX, NO_SERVER)):
            print(line, file=sys.stderr)


def _wait_for_one(running: dict[str, tuple[subprocess.Popen, float, Path]], timeout: float,
                  also: list = ()) -> None:
    """Return as soon as one of the running chapters' processes has ended (its pidfd is readable), or one of
    `also` is readable (the warm server saying it is complete), or when the first of their time limits is
    reached; at most a second (poll's cost is nothing). Without pidfds (Linux < 5.3), a twentieth of a
    second."""
    now = time.monotonic()
    limit = max(0.0, min([started + timeout - now for _, started, _ in running.values()] + [1.0]))
    descriptors: list[int] = []
    try:
        for process, _, _ in running.values():
            descriptors.append(os.pidfd_open(process.pid))  # a process that ended and is not reaped: readable
        select.select([*descriptors, *also], [], [], limit)
    except (AttributeError, OSError):  # no pidfd here
        time.sleep(min(limit, 0.05))
    finally:
        for fd in descriptors:
            os.close(fd)


def run_all(entries: list[str], stage: Path, parameters: dict[str, dict], keys: dict[str, str],
            cache: ChapterCache, log: Callable[..., None], timeout: float = config.CHAPTER_TIMEOUT,
            workers: int | None = None, server: warm.Server | None = None,
            last_seconds: dict[str, float] | None = None,
            staged: Callable[[str], None] | None = None) -> dict[str, float]:
    """Execute the chapters that changed, `workers` at a time (default: one per core); reuse the rest.

    Chapters only read the warehouse, so they are independent. The longest start first (by
    `last_seconds`, what each took last time, else by the length of its source), so that no long
    chapter starts last while the other workers idle. The first failure or timeout stops the run; on
    any exit (failure, timeout, signal) every chapter process is stopped.
    Chapters are forked from `server` (greenery.publisher.warm_server; the caller stops it), else from a
    server of this call's own. `staged(entry)` is called for each chapter once its executed notebook is in the
    stage (and in the cache), a reused one at once, a run one as soon as it ended, while others still run:
    `greenery report` cleans it for the render there (greenery.publisher.book_stage.prepare_chapter)."""
    timings: dict[str, float] = {}
    todo = []
    for entry in entries:
        target = stage / f"{entry}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        cached = cache.get(entry, keys[entry])
        if cached:
            atomic.copy_file(cached, target)
            if staged is not None:
                staged(entry)
        else:
            todo.append(entry)
    if len(todo) < len(entries):
        log(f"{len(entries) - len(todo)} of {len(entries)} chapters unchanged: reused")
    todo.sort(key=lambda entry: expected_seconds(entry, last_seconds or {}), reverse=True)
    workers = max(1, min(len(todo), workers or os.cpu_count() or 1))
    logs = stage / ".logs"
    logs.mkdir(exist_ok=True)
    # Results two chapters both need (greenery.chapter_kit.shared): computed by one, read by the other, for
    # this run only (the stage is this run's own, and removed with it).
    shared = stage / ".shared"
    shared.mkdir(exist_ok=True)
    running: dict[str, tuple[subprocess.Popen, float, Path]] = {}
    waiting = list(todo)
    lights = {entry: light(entry) for entry in todo}  # read once: the source may change while the run goes on
    # Only a heavy chapter needs the second stage: without one its lateness or end is no failure of the run
    heavy = not all(lights.values())
    own_server = server is None
    server = server or warm.Server()
    try:
        if todo:  # the chapters' server forks light chapters once their imports are in (warm_server.serve)
            server.base_environment()
        while waiting or running:
            complete = server.complete() if heavy else server.said_ready()
            # While the server imports the statistics, its import holds a core: one worker fewer, light
            # chapters only.
            while len(running) < (workers if complete else max(1, workers - 1)):
                entry = next((e for e in waiting if complete or lights[e]), None)
                if entry is None:
                    break
                waiting.remove(entry)
                env = server.environment() if complete else server.base_environment()
                err = logs / f"{name_of(entry)}.err"
                with err.open("w") as handle:
                    command = client_command("chapter", str(notebook_path(entry)), str(stage / f"{entry}.ipynb"),
                                                  json.dumps(parameters[entry]), str(timeout), str(shared))
                    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=handle, env=env,
                                             stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
                    running[entry] = (child, time.monotonic(), err)
            if not running:  # nothing can start before the server is complete: wait for it (its deadline)
                server.environment()
                continue
            _wait_for_one(running, timeout, server.waking() if heavy else [])
            for entry, (process, started, err) in list(running.items()):
                seconds = time.monotonic() - started
                if process.poll() is None:
                    if seconds > timeout:
                        kill_tree(process.pid)
                        del running[entry]
                        raise ReportError(f"{shown(notebook_path(entry))}: still running after {timeout:g} s "
                                          "(the chapter time limit, --chapter-timeout); stopped")
                    continue
                del running[entry]
                stderr = err.read_text(errors="replace")
                _relay(stderr)
                refused = [line.removeprefix(PARAMETER_PREFIX) for line in stderr.splitlines()
                           if line.startswith(PARAMETER_PREFIX)]
                if process.returncode != 0 and refused:
                    raise ParameterError(refused[-1])
                if process.returncode != 0:
                    reported = [line.removeprefix(ERROR_PREFIX) for line in stderr.splitlines()
                                if line.startswith(ERROR_PREFIX)]
                    lost = None if reported else server.lost()  # the chapter died with the server under it
                    if lost:
                        server.stop()
                        raise ReportError(f"{shown(notebook_path(entry))}: stopped with the chapters' warm server "
                                          f"(greenery.publisher.warm_server), which {lost}")
                    raise ReportError(reported[-1] if reported else
                                      f"{shown(notebook_path(entry))}: the chapter's process ended with "
                                      f"code {process.returncode}")
                if not (stage / f"{entry}.ipynb").is_file():  # a cell ended the process itself (os._exit(0))
                    raise ReportError(f"{shown(notebook_path(entry))}: the chapter's process ended before the "
                                      "chapter did (a cell ended it); nothing of it was kept")
                cache.put(entry, keys[entry], stage / f"{entry}.ipynb")
                if staged is not None:
                    staged(entry)
                checkpoint("chapters")
                timings[entry] = round(seconds, 2)
                log(f"[{len(timings)}/{len(todo)}] {name_of(entry)}.md executed in {seconds:.1f} s")
    finally:
        for process, _, _ in running.values():
            kill_tree(process.pid)
        if own_server:
            server.stop()  # and every fork still running
    return timings
