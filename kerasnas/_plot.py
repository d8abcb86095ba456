"""Drawing architectures: graphviz where installed, matplotlib otherwise."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Types only: architecture.py imports this module to draw.
    from kerasnas.architecture import Architecture, Cell

# The labels of a cell's input and output vertices (as in `kerasnas.architecture`).
INPUT_PREFIX = "input"
OUTPUT = "output"

_COLOURS = {"input": "#cfe2f3", "output": "#d9ead3", "add": "#fff2cc", "op": "#f4cccc"}


def _kind(label: str) -> str:
    if label.startswith(INPUT_PREFIX):
        return "input"
    if label == OUTPUT:
        return "output"
    if label == "add":
        return "add"
    return "op"


def plot_with_graphviz(arch: Architecture, path: str, fmt: str) -> None:
    import pydot

    graph = pydot.Dot(graph_type="digraph", rankdir="TB")
    for name, cell in arch.cells.items():
        cluster = pydot.Cluster(name, label=f"{name} cell")
        for v, label in enumerate(cell.ops):
            cluster.add_node(
                pydot.Node(
                    f"{name}_{v}",
                    label=label,
                    shape="box",
                    style="filled",
                    fillcolor=_COLOURS[_kind(label)],
                )
            )
        for u in range(cell.num_vertices):
            for w in cell.successors(u):
                cluster.add_edge(pydot.Edge(f"{name}_{u}", f"{name}_{w}"))
        graph.add_subgraph(cluster)
    if arch.choices:
        text = "\\n".join(f"{k} = {v}" for k, v in arch.choices.items())
        graph.add_node(pydot.Node("choices", label=text, shape="note"))
    graph.write(path, format=fmt)


def _layers(cell: Cell) -> list[int]:
    """Depth of each vertex: the longest path from any source."""
    depth = [0] * cell.num_vertices
    for v in cell.topological_order():
        for w in cell.successors(v):
            depth[w] = max(depth[w], depth[v] + 1)
    return depth


def plot_with_matplotlib(arch: Architecture, path: str) -> None:
    plt = _pyplot()

    cells = arch.cells
    panels = len(cells) + (1 if arch.choices else 0)
    widest = max([max(_layers(c).count(d) for d in set(_layers(c))) for c in cells.values()] or [1])
    fig, axes = plt.subplots(1, panels, figsize=(max(5.0, 1.4 * widest) * panels, 7), squeeze=False)
    for ax, (name, cell) in zip(axes[0], cells.items(), strict=False):
        depth = _layers(cell)
        rows: dict[int, list[int]] = {}
        for v, d in enumerate(depth):
            rows.setdefault(d, []).append(v)
        pos = {}
        for d, vertices in rows.items():
            for i, v in enumerate(vertices):
                pos[v] = ((i + 1) / (len(vertices) + 1), 1.0 - d / (max(depth) + 1))
        for u in range(cell.num_vertices):
            for w in cell.successors(u):
                ax.annotate(
                    "",
                    xy=pos[w],
                    xytext=pos[u],
                    arrowprops={"arrowstyle": "->", "color": "#555555"},
                )
        for v, label in enumerate(cell.ops):
            ax.text(
                *pos[v],
                label,
                ha="center",
                va="center",
                fontsize=8,
                bbox={"boxstyle": "round", "fc": _COLOURS[_kind(label)], "ec": "#333333"},
            )
        ax.set_title(f"{name} cell ({cell.hash()[:8]})")
        ax.set_xlim(0, 1)
        ax.set_ylim(-0.05, 1.05)
        ax.axis("off")
    if arch.choices:
        ax = axes[0][-1]
        ax.text(
            0.0,
            1.0,
            "\n".join(f"{k} = {v}" for k, v in arch.choices.items()),
            va="top",
            family="monospace",
        )
        ax.set_title("choices")
        ax.axis("off")
    fig.suptitle(f"architecture {arch.hash()[:8]}")
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_history(records: list[dict], objective: str, direction: str, path: str) -> str:
    """Score per trial (dots; failed trials as crosses) and the best so far (line)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    best, xs, ys, best_curve, failed = None, [], [], [], []
    for i, r in enumerate(records, 1):
        if r["status"] != "COMPLETED" or r["score"] is None:
            failed.append(i)
            continue
        xs.append(i)
        ys.append(r["score"])
        if best is None or (r["score"] > best if direction == "max" else r["score"] < best):
            best = r["score"]
        best_curve.append(best)
    ax.scatter(xs, ys, s=18, color="#1f77b4", label=f"{objective} per trial")
    ax.step(xs, best_curve, where="post", color="#d62728", label="best so far")
    if failed:
        low = min(ys) if ys else 0.0
        ax.scatter(failed, [low] * len(failed), marker="x", color="#7f7f7f", label="failed")
    ax.set_xlabel("trial")
    ax.set_ylabel(objective)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(path, bbox_inches="tight", dpi=120)
    plt.close(fig)
    return path


def plot_pareto(
    points: list[tuple[float, float]],
    front: list[tuple[float, float]],
    x_label: str,
    y_label: str,
    path: str,
) -> str:
    """All trials (grey) and the Pareto front (red) in resource-metric space."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter(*zip(*points, strict=True), s=18, color="#999999", label="trials")
    fx, fy = zip(*sorted(front), strict=True)
    ax.step(fx, fy, where="post", color="#d62728")
    ax.scatter(fx, fy, s=30, color="#d62728", label="Pareto front")
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(path, bbox_inches="tight", dpi=120)
    plt.close(fig)
    return path
