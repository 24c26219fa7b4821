"""The package's layering: every import (function-level ones included) looks down, never up or round.

From the top: the command line; the developers' tools; the publishing machinery; the chapter kit;
the warehouse; the generated sample; writing outputs safely; the base (config, errors, db, faults,
and the raw export's contract, which every layer reads). A module may import its own layer or any layer below it. Chapters (notebooks/*.md)
import only the chapter kit. No two modules import each other, directly or round a longer circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import jupytext
import pytest

from greenery import config

SRC = config.ROOT / "src"
LAYERS = [  # top first
    ("command line", ["greenery.cli", "greenery.__main__"]),
    ("developer tools", ["greenery.tools"]),
    ("publishing machinery", ["greenery.publisher"]),
    ("chapter kit", ["greenery.chapter_kit"]),
    ("warehouse", ["greenery.warehouse"]),
    ("sample", ["greenery.sample"]),
    ("outputs", ["greenery.outputs"]),
    ("base", ["greenery.config", "greenery.errors", "greenery.db", "greenery.faults", "greenery.contract", "greenery"]),
]


def layer_of(module: str) -> int:
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes if p != "greenery"):
            return rank
    if module == "greenery":
        return len(LAYERS) - 1
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS in tests/test_layers.py")


def module_name(path: Path, root: Path = SRC) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def greenery_imports(tree: ast.AST, modules: set[str]) -> set[str]:
    """Every greenery module an AST imports, at any depth: `from a import b` counts b when b is a module."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "greenery"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "greenery":
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules}
    return found


def import_graph(root: Path = SRC) -> dict[str, set[str]]:
    files = {module_name(p, root): p for p in (root / "greenery").rglob("*.py")}
    return {name: greenery_imports(ast.parse(path.read_text()), set(files)) - {name} for name, path in files.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph.get(node, ()):
            if other not in graph:
                continue
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def upward(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} ({LAYERS[layer_of(a)][0]}) imports {b} ({LAYERS[layer_of(b)][0]})"
                  for a, targets in graph.items() for b in targets if layer_of(b) < layer_of(a))


def test_no_module_imports_a_layer_above_its_own():
    assert upward(import_graph()) == []


def test_there_is_no_import_circle():
    assert circles(import_graph()) == []


def test_the_chapter_kit_imports_nothing_of_the_machinery():
    kit = {m: t for m, t in import_graph().items() if m.startswith("greenery.chapter_kit")}
    assert kit, "the chapter kit is missing"
    assert not {m: {t for t in ts if t.startswith("greenery.publisher")} for m, ts in kit.items()
                if any(t.startswith("greenery.publisher") for t in ts)}


@pytest.mark.parametrize("chapter", sorted((config.ROOT / "notebooks").glob("*.md")), ids=lambda p: p.stem)
def test_chapters_import_only_their_kit(chapter):
    code = "\n".join(c.source for c in jupytext.read(chapter).cells if c.cell_type == "code")
    imported = greenery_imports(ast.parse(code), set())
    assert imported and all(m.startswith("greenery.chapter_kit") for m in imported), imported


# --- the checks themselves can fail


def write_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "greenery" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_function_level_import_circle_is_found(tmp_path):
    root = write_package(tmp_path, {
        "__init__.py": "",
        "publisher/__init__.py": "",
        "publisher/a.py": "def f():\n    from greenery.publisher import b\n",
        "publisher/b.py": "from greenery.publisher.a import f\n",
    })
    assert circles(import_graph(root)) == [["greenery.publisher.a", "greenery.publisher.b"]]


def test_the_kit_importing_the_machinery_is_found(tmp_path):
    root = write_package(tmp_path, {
        "__init__.py": "",
        "chapter_kit/__init__.py": "",
        "chapter_kit/book.py": "def show():\n    from greenery.publisher.book_stage import when\n",
        "publisher/__init__.py": "",
        "publisher/book_stage.py": "",
        "warehouse/__init__.py": "",
        "warehouse/build.py": "from greenery import sample\n",
        "export/__init__.py": "",
        "export/sample.py": "",
    })
    assert upward(import_graph(root)) == [
        "greenery.chapter_kit.book (chapter kit) imports greenery.publisher.book_stage (publishing machinery)"]
