"""A papermill engine that runs a chapter's cells in the chapter's own process, with no Jupyter kernel.

Why: a kernel is a second process talking ZeroMQ. Starting one, a message round-trip for every
output, and papermill saving the whole notebook at each cell's start and end cost about a second a
chapter, more than most chapters' own work. The chapter's process is already a fork of the warm server
(greenery.publisher.warm_server) with every library imported, and runs nothing but this chapter:
an IPython shell in it runs the cells as a kernel's shell would, and this engine records what they
show in the shapes a kernel sends (nbformat outputs: streams, display data, results, errors), so
papermill, nbval and Sphinx see the same notebook.

`ENGINE` is the name to pass to `papermill.execute_notebook(engine_name=...)`.
"""

from __future__ import annotations

import base64
import os
import sys
from contextlib import contextmanager

from IPython.core.displayhook import DisplayHook
from IPython.core.displaypub import DisplayPublisher
from IPython.core.interactiveshell import InteractiveShell
from nbformat.v4 import new_output
from papermill.engines import Engine, papermill_engines
from traitlets import Type

ENGINE = "greenery-shell"
INLINE = "module://matplotlib_inline.backend_inline"


def _as_json(data: dict) -> dict:
    """A display's data as a kernel sends it: bytes (PNG, PDF) base64-encoded, the rest as it is."""
    return {mime: base64.b64encode(value).decode("ascii") if isinstance(value, bytes) else value
            for mime, value in data.items()}


class _Cell:
    """Where the cell running now writes its outputs (the shell's hooks hold one, the engine fills it)."""

    outputs: list | None = None
    pending = {"stdout": "", "stderr": ""}  # printed, not yet an output: a kernel buffers each stream
    by_display_id: dict = {}  # the output a `display(..., display_id=...)` made, for its updates

    @classmethod
    def flush(cls) -> None:
        """What was printed becomes outputs, stdout's then stderr's, as a kernel flushes its streams
        before anything else it shows (and when the cell ends): one output per stream and flush."""
        for name, text in cls.pending.items():
            if text and cls.outputs is not None:
                last = cls.outputs[-1] if cls.outputs else None
                if last is not None and last.output_type == "stream" and last.name == name:
                    last.text += text
                else:
                    cls.outputs.append(new_output("stream", name=name, text=text))
            cls.pending[name] = ""

    @classmethod
    def add(cls, output) -> None:
        cls.flush()
        if cls.outputs is not None:
            cls.outputs.append(output)


class _Stream:
    """sys.stdout or sys.stderr while a cell runs."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.encoding = "utf-8"

    def write(self, text: str) -> int:
        _Cell.pending[self.name] += text
        return len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True


class _Displays(DisplayPublisher):
    """`display(...)`: a display_data output, or an update of one shown earlier under its display id."""

    def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs) -> None:
        output = new_output("display_data", data=_as_json(data), metadata=metadata or {})
        display_id = (transient or {}).get("display_id")
        if update:
            _Cell.flush()
            shown = _Cell.by_display_id.get(display_id)
            if shown is not None:
                shown.data, shown.metadata = output.data, output.metadata
            return
        if display_id is not None:
            _Cell.by_display_id[display_id] = output
        _Cell.add(output)

    def clear_output(self, wait=False) -> None:
        _Cell.flush()
        if _Cell.outputs is not None:
            _Cell.outputs.clear()


class _Results(DisplayHook):
    """A cell's last expression: an execute_result output, never a printed `Out[n]:`."""

    def start_displayhook(self) -> None:
        pass

    def write_output_prompt(self) -> None:
        pass

    def write_format_data(self, format_dict, md_dict=None) -> None:
        _Cell.add(new_output("execute_result", data=_as_json(format_dict), metadata=md_dict or {},
                             execution_count=self.prompt_count))

    def finish_displayhook(self) -> None:
        pass


class _Shell(InteractiveShell):
    """IPython's shell with the kernel's ways of showing things: outputs, not a terminal."""

    displayhook_class = Type(_Results)
    display_pub_class = Type(_Displays)

    def _showtraceback(self, etype, evalue, stb) -> None:
        _Cell.add(new_output("error", ename=str(etype.__name__), evalue=str(evalue), traceback=list(stb)))

    def enable_gui(self, gui=None) -> None:  # charts are drawn inline; there is no event loop to join
        pass

    def ask_exit(self) -> None:  # `exit()` or `quit()` in a cell: the chapter stops there, as a failure
        raise SystemExit("exit() called in a cell")


def new_shell() -> InteractiveShell:
    """A shell of its own for one notebook, as a kernel of its own would give it: an empty namespace,
    counts from 1 (a chapter's process runs one chapter; this keeps a second one apart all the same)."""
    from traitlets.config import Config

    config = Config()
    config.InteractiveShell.colors = "nocolor"  # tracebacks go to the log: no terminal colours
    config.HistoryManager.enabled = False  # no history database written in the user's home
    _Shell.clear_instance()
    _Cell.by_display_id = {}
    ip = _Shell.instance(config=config)
    # Charts as a kernel draws them: ipykernel makes the inline backend matplotlib's default, and
    # importing it in a shell registers the hook that shows a cell's open figures when it ends.
    os.environ["MPLBACKEND"] = INLINE
    ip.enable_matplotlib(INLINE)
    return ip


@contextmanager
def _capturing(outputs: list):
    saved = sys.stdout, sys.stderr
    _Cell.outputs = outputs
    sys.stdout, sys.stderr = _Stream("stdout"), _Stream("stderr")
    try:
        yield
    finally:
        _Cell.flush()
        sys.stdout, sys.stderr = saved
        _Cell.outputs = None


class ShellEngine(Engine):
    """Runs the cells one by one in a `new_shell()`; stops at the first error, which papermill then raises
    (`raise_for_execution_errors`) as it does for a kernel's."""

    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs) -> None:
        from ipykernel.ipkernel import IPythonKernel

        ip = new_shell()
        nb_man.nb.metadata["language_info"] = IPythonKernel.language_info  # what a kernel's reply says
        for index, cell in enumerate(nb_man.nb.cells):
            if cell.cell_type != "code" or not cell.source.strip():
                continue  # as nbclient: an empty code cell is not run and keeps no count
            nb_man.cell_start(cell, index)
            cell.outputs = []
            count = ip.execution_count
            with _capturing(cell.outputs):
                result = ip.run_cell(cell.source, store_history=True)
            cell.execution_count = count
            failed = not result.success
            if failed:
                nb_man.cell_exception(cell, index)
            nb_man.cell_complete(cell, index)
            if failed:
                break


papermill_engines.register(ENGINE, ShellEngine)
