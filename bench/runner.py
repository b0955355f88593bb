"""The benchmark runner: a registry of named benchmarks, `rich` tables and the JSON report.

A benchmark is a function of a `Profile` returning rows (plain dicts, one table per benchmark);
it may be ``async``. Register one with `@benchmark("name", "Title")` in any module of the
``bench`` package: `discover` imports them all. Rows are reported, never asserted on: targets
show up as columns.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import os
import pkgutil
import platform
import sqlite3
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

Row = dict[str, Any]
BenchFn = Callable[["Profile"], list[Row] | Awaitable[list[Row]]]


@dataclass(frozen=True)
class Profile:
    """What a run asks of every benchmark.

    Attributes:
        full: The long profile (bigger data, more rounds); False is the quick CI profile.
        postgres_url: SQLAlchemy URL of a PostgreSQL server, or None to skip PostgreSQL.
        workdir: A scratch directory for SQLite files, removed after the run.
    """

    full: bool
    postgres_url: str | None
    workdir: Path

    @property
    def name(self) -> str:
        return "full" if self.full else "quick"


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    fn: BenchFn


@dataclass
class Outcome:
    name: str
    title: str
    seconds: float
    rows: list[Row] = field(default_factory=list)
    error: str | None = None


REGISTRY: dict[str, Benchmark] = {}


def benchmark(name: str, title: str) -> Callable[[BenchFn], BenchFn]:
    """Register ``fn`` under ``name``; ``title`` heads its table."""

    def register(fn: BenchFn) -> BenchFn:
        if name in REGISTRY:
            raise ValueError(f"benchmark {name!r} registered twice")
        REGISTRY[name] = Benchmark(name, title, fn)
        return fn

    return register


def discover() -> dict[str, Benchmark]:
    """Import every module of the ``bench`` package so their benchmarks register."""
    package = importlib.import_module("bench")
    for module in pkgutil.iter_modules(package.__path__):
        if module.name not in ("__main__", "runner"):
            importlib.import_module(f"bench.{module.name}")
    return REGISTRY


def run_one(bench: Benchmark, profile: Profile, console: Console) -> Outcome:
    console.rule(f"[bold]{bench.name}[/]: {bench.title}")
    start = time.perf_counter()
    try:
        result = bench.fn(profile)
        rows = asyncio.run(result) if inspect.isawaitable(result) else result  # type: ignore[arg-type]
        outcome = Outcome(bench.name, bench.title, time.perf_counter() - start, list(rows))
    except Exception as error:
        console.print(traceback.format_exc(), style="red", markup=False)
        outcome = Outcome(
            bench.name,
            bench.title,
            time.perf_counter() - start,
            error=f"{type(error).__name__}: {error}",
        )
    print_table(outcome, console)
    return outcome


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, tuple | list) and len(value) == 2:
        return f"{_cell(value[0])}-{_cell(value[1])}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value == 0 or abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}" if abs(value) >= 0.01 else f"{value:.2e}"
    return str(value)


def print_table(outcome: Outcome, console: Console) -> None:
    title = f"{outcome.title} ({outcome.seconds:.1f}s)"
    if outcome.error:
        console.print(f"{title}: [red]failed[/] {outcome.error}")
        return
    columns: dict[str, None] = {}
    for row in outcome.rows:
        columns.update(dict.fromkeys(row))
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, justify="left" if column in _TEXT_COLUMNS else "right")
    for row in outcome.rows:
        table.add_row(*(_cell(row.get(column)) for column in columns))
    console.print(table)


_TEXT_COLUMNS = {
    "backend",
    "op",
    "side",
    "term",
    "query",
    "stores",
    "note",
    "workload",
    "error_kinds",
}


def markdown(report: dict[str, Any]) -> str:
    """The report's tables as GitHub markdown (for bench/README.md)."""
    m = report["machine"]
    lines = [
        f"Profile `{report['profile']}`, {report['started_at']}, {report['seconds']}s: "
        f"{m['cpu_count']} CPUs ({m['cpu_model']}), Python {m['python']}, SQLite {m['sqlite']}, "
        f"PostgreSQL {m['postgres']}, load average {m['loadavg_start'][0]:.2f} at start.",
    ]
    for name, bench in report["benchmarks"].items():
        lines += ["", f"### {name}: {bench['title']} ({bench['seconds']}s)", ""]
        if bench["error"]:
            lines.append(f"failed: {bench['error']}")
            continue
        columns: dict[str, None] = {}
        for row in bench["rows"]:
            columns.update(dict.fromkeys(row))
        lines.append("| " + " | ".join(columns) + " |")
        lines.append("|" + "|".join("---" if c in _TEXT_COLUMNS else "--:" for c in columns) + "|")
        for row in bench["rows"]:
            cells = (_cell(tuple(v) if isinstance(v, list) else v) for v in map(row.get, columns))
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def machine_info(postgres_url: str | None) -> dict[str, Any]:
    import psycopg
    import sqlalchemy

    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
        "psycopg": psycopg.__version__,
        "postgres": None,
        "loadavg_start": os.getloadavg(),
    }
    if postgres_url is not None:
        libpq = postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(libpq, connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            info["postgres"] = row[0] if row else None
    return info


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def run(
    names: list[str],
    profile: Profile,
    json_path: Path,
    argv: list[str],
    markdown_path: Path | None = None,
) -> int:
    """Run the named benchmarks in order, print their tables, write the JSON report.

    Returns:
        The process exit code: 1 when a benchmark raised, else 0.
    """
    console = Console(width=max(Console().width, 160))
    machine = machine_info(profile.postgres_url)
    console.print(
        f"profile={profile.name} cpus={machine['cpu_count']} python={machine['python']} "
        f"sqlite={machine['sqlite']} postgres={machine['postgres']} "
        f"load={machine['loadavg_start']}"
    )
    started = datetime.now(UTC)
    outcomes = [run_one(REGISTRY[name], profile, console) for name in names]
    machine["loadavg_end"] = os.getloadavg()
    report = {
        "command": "python -m bench " + " ".join(argv),
        "profile": profile.name,
        "started_at": started.isoformat(timespec="seconds"),
        "seconds": round((datetime.now(UTC) - started).total_seconds(), 1),
        "machine": machine,
        "benchmarks": {
            o.name: {
                "title": o.title,
                "seconds": round(o.seconds, 2),
                "error": o.error,
                "rows": o.rows,
            }
            for o in outcomes
        },
    }
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    if markdown_path is not None:
        markdown_path.write_text(markdown(report))
    console.print(f"wrote {json_path} ({report['seconds']}s)")
    return 1 if any(o.error for o in outcomes) else 0
