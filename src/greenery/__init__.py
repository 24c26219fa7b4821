"""Greenery's analytical report: raw export -> DuckDB warehouse -> data tests -> Jupyter Book."""

__version__ = "0.1.0"
