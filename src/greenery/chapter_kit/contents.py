"""The book's contents: its pages in reading order (_toc.yml, the one home of that order) and each
chapter's source. The rerun page lists them; the publishing machinery executes them in this order."""

from __future__ import annotations

from pathlib import Path

import yaml

from greenery import config


def toc_entries(toc_path: Path = config.TOC_PATH) -> list[str]:
    """Every page of the book, in reading order, as written in _toc.yml (no extension)."""
    toc = yaml.safe_load(toc_path.read_text())
    entries = [toc["root"]]

    def walk(items):
        for item in items or []:
            if "file" in item:
                entries.append(item["file"])
            walk(item.get("sections"))
            walk(item.get("chapters"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return entries


def notebook_entries() -> list[str]:
    return [e for e in toc_entries() if (config.ROOT / f"{e}.md").is_file() and e.startswith("notebooks/")]


def notebook_path(entry: str) -> Path:
    return config.ROOT / f"{entry}.md"


def name_of(entry: str) -> str:
    return Path(entry).name


def read_notebook(entry: str):
    import jupytext

    return jupytext.read(notebook_path(entry))
