"""The PNG charts bench/README.md shows: history growth and turn latency over a long session.

matplotlib is imported inside each function (headless ``Agg``), so importing the bench package
stays cheap. Files are small (about 100 dpi) so they can be committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.history import Growth

DPI = 100
MiB = 1024 * 1024


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _label(size: int) -> str:
    return f"{size // 1_000_000} MB" if size >= 1_000_000 else f"{size // 1000} KB"


def history_chart(
    growth: Sequence[Growth], path: Path, suggest_bytes: int, limit_bytes: int, note: str = ""
) -> Path:
    """History bytes against steps: measured (solid) and extrapolated (dashed) per side/size."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.8))
    colours = {1_000: "#fdae61", 10_000: "#f46d43", 100_000: "#d73027", 1_000_000: "#a50026"}
    horizon = 100_000
    cairn_labelled = False
    for g in growth:
        limit_step, _ = g.reaches(limit_bytes, 50 * 1024)
        suggest_step, _ = g.reaches(suggest_bytes, 4 * 1024)
        end = min(limit_step, horizon)
        measured = list(range(1, g.steps + 1))
        extrapolated = [g.steps, *_geometric(g.steps, end)]
        if g.side == "cairn":
            colour, label = "#2166ac", None
            if not cairn_labelled:
                label, cairn_labelled = "Cairn (references), every context size 1 KB-1 MB", True
        else:
            colour, label = colours.get(g.size, "#d73027"), f"by value, {_label(g.size)} context"
        ax.plot(measured, [g.total(s)[0] for s in measured], color=colour, lw=2, label=label)
        ax.plot(extrapolated, [g.total(s)[0] for s in extrapolated], color=colour, lw=1, ls="--")
        if suggest_step <= horizon:
            ax.plot([suggest_step], [g.total(suggest_step)[0]], "o", color=colour, ms=5)
        if limit_step <= horizon:
            ax.plot([limit_step], [g.total(limit_step)[0]], "x", color=colour, ms=7, mew=2)
    for y, text in (
        (suggest_bytes, "continue-as-new suggested: 4 MiB (or 4,096 events)"),
        (limit_bytes, "run fails: 50 MiB (or 51,200 events)"),
    ):
        ax.axhline(y, color="grey", lw=0.8, ls=":")
        ax.text(95_000, y * 1.15, text, color="dimgrey", fontsize=8, ha="right")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(1, horizon)
    ax.set_ylim(1_000, 200 * MiB)
    ax.set_xlabel("steps in one workflow run")
    ax.set_ylabel("workflow history (bytes)")
    ax.set_title(
        f"History size against steps{note}: solid measured, dashed extrapolated;\n"
        "o = continue-as-new suggested, x = run would fail (by bytes or events)",
        fontsize=10,
    )
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, plt, path)


def _geometric(start: int, end: int) -> list[int]:
    points, step = [], float(start)
    while step < end:
        step *= 1.25
        points.append(min(int(step) + 1, end))
    return points


def session_chart(
    latencies_ms: Sequence[float],
    runs: Sequence[int],
    marks: Sequence[tuple[int, float, float]],
    path: Path,
    note: str,
) -> Path:
    """Turn latency over a long session: every turn, a rolling median, continue-as-new points.

    Args:
        latencies_ms: The latency of turn 1, 2, ... of the long session.
        runs: The turns after which the session continued as new.
        marks: (turn, long-session median, fresh-session median) at each measured mark.
        path: Where the PNG goes.
        note: A line under the title (profile, turns per run).
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.2))
    turns = list(range(1, len(latencies_ms) + 1))
    ax.scatter(turns, latencies_ms, s=2, color="#92c5de", alpha=0.5, label="each turn", lw=0)
    window = max(5, len(turns) // 100)
    rolling = [median(latencies_ms[max(0, i - window) : i + window + 1]) for i in range(len(turns))]
    ax.plot(turns, rolling, color="#2166ac", lw=1.5, label=f"rolling median ({2 * window + 1})")
    faint = 0.6 if len(runs) < 30 else 0.3
    for i, turn in enumerate(runs):
        label = "continue-as-new" if i == 0 else None
        ax.axvline(turn, color="grey", lw=0.5, ls=":", alpha=faint, label=label)
    for i, (turn, long_ms, fresh_ms) in enumerate(marks):
        ax.plot(
            [turn], [long_ms], "o", color="#b2182b", ms=6, label="mark: median" if i == 0 else None
        )
        ax.plot(
            [turn],
            [fresh_ms],
            "s",
            color="#4d4d4d",
            ms=5,
            mfc="none",
            label="fresh session, interleaved" if i == 0 else None,
        )
    top = sorted(latencies_ms)[int(0.99 * (len(latencies_ms) - 1))] if latencies_ms else 1
    ax.set_ylim(0, top * 1.3)
    ax.set_xlim(0, len(turns) + 1)
    ax.set_xlabel("turn of the session")
    ax.set_ylabel("turn latency (ms)")
    ax.set_title(f"Turn latency across one long session\n{note}", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", ncol=2)
    return _save(fig, plt, path)


def _save(fig: Any, plt: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path
