"""One chapter executed by papermill, in the process it runs in (a fork of the warm server, or alone).

The chapter gets a kernel of its own from this very environment (never another environment's
`python3` kernelspec), forked from the warm server too when one runs, talking over Unix sockets
(never TCP ports chosen racily). A failure is one line naming the notebook and the cell; a parameter
the chapter refuses, knowing the data, is a ParameterError (exit 2). `python -m
greenery.publisher.chapter_process SOURCE OUTPUT PARAMETERS_JSON TIMEOUT` runs one chapter without
the server (a kernel then starts cold), for debugging one chapter.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import uuid
from functools import cache
from pathlib import Path

from greenery import config
from greenery.errors import ParameterError, ReportError
from greenery.publisher.warm_client import SOCKET_ENV, client_command

KERNEL_NAME = "greenery-python3"
ERROR_PREFIX = "greenery-chapter-error: "  # how a child reports its one-line error to the parent
PARAMETER_PREFIX = "greenery-parameter-error: "  # ... and a parameter its data cannot support (exit 2)

_kernel_folder: tempfile.TemporaryDirectory | None = None
KERNEL_DIR_ENV = "GREENERY_KERNEL_DIR"  # the kernel folder made by run_all, which removes it


def kernel_folder(folder: Path, forked: bool) -> dict[str, str]:
    """Write into `folder` a kernelspec that runs this interpreter (forked from the warm server when
    one runs, greenery.publisher.warm_server, else a new process); returns the environment that makes Jupyter
    use it, and keep the kernels' connection files and sockets in it too (removed with it)."""
    spec = folder / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    argv = (client_command("kernel", "-f", "{connection_file}") if forked
            else [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"])
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "Python 3", "language": "python"}))
    (folder / "r").mkdir(exist_ok=True)
    return {KERNEL_DIR_ENV: str(folder), "JUPYTER_RUNTIME_DIR": str(folder / "r"),
            "JUPYTER_PATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("JUPYTER_PATH")]))}


def own_kernel() -> str:
    """The kernelspec of this interpreter: the runner's (run_all made it), else one of this process's own."""
    global _kernel_folder
    if _kernel_folder is None and not os.environ.get(KERNEL_DIR_ENV):
        _kernel_folder = tempfile.TemporaryDirectory(prefix="greenery-kernel-")
        os.environ.update(kernel_folder(Path(_kernel_folder.name), forked=bool(os.environ.get(SOCKET_ENV))))
    return KERNEL_NAME


@cache
def _kernel_manager():
    """Kernels talk over Unix sockets named after their connection file, never TCP ports: a port
    chosen by one process can be taken by another before its kernel binds it (two chapters starting
    at once: `ZMQError: Address already in use`, "Kernel died")."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class IpcKernelManager(AsyncKernelManager):
        @default("transport")
        def _default_transport(self):  # TCP only where a socket's path would pass its 107 bytes
            from jupyter_core.paths import jupyter_runtime_dir

            return "ipc" if len(jupyter_runtime_dir()) + len("/k-0123456789abcdef-65535") <= 107 else "tcp"

        @default("ip")
        def _default_ip(self):  # a socket path of this kernel's own (the default may be shared: `kernel-ipc`)
            from jupyter_core.paths import jupyter_runtime_dir

            return os.path.join(jupyter_runtime_dir(), f"k-{uuid.uuid4().hex[:16]}")

        @default("connection_file")
        def _default_connection_file(self):  # in the runtime folder (removed with it), never a bare $TMPDIR file
            from jupyter_core.paths import jupyter_runtime_dir

            return os.path.join(jupyter_runtime_dir(), f"kernel-{uuid.uuid4().hex}.json")

    return IpcKernelManager


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
            kernel_manager_class=_kernel_manager(),
        )
    except papermill.PapermillExecutionError as error:
        if error.ename == ParameterError.__name__:  # the chapter refused a parameter, knowing the data
            raise ParameterError(str(error.evalue).splitlines()[0] if error.evalue else "") from None
        first_line = next((line for line in error.source.splitlines() if line.strip()), "")
        raise ReportError(
            f"{shown(source)}: cell In [{error.exec_count}] ({first_line.strip()[:60]}...) raised "
            f"{error.ename}: {str(error.evalue).splitlines()[0] if error.evalue else ''}"
        ) from None
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
    """The chapter runner: execute one chapter; 4 and one error line on stderr if it fails."""
    global _kernel_folder
    source, output, parameters, timeout = argv
    try:
        execute(Path(source), Path(output), json.loads(parameters), float(timeout))
    except ParameterError as error:
        print(PARAMETER_PREFIX + str(error).replace("\n", " "), file=sys.stderr)
        return 2
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
