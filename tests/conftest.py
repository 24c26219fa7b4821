from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from shop import write_shop

from greenery import config, db
from greenery.outputs import leftovers
from greenery.warehouse.build import DataSource, build

PATH_MARKER = "zq7-local-path-marker"  # in the folder names of the sample book: never in a published file


def _session_folder(prefix: str) -> Path:
    """A temporary folder for this test session, removed when it ends (each run left three behind), and
    marked as this process's: a session killed hard leaves it, and a later one removes it once that
    session's process is gone (greenery.outputs.leftovers; never another live session's, nor unmarked ones)."""
    leftovers.remove_abandoned(Path(tempfile.gettempdir()), prefix)
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    leftovers.mark(folder)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


# Tests never write the checkout's own history; tests of history pass their own path.
os.environ["GREENERY_HISTORY"] = str(_session_folder("greenery-history-") / "h.duckdb")
# Nor its cache of export digests (fingerprint.export).
os.environ["GREENERY_DIGEST_CACHE"] = str(_session_folder("greenery-digests-") / "digests.json")
# Nor its cache of parsed models (greenery.warehouse.manifest.Parsed): the tests that read it pass their own.
os.environ["GREENERY_PARSE_CACHE"] = str(_session_folder("greenery-parsed-") / "parsed.json")


real_export_dir = config.real_export_dir


@pytest.fixture
def shop_dir(tmp_path: Path) -> Path:
    return write_shop(tmp_path / "shop")


@pytest.fixture(scope="session")
def shop_warehouse(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("shop")
    source = DataSource(write_shop(folder / "export"), "test", None)
    warehouse = folder / "shop.duckdb"
    build(source, warehouse, history=folder / "history.duckdb")  # a first build, whatever other tests built
    return warehouse


@pytest.fixture
def shop_db(shop_warehouse):
    con = db.connect(shop_warehouse, read_only=True)
    yield con
    con.close()


@pytest.fixture
def real_export() -> Path:
    folder = real_export_dir()
    if folder is None:
        pytest.skip("the real export is absent: neither $GREENERY_DATA_DIR nor ../shared/greenery holds it")
    return folder


def tree_digest(folder: Path) -> str:
    """Every file's name and bytes under `folder`: equal digests mean a byte-identical tree."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@dataclass
class PublishedBook:
    export: Path
    out: Path
    warehouse: Path
    exit_code: int
    log: list[str] = field(default_factory=list)

    @property
    def chapters(self) -> Path:
        return config.chapter_cache_path(self.warehouse)

    @property
    def render_cache(self) -> Path:
        return config.render_cache_path(self.warehouse)


def publish_book(export: Path, root: Path) -> PublishedBook:
    """`greenery report` into folders whose names hold spaces, quotes and non-ASCII letters."""
    from greenery.publisher.run import publish

    book = PublishedBook(export, root / "the büch's \"site\"" / "html", root / "wäre house's" / "w.duckdb", -1)
    publish(data_dir=export, out=book.out, warehouse=book.warehouse,
            log=lambda *parts: book.log.append(" ".join(map(str, parts))))
    book.exit_code = 0  # publish raises on every failure
    return book


@pytest.fixture(scope="session")
def sample_book(tmp_path_factory) -> PublishedBook:
    """The book published from the default sample (the nbval data), built once for every test that reads it."""
    from greenery.sample import generate

    root = tmp_path_factory.mktemp(f"sample-book-{PATH_MARKER}")
    export = root / "dätä \"export\" dir's"
    generate(export, config.SAMPLE_SCALE, config.SAMPLE_SEED)
    return publish_book(export, root)


def pytest_sessionstart(session):
    """nbval re-runs tests/baselines/*.ipynb against the sample, never against a configured export."""
    from greenery.tools.baselines import build_sample_warehouse

    folder = _session_folder("greenery-nbval-")
    os.environ["GREENERY_WAREHOUSE"] = str(build_sample_warehouse(folder))
