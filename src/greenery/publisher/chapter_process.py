"""One chapter executed by papermill, in the process it runs in (a fork of the warm server, or alone).

The chapter gets a kernel of its own from this very environment (never another environment's
`python3` kernelspec), forked from the warm server too when one runs. A failure is one line naming
the notebook and the cell. `python -m greenery.publisher.chapter_process SOURCE OUTPUT
PARAMETERS_JSON TIMEOUT` runs one chapter without the server (a kernel then starts cold), for
debugging one chapter.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from greenery import config
from greenery.errors import ReportError
from greenery.publisher.warm_client import SOCKET_ENV, client_command

KERNEL_NAME = "greenery-python3"
ERROR_PREFIX = "greenery-chapter-error: "  # how a child reports its one-line error to the parent

_kernel_folder: tempfile.TemporaryDirectory | None = None


def own_kernel() -> str:
    """A kernelspec that runs this interpreter, found first on JUPYTER_PATH (removed at exit)."""
    global _kernel_folder
    if _kernel_folder is None:
        _kernel_folder = tempfile.TemporaryDirectory(prefix="greenery-kernel-")
        spec = Path(_kernel_folder.name) / "kernels" / KERNEL_NAME
        spec.mkdir(parents=True)
        # Forked from the warm server when one runs (greenery.publisher.warm_server), else a new process.
        argv = (client_command("kernel", "-f", "{connection_file}") if os.environ.get(SOCKET_ENV)
                else [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"])
        (spec / "kernel.json").write_text(json.dumps({
            "argv": argv,
            "display_name": "Python 3", "language": "python"}))
        os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [_kernel_folder.name,
                                                                   os.environ.get("JUPYTER_PATH")]))
    return KERNEL_NAME


def shown(path: Path) -> str:
    return str(path.relative_to(config.ROOT)) if path.is_relative_to(config.ROOT) else str(path)


def execute(source: Path, output: Path, parameters: dict, timeout: float = config.CHAPTER_TIMEOUT):
    """Run one chapter (a jupytext file) with papermill in this process; a failure names the notebook and cell."""
    import jupytext
    import nbformat
    import papermill

    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        nb = papermill.execute_notebook(
            jupytext.read(source), str(output), parameters=parameters, kernel_name=own_kernel(),
            progress_bar=False, cwd=str(config.ROOT), execution_timeout=int(timeout),
        )
    except papermill.PapermillExecutionError as error:
        first_line = next((line for line in error.source.splitlines() if line.strip()), "")
        raise ReportError(
            f"{shown(source)}: cell In [{error.exec_count}] ({first_line.strip()[:60]}...) raised "
            f"{error.ename}: {str(error.evalue).splitlines()[0] if error.evalue else ''}"
        ) from None
    for cell in nb.cells:  # papermill's injected parameters hold local paths: never shown
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.metadata["tags"] = [*cell.metadata["tags"], "remove-cell"]
    nbformat.write(nb, output)
    return nb


def child(argv: list[str]) -> int:
    """The chapter runner: execute one chapter; 4 and one error line on stderr if it fails."""
    global _kernel_folder
    source, output, parameters, timeout = argv
    try:
        execute(Path(source), Path(output), json.loads(parameters), float(timeout))
    except ReportError as error:
        print(ERROR_PREFIX + str(error).replace("\n", " "), file=sys.stderr)
        return 4
    finally:  # now, not at exit: a fork of the warm server ends without running exit handlers
        if _kernel_folder is not None:
            _kernel_folder.cleanup()
            _kernel_folder = None
    return 0


if __name__ == "__main__":
    raise SystemExit(child(sys.argv[1:]))
