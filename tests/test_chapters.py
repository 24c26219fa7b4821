"""Chapter parameters from the command line: checked against the parameters cells, typed like their defaults."""

from __future__ import annotations

import pytest

from greenery.chapter_kit import contents
from greenery.errors import UsageError
from greenery.publisher import chapter_runs as chapters


@pytest.mark.parametrize("text,default,expected", [
    ("48", 24, 48), ("0.01", 0.05, 0.01), ("true", False, True), ("False", True, False), ("all", "shoppers", "all"),
])
def test_a_value_takes_the_type_of_the_default(text, default, expected):
    value = chapters._parse_value("p", text, default)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("text,default", [("forty", 24), ("2.5", 24), ("nan", 0.05), ("inf", 0.05), ("yes", True)])
def test_a_value_of_another_type_is_refused(text, default):
    with pytest.raises(UsageError, match=f"--param p={text}: expected {type(default).__name__}"):
        chapters._parse_value("p", text, default)


@pytest.mark.parametrize("text,default,says", [
    ("5e-324", 0.05, "too small to compute with"),  # halves to 0: an infinite critical value
    ("-1e-310", 0.05, "too small to compute with"),
    ("9223372036854775808", 10, "too large to compute with"),  # past BIGINT, which DuckDB is given
])
def test_a_value_no_chapter_can_compute_with_is_refused(text, default, says):
    with pytest.raises(UsageError, match=f"^--param p={text}: {says}"):
        chapters._parse_value("p", text, default)


def test_the_smallest_values_allowed_still_compute():
    from greenery.chapter_kit import stats

    alpha = chapters._parse_value("alpha", "2.3e-308", 0.05)
    assert stats.buyers_needed(0.1, 0.5, alpha / 8) > 0  # Holm's first step with eight indicators: finite
    assert chapters._parse_value("p", "0", 0.05) == 0.0 and chapters._parse_value("p", "9223372036854775807", 1)


def test_declared_parameters_are_read_from_the_parameters_cell(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "x.md").write_text(
        "---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n---\n\n# X\n\n"
        "```{code-cell} ipython3\n:tags: [parameters]\n\ndata_dir = None\nfollow_up_hours = 24  # why\n"
        "alpha = 0.05\n```\n")
    monkeypatch.setattr(chapters.config, "ROOT", tmp_path)
    chapters.declared_parameters.cache_clear()
    try:
        assert chapters.declared_parameters("notebooks/x") == {"data_dir": None, "follow_up_hours": 24, "alpha": 0.05}
        assert chapters.analysis_parameters(["follow_up_hours=48"], ["notebooks/x"]) == {"follow_up_hours": 48}
        assert chapters.chapter_parameters("notebooks/x", {"warehouse": "w"}, {"follow_up_hours": 48, "other": 1}) \
            == {"warehouse": "w", "follow_up_hours": 48}
        with pytest.raises(UsageError, match="no chapter declares this parameter"):
            chapters.analysis_parameters(["data_dir=/elsewhere"], ["notebooks/x"])  # set by greenery itself
    finally:
        chapters.declared_parameters.cache_clear()


@pytest.mark.parametrize("value,rule,allowed", [
    ("holm", "one of: holm, bh", True), ("sidak", "one of: holm, bh", False),
    (0.05, "above 0; below 1", True), (1.0, "above 0; below 1", False), (0.0, "above 0; below 1", False),
    (0, "at least 0", True), (-1, "at least 0", False), (1, "at least 1", True),
])
def test_a_value_outside_the_cells_rule_is_refused(value, rule, allowed):
    if allowed:
        chapters._check_rule("p", value, rule)
    else:
        with pytest.raises(UsageError, match=f"must be {rule.split(';')[-1].strip()}|must be"):
            chapters._check_rule("p", value, rule)


def test_the_chapters_parameters_have_rules_that_parse():
    for entry in contents.notebook_entries():
        for name, rule in chapters.parameter_rules(entry).items():
            default = chapters.declared_parameters(entry)[name]
            chapters._check_rule(name, default, rule)  # every default obeys its own rule
