"""The real export's published figures (skipped, with the reason, where it is absent)."""

from __future__ import annotations

import pytest

from greenery import db
from greenery.chapter_kit.analyses import repeat_rate
from greenery.warehouse.build import DataSource, build

pytestmark = pytest.mark.real_export


def test_real_export_figures(real_export, tmp_path):
    result = build(DataSource(real_export, "test", None), tmp_path / "real.duckdb")
    assert result.summary["fail"] == 0
    con = db.connect(tmp_path / "real.duckdb", read_only=True)
    rate = repeat_rate(con)
    assert (rate.users, rate.buyers, rate.repeat_buyers) == (130, 124, 99)
    assert round(100 * rate.rate, 2) == 79.84
    assert db.scalar(con, "select count(*) from fct_orders") == 361
