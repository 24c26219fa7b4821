from __future__ import annotations

import os
from pathlib import Path

import pytest
from shop import write_shop

from greenery import db
from greenery.warehouse import DataSource, build

SHARED_EXPORT = Path(__file__).resolve().parents[1].parent / "shared" / "greenery"

# Tests never write the checkout's own history; tests of history pass their own path.
os.environ["GREENERY_HISTORY"] = str(Path(__import__("tempfile").mkdtemp(prefix="greenery-history-")) / "h.duckdb")


def real_export_dir() -> Path | None:
    """The real export: $GREENERY_DATA_DIR, else ../shared/greenery; None when neither exists."""
    candidate = Path(os.environ["GREENERY_DATA_DIR"]) if os.environ.get("GREENERY_DATA_DIR") else SHARED_EXPORT
    return candidate if (candidate / "orders.csv").is_file() else None


@pytest.fixture
def shop_dir(tmp_path: Path) -> Path:
    return write_shop(tmp_path / "shop")


@pytest.fixture(scope="session")
def shop_warehouse(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("shop")
    source = DataSource(write_shop(folder / "export"), "test", None)
    warehouse = folder / "shop.duckdb"
    build(source, warehouse)
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


def pytest_sessionstart(session):
    """nbval re-runs tests/baselines/*.ipynb against the sample, never against a configured export."""
    import tempfile

    from greenery.baselines import build_sample_warehouse

    folder = Path(tempfile.mkdtemp(prefix="greenery-nbval-"))
    os.environ["GREENERY_WAREHOUSE"] = str(build_sample_warehouse(folder))
