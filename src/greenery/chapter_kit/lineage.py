"""The lineage figure: raw tables and models in layers, each arrow from a table to a model that reads it.

Drawn from the manifest (dependencies parsed from the SQL), so it is always in step with the code.
The layout is a layered (Sugiyama-style) drawing, computed here in a few lines rather than by an
external program: a node's layer is the length of the longest path that reaches it from a raw
table, an edge that spans several layers passes through a reserved lane in each layer it crosses
(so no edge runs through a box), and the order within each layer is improved by a few barycentre
sweeps, which keeps crossings few. Boxes are coloured by the folder of their model.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch, Patch, PathPatch
from matplotlib.path import Path

from greenery.contract import RAW_TABLES
from greenery.warehouse.manifest import Manifest

COLOURS = {"raw": "#eeeeee", "staging": "#e3f2fd", "intermediate": "#fff8e1", "marts/core": "#c8e6c9",
           "marts/marketing": "#f8bbd0", "marts/product": "#d1c4e9"}
COLUMN_GAP, BOX_WIDTH = 0.65, 1.45  # inches: the space between layers, and a box's width
NODE_HEIGHT, LANE_HEIGHT = 0.56, 0.16  # inches: a box's slot, and the lane of an edge passing through a layer
EDGE_COLOUR = "#78909c"


def _folder(manifest: Manifest, node: str) -> str:
    return "raw" if node.startswith("raw.") else manifest.models[node].folder


def label(node: str) -> str:
    """A node's name on two lines, split at the underscore nearest its middle."""
    name = node.removeprefix("raw.")
    cuts = [i for i, char in enumerate(name) if char == "_"]
    if len(name) <= 14 or not cuts:
        return name
    cut = min(cuts, key=lambda i: abs(i - len(name) / 2))
    return f"{name[:cut + 1]}\n{name[cut + 1:]}"


def layers(nodes: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Longest-path layering: a node sits one layer right of the furthest table it reads."""
    reads: dict[str, list[str]] = {n: [] for n in nodes}
    for upstream, downstream in edges:
        reads[downstream].append(upstream)
    layer: dict[str, int] = {}

    def depth(node: str) -> int:
        if node not in layer:
            layer[node] = 1 + max((depth(u) for u in reads[node]), default=-1)
        return layer[node]

    for node in nodes:
        depth(node)
    return layer


def layout(nodes: list[str], edges: list[tuple[str, str]], sweeps: int = 8):
    """Order within layers with lanes for long edges. Returns (rows, chains): rows[layer] is a list of
    node names and lane ids (("lane", edge index, layer)); chains[i] is edge i's list of stops."""
    layer = layers(nodes, edges)
    rows: dict[int, list] = {}
    for node in nodes:  # the build order: a stable starting point
        rows.setdefault(layer[node], []).append(node)
    chains = []
    for index, (upstream, downstream) in enumerate(edges):
        stops = [upstream]
        for step in range(layer[upstream] + 1, layer[downstream]):
            lane = ("lane", index, step)
            rows[step].append(lane)
            stops.append(lane)
        chains.append([*stops, downstream])
    left: dict = {}
    right: dict = {}
    for stops in chains:
        for a, b in zip(stops, stops[1:], strict=False):
            left.setdefault(b, []).append(a)
            right.setdefault(a, []).append(b)

    def sweep(order: range, neighbours: dict) -> None:
        for step in order:
            previous = {n: i for i, n in enumerate(rows[step - 1 if neighbours is left else step + 1])}
            place = {n: i for i, n in enumerate(rows[step])}
            rows[step].sort(key=lambda n: (sum(previous[m] for m in neighbours.get(n, [])) / len(neighbours[n])
                                           if neighbours.get(n) else place[n]))

    last = max(rows)
    for _ in range(sweeps):
        sweep(range(1, last + 1), left)
        sweep(range(last - 1, -1, -1), right)
    return rows, chains


def _height(item) -> float:
    return LANE_HEIGHT if isinstance(item, tuple) else NODE_HEIGHT


def draw(manifest: Manifest, ax=None):
    nodes = [f"raw.{t.name}" for t in RAW_TABLES] + [m.name for m in manifest.build_order()]
    edges = sorted(manifest.edges())
    rows, chains = layout(nodes, edges)
    tallest = max(sum(_height(item) for item in row) for row in rows.values())
    width = len(rows) * (BOX_WIDTH + COLUMN_GAP) - COLUMN_GAP
    ax = ax or plt.subplots(figsize=(width + 0.2, tallest + 1.1))[1]
    position = {}
    for step, row in rows.items():
        x = step * (BOX_WIDTH + COLUMN_GAP) + BOX_WIDTH / 2
        y = (tallest + sum(_height(item) for item in row)) / 2  # the column is centred vertically
        for item in row:
            position[item] = (x, y - _height(item) / 2)
            y -= _height(item)
    for stops in chains:  # each edge: right side of a box, through its lanes, left side of the next box
        x, y = position[stops[0]]
        vertices, codes = [(x + BOX_WIDTH / 2, y)], [Path.MOVETO]
        for stop in stops[1:]:
            (x0, y0), (x, y) = vertices[-1], position[stop]
            middle = (x0 + x - BOX_WIDTH / 2) / 2  # a curve with level ends through the gap between layers
            vertices += [(middle, y0), (middle, y), (x - BOX_WIDTH / 2, y)]
            codes += [Path.CURVE4] * 3
            if isinstance(stop, tuple):  # across a layer, straight along the edge's own lane
                vertices.append((x + BOX_WIDTH / 2, y))
                codes.append(Path.LINETO)
        ax.add_patch(PathPatch(Path(vertices, codes), facecolor="none", edgecolor=EDGE_COLOUR, linewidth=0.9))
        xe, ye = vertices[-1]
        ax.annotate("", xy=(xe, ye), xytext=(xe - 0.12, ye),
                    arrowprops={"arrowstyle": "-|>", "color": EDGE_COLOUR, "linewidth": 0.9, "mutation_scale": 9})
    for node in nodes:
        x, y = position[node]
        ax.add_patch(FancyBboxPatch((x - BOX_WIDTH / 2, y - NODE_HEIGHT * 0.4), BOX_WIDTH, NODE_HEIGHT * 0.8,
                                    boxstyle="round,pad=0,rounding_size=0.06", linewidth=0.7,
                                    facecolor=COLOURS[_folder(manifest, node)], edgecolor="#607d8b"))
        ax.text(x, y, label(node), ha="center", va="center", fontsize=9, linespacing=1.05)
    ax.set_xlim(-0.1, width + 0.1)
    ax.set_ylim(0, tallest + 0.05)
    ax.set_aspect("equal")
    ax.axis("off")
    legend = [Patch(facecolor=colour, edgecolor="#607d8b", label=folder) for folder, colour in COLOURS.items()]
    ax.legend(handles=legend,
              loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=6, frameon=False, fontsize=9, handlelength=1.2)
    ax.set_title("Lineage: each arrow points from a table to a model that reads it", loc="left", pad=28)
    return ax
