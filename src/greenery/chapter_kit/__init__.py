"""The chapter kit: everything a chapter (notebooks/*.md) imports, and nothing that runs a report.

display (book, tables), statistics (stats, indicators, traffic), how numbers are written (formats),
data shown as text (escape), figures (lineage), the named analysis queries (analyses), the book's
contents (contents) and the warehouse's definitions a chapter describes (models). Nothing here
imports greenery.publisher: tests/test_layers.py checks it.
"""
