"""The documentation holds together: README.md and docs/*.md link only to files and headings that
exist, name only paths that exist, the README stays short enough to finish, and the annotated tree
of docs/contributing.md lists only what is there.

Links are checked as GitHub resolves them (relative to the page, anchors by GitHub's heading slugs),
which is also how they resolve in a local checkout. Each check is shown to fail on a broken case."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from greenery import config
from greenery.tools import bench

ROOT = config.ROOT
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 160
# Backticked paths under these folders name files of the checkout (data/ and _build/ are made by runs).
CHECKED_PREFIXES = ("src/", "tests/", "docs/", "book/", "notebooks/", ".github/", ".ci/")

FENCE = re.compile(r"^\s*(```|~~~)")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, line))
    return lines


def fenced_blocks(text: str) -> list[list[str]]:
    blocks, current = [], None
    for line in text.splitlines():
        if FENCE.match(line):
            if current is None:
                current = []
            else:
                blocks.append(current)
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: inline markup dropped, lowercased, every character that is not a
    letter, digit, space, hyphen or underscore removed, spaces made hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a page, repeated headings numbered as GitHub numbers them (-1, -2...)."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in prose_lines(page.read_text()):
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading:
            slug = github_slug(heading.group(1))
            count = seen.get(slug, 0)
            found.add(slug if count == 0 else f"{slug}-{count}")
            seen[slug] = count + 1
    return found


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """Every relative link of `page` (images included) whose file or heading does not exist."""
    problems = []
    for number, line in prose_lines(page.read_text()):
        for target in LINK.findall(CODE_SPAN.sub("", line)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...: not ours to check
                continue
            where = f"{page.relative_to(root)}:{number}: {target}"
            path_part, _, anchor = target.partition("#")
            if path_part.startswith("/"):
                problems.append(f"{where}: absolute, so it breaks on GitHub or locally")
                continue
            linked = (page.parent / path_part).resolve() if path_part else page
            if not linked.is_relative_to(root.resolve()) or not linked.exists():
                problems.append(f"{where}: no such file")
            elif anchor and (linked.suffix != ".md" or anchor not in anchors(linked)):
                problems.append(f"{where}: no heading with that anchor")
    return problems


def path_exists(name: str, root: Path = ROOT) -> bool:
    """A named path exists: `*` must match something, a `<placeholder>` stands for any name in its folder."""
    name = name.rstrip(".,;:")
    if "<" in name:
        before = name.split("<", 1)[0]
        return (root / before).is_dir() if before.endswith("/") else (root / before).parent.is_dir()
    if "*" in name:
        return any(root.glob(name))
    return (root / name).exists()


def missing_paths(page: Path, root: Path = ROOT) -> list[str]:
    """Every path under a checked folder that the page names in backticks and that does not exist."""
    problems = []
    for number, line in prose_lines(page.read_text()):
        for _, code in CODE_SPAN.findall(line):
            for token in code.split():
                if token.startswith(CHECKED_PREFIXES) and not path_exists(token, root):
                    problems.append(f"{page.relative_to(root)}:{number}: `{token}` does not exist")
    return problems


def tree_paths(block: list[str]) -> list[str]:
    """The paths an annotated tree lists: `name  <- what it holds`, two spaces of indent per folder level;
    a line holding only `folder/` opens a folder; `a, b` and `x|y|z/` name several."""
    folders: list[str] = []
    paths = []
    for line in block:
        entry = line.split("<-", 1)[0].rstrip()
        if not entry.strip() or ("<-" not in line and (" " in entry.strip() or not entry.endswith("/"))):
            continue  # a continuation of the description above
        depth = (len(entry) - len(entry.lstrip())) // 2
        folders = folders[:depth]
        name = entry.strip()
        for part in [p.strip() for p in name.split(",")]:
            head, _, rest = part.partition("/")
            options = [part] if "|" not in part else [f"{head}/{o}" for o in rest.rstrip("/").split("|")]
            paths += ["".join(folders) + option for option in options]
        if name.endswith("/") and "," not in name and "|" not in name:
            folders.append(name)
    return paths


def layout_tree(page: Path) -> list[str]:
    text = page.read_text()
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    return fenced_blocks(section)[0]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    assert broken_links(page) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_named_path_exists(page):
    assert missing_paths(page) == []


def test_the_readme_is_short_and_keeps_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) < README_MAX_LINES
    assert "make report" in text and "make test" in text
    assert "GREENERY_DATA_DIR" in text and "--data-dir" in text and "_build/html/index.html" in text


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in LINK.findall((ROOT / "README.md").read_text())}
    assert {p for p in PAGES[1:] if p.resolve() not in linked} == set()


def test_the_annotated_tree_lists_only_what_exists():
    paths = tree_paths(layout_tree(ROOT / "docs" / "contributing.md"))
    assert "src/greenery/publisher/chapter_process.py" in paths  # the tree was parsed, not skipped
    assert [p for p in paths if not path_exists(p)] == []


def test_the_tree_names_every_module_of_the_package():
    listed = set(tree_paths(layout_tree(ROOT / "docs" / "contributing.md")))
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "src" / "greenery").rglob("*.py")
               if p.name not in {"__init__.py", "__main__.py"} and "analyses" not in p.parts}
    assert modules - listed == set()


def test_the_bench_tables_have_their_markers_once_in_the_scale_page():
    for start, end in [(bench.DOCS_START, bench.DOCS_END), ("<!-- bench-spark:start -->", "<!-- bench-spark:end -->")]:
        bench.split_at_markers(bench.SCALE_PAGE, start, end)  # stops the run when a marker is lost


# --- the checks themselves can fail


def test_github_slugs():
    assert github_slug("DuckDB's resources") == "duckdbs-resources"
    assert github_slug("Scheduled rebuild (GitHub Actions)") == "scheduled-rebuild-github-actions"
    assert github_slug("Dependencies, and why each") == "dependencies-and-why-each"
    assert github_slug("The `greenery` command") == "the-greenery-command"
    assert github_slug("Read [the docs](docs/x.md) – now") == "read-the-docs--now"


def test_broken_links_and_anchors_are_found(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text("# Guide\n\n## Exit codes\n\n## Exit codes\n")
    page = tmp_path / "README.md"
    page.write_text(
        "# Title\n\n[ok](docs/guide.md#exit-codes) [ok too](docs/guide.md#exit-codes-1) [here](#title)\n"
        "[gone](docs/missing.md) [bad anchor](docs/guide.md#bad-input) ![img](docs/images/x.png)\n"
        "[abs](/docs/guide.md) [web](https://example.org/x) `[in code](nowhere.md)`\n"
        "```\n[in a block](nowhere.md)\n```\n")
    assert broken_links(page, tmp_path) == [
        "README.md:4: docs/missing.md: no such file",
        "README.md:4: docs/guide.md#bad-input: no heading with that anchor",
        "README.md:4: docs/images/x.png: no such file",
        "README.md:5: /docs/guide.md: absolute, so it breaks on GitHub or locally",
    ]


def test_missing_named_paths_are_found(tmp_path):
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "here.py").write_text("")
    page = tmp_path / "README.md"
    page.write_text("`src/pkg/here.py`, `src/pkg/*.py`, `src/pkg/<name>.sql` and `data/made/by/a/run`\n"
                    "`src/pkg/gone.py` and `python -m x tests/test_gone.py` and `src/pkg/*.sql`\n")
    assert missing_paths(page, tmp_path) == [
        "README.md:2: `src/pkg/gone.py` does not exist",
        "README.md:2: `tests/test_gone.py` does not exist",
        "README.md:2: `src/pkg/*.sql` does not exist",
    ]


def test_the_tree_is_read_by_folder():
    block = [
        "_config.yml, _toc.yml          <- the book",
        "src/greenery/",
        "  cli.py                       <- the command",
        "  warehouse/                   <- raw export",
        "    models/                    <-   the models",
        "      marts/core|marketing/    <-     marts",
        "    build.py                   <-   the build, described on",
        "                                    two lines",
        "  outputs/                     <- writing",
        "tests/",
        "  test_*.py                    <- tests",
    ]
    assert tree_paths(block) == [
        "_config.yml", "_toc.yml", "src/greenery/", "src/greenery/cli.py", "src/greenery/warehouse/",
        "src/greenery/warehouse/models/", "src/greenery/warehouse/models/marts/core",
        "src/greenery/warehouse/models/marts/marketing", "src/greenery/warehouse/build.py",
        "src/greenery/outputs/", "tests/", "tests/test_*.py"]


def test_bench_refuses_a_page_without_its_markers_and_rewrites_only_between_them(tmp_path):
    page = tmp_path / "scale.md"
    page.write_text("intro\n<!-- bench:end -->\n<!-- bench:start -->\n")
    with pytest.raises(SystemExit):
        bench.update_docs("new", "machine", page=page)
    assert page.read_text() == "intro\n<!-- bench:end -->\n<!-- bench:start -->\n"
    page.write_text("intro\n<!-- bench:start -->\nold table\n<!-- bench:end -->\nafter\n")
    bench.update_docs("| new |", "Measured today.", page=page)
    assert page.read_text() == "intro\n<!-- bench:start -->\nMeasured today.\n\n| new |\n<!-- bench:end -->\nafter\n"


def test_bench_dbt_comparison_is_skipped_with_a_message_when_it_cannot_run(tmp_path, monkeypatch):
    """`make bench DBT=1` without `greenery export-dbt`, or without dbt installed, says which is
    missing and measures nothing (the rest of the run goes on)."""
    monkeypatch.setattr(bench, "has_dbt_export", lambda: False)
    measured, why = bench.dbt_comparison(tmp_path, tmp_path, {})
    assert measured is None and "no `greenery export-dbt`" in why
    monkeypatch.setattr(bench, "has_dbt_export", lambda: True)
    monkeypatch.setenv(bench.DBT_ENV, str(tmp_path / "no-dbt-here"))
    monkeypatch.setattr(bench.config, "ROOT", tmp_path)
    measured, why = bench.dbt_comparison(tmp_path, tmp_path, {})
    assert measured is None and "no dbt found" in why
