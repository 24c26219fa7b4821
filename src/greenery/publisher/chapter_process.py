"""One chapter executed by papermill, in the process it runs in (a fork of the warm server, or alone).

The cells run in this very process (greenery.publisher.shell_engine: no kernel, no sockets), which
runs nothing else. A failure is one line naming the notebook and the cell; a parameter the chapter
refuses, knowing the data, is a ParameterError (exit 2). `python -m greenery.publisher.chapter_process
SOURCE OUTPUT PARAMETERS_JSON TIMEOUT` runs one chapter without the server (its libraries are then
imported first), for debugging one chapter and for `make baselines`. The report's runner adds a fifth
argument: the folder of the report's own through which chapters share results (greenery.chapter_kit.shared).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from greenery import config
from greenery.errors import ParameterError, ReportError

ERROR_PREFIX = "greenery-chapter-error: "  # how a child reports its one-line error to the parent
PARAMETER_PREFIX = "greenery-parameter-error: "  # ... and a parameter its data cannot support (exit 2)


def shown(path: Path) -> str:
    return str(path.relative_to(config.ROOT)) if path.is_relative_to(config.ROOT) else str(path)


def execute(source: Path, output: Path, parameters: dict, make_folder: bool = True):
    """Run one chapter (a jupytext file) with papermill in this process; a failure names the notebook and cell.

    `make_folder` False (the report's runner, which made the output's folder in its stage): a folder that is
    gone is never made again. The report removes its stage when it stops, and a chapter process it had just
    asked for may start a moment later (the warm server ends it once it sees its client gone): that process
    must not leave a folder behind where the stage was."""
    import jupytext
    import nbformat
    import papermill

    from greenery.publisher import shell_engine

    if make_folder:
        output.parent.mkdir(parents=True, exist_ok=True)
    elif not output.parent.is_dir():
        raise ReportError(f"{shown(output.parent)}: no such folder (the report that staged it has stopped)")
    try:
        nb = papermill.execute_notebook(  # nothing written until it succeeded: no error banner to publish
            jupytext.read(source), None, parameters=parameters, engine_name=shell_engine.ENGINE,
            kernel_name="python3", language="python",  # no kernel starts: the names pick the parameters' syntax
            request_save_on_cell_execute=False, progress_bar=False, cwd=str(config.ROOT),
        )
    except papermill.PapermillExecutionError as error:
        if error.ename == ParameterError.__name__:  # the chapter refused a parameter, knowing the data
            raise ParameterError(str(error.evalue).splitlines()[0] if error.evalue else "") from None
        first_line = next((line for line in error.source.splitlines() if line.strip()), "")
        raise ReportError(
            f"{shown(source)}: cell In [{error.exec_count}] ({first_line.strip()[:60]}...) raised "
            f"{error.ename}: {str(error.evalue).splitlines()[0] if error.evalue else ''}"
        ) from None
    for cell in nb.cells:  # papermill takes `SystemExit(0)` for a notebook that chose to stop: not a chapter
        ended = next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"
                      and o.get("ename") == "SystemExit"), None)
        if ended is not None:
            first_line = next((line for line in cell.source.splitlines() if line.strip()), "").strip()[:60]
            raise ReportError(f"{shown(source)}: cell In [{cell.get('execution_count')}] ({first_line}...) ended the "
                              f"chapter early (SystemExit {ended.get('evalue') or 0}); nothing of it was kept")
    for cell in nb.cells:  # papermill's injected parameters hold local paths: never shown
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.metadata["tags"] = [*cell.metadata["tags"], "remove-cell"]
    for line in to_the_log(nb):
        print(f"{shown(source)}: {line}", file=sys.stderr)  # the chapter's log, relayed to the terminal
    nbformat.write(nb, output)
    return nb


def to_the_log(nb) -> list[str]:
    """Take what a chapter's cells wrote to stderr out of the notebook and return its lines.

    That is a warning (matplotlib's "Glyph ... missing" names a file in the environment), a
    library's notice or a traceback's echo: for whoever runs the report, never for readers, so it
    is never captured into a published page."""
    lines = []
    for cell in nb.cells:
        kept = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                lines.extend(line for line in output.get("text", "").splitlines() if line.strip())
            else:
                kept.append(output)
        if "outputs" in cell:
            cell.outputs = kept
    return lines


def child(argv: list[str]) -> int:
    """The chapter runner: execute one chapter; 4 and one error line on stderr if it fails. (Its time
    limit is kept by whoever started it, which stops the process: greenery.publisher.chapter_runs.)"""
    source, output, parameters, _timeout, *shared_folder = argv
    if shared_folder:  # given by the runner, never taken from the environment: only a folder the report made
        from greenery.chapter_kit import shared

        shared.share_through(Path(shared_folder[0]))
    try:
        execute(Path(source), Path(output), json.loads(parameters), make_folder=not shared_folder)
    except ParameterError as error:
        print(PARAMETER_PREFIX + str(error).replace("\n", " "), file=sys.stderr)
        return 2
    except ReportError as error:
        print(ERROR_PREFIX + str(error).replace("\n", " "), file=sys.stderr)
        return 4
    return 0


if __name__ == "__main__":
    raise SystemExit(child(sys.argv[1:]))
