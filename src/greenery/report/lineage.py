"""The lineage figure: every raw table and model in columns by layer, arrows from what each reads.

Drawn from the manifest (dependencies parsed from the SQL), so it is always in step with the code.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch

from greenery.warehouse.contract import RAW_TABLES
from greenery.warehouse.manifest import Manifest

SPACING = 2.9  # between layer columns, in the units of the node boxes (wide enough for the longest name)
COLUMNS = ["raw", "staging", "intermediate", "marts/core", "marts/marketing", "marts/product"]
COLOURS = {"raw": "#eeeeee", "staging": "#e3f2fd", "intermediate": "#fff8e1", "marts/core": "#c8e6c9",
           "marts/marketing": "#f8bbd0", "marts/product": "#d1c4e9"}


def _column_of(manifest: Manifest, node: str) -> str:
    return "raw" if node.startswith("raw.") else manifest.models[node].folder


def draw(manifest: Manifest, ax=None):
    nodes = [f"raw.{t.name}" for t in RAW_TABLES] + [m.name for m in manifest.build_order()]
    by_column: dict[str, list[str]] = {c: [] for c in COLUMNS}
    for node in nodes:
        by_column[_column_of(manifest, node)].append(node)
    tallest = max(len(v) for v in by_column.values())
    ax = ax or plt.subplots(figsize=(12, 0.62 * tallest + 1.6))[1]
    position = {}
    for x, column in enumerate(COLUMNS):
        members = sorted(by_column[column])
        offset = (tallest - len(members)) / 2
        for y, node in enumerate(members):
            position[node] = (x * SPACING, -(y + offset))
        ax.text(x * SPACING, 0.9, column, ha="center", va="bottom", fontweight="bold", fontsize=10)
    for upstream, downstream in manifest.edges():
        (x1, y1), (x2, y2) = position[upstream], position[downstream]
        ax.add_patch(FancyArrowPatch((x1 + 1.2, y1), (x2 - 1.2, y2), arrowstyle="-|>", mutation_scale=8,
                                     color="#90a4ae", linewidth=0.7, connectionstyle="arc3,rad=0.05"))
    for node, (x, y) in position.items():
        ax.text(x, y, node.removeprefix("raw."), ha="center", va="center", fontsize=9,
                bbox={"boxstyle": "round,pad=0.3", "facecolor": COLOURS[_column_of(manifest, node)],
                      "edgecolor": "#607d8b", "linewidth": 0.6})
    ax.set_xlim(-1.5, (len(COLUMNS) - 1) * SPACING + 1.5)
    ax.set_ylim(-tallest, 1.4)
    ax.axis("off")
    ax.set_title("Lineage: each arrow points from a table to a model that reads it", loc="left")
    return ax
