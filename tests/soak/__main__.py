"""``python -m tests.soak``: four workers under minutes of overlapping faults, then a check.

One dev server (its state in a file, so it can be killed and restarted), four ``python
worker.py`` processes whose memory is a fresh PostgreSQL schema reached through a TCP proxy
(`tests.fault.proxy.Proxy`), and the closed-loop load of `tests.soak.load`. A fault-free phase
runs first and measures the same load's throughput; then the fault phase runs with `Faults`.
The checker (`tests.soak.check`) reads the final state directly, not through the proxy. The
report is printed and written under bench/results/; the exit status is 1 when any anomaly was
found. ``make soak`` runs the two-minute profile; ``--full`` runs ten minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import json
import logging
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RPCError

from memory import MemoryStore
from tests.fault.proxy import Proxy
from tests.fault.servers import DevServer
from tests.soak.check import Findings, check
from tests.soak.faults import KINDS, Faults, Workers, worker_env
from tests.soak.load import Load

POSTGRES_URL = os.environ.get(
    "CAIRN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
RESULTS = Path(__file__).parents[2] / "bench" / "results"
DRAIN_SECONDS = 180.0
"""How long in-flight work may take to finish once the load stops (faults undone by then)."""


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


class NoPostgres(RuntimeError):
    """The soak's PostgreSQL server cannot be reached: the run fails, it never skips."""


def create_schema() -> tuple[str, str]:
    schema = f"cairn_soak_{uuid.uuid4().hex[:10]}"
    try:
        conn = psycopg.connect(_libpq(POSTGRES_URL), autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as error:
        raise NoPostgres(
            f"PostgreSQL at {POSTGRES_URL} is unreachable (set CAIRN_TEST_POSTGRES_URL to "
            f"another server): {error}"
        ) from error
    with conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in POSTGRES_URL else "?"
    return schema, f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"


def drop_schema(schema: str) -> None:
    with psycopg.connect(_libpq(POSTGRES_URL), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def throughput(load: Load, start: float, end: float) -> dict[str, float]:
    kinds = Counter(kind for at, kind in load.acks if start <= at <= end)
    rates = {kind: round(n / (end - start), 2) for kind, n in sorted(kinds.items())}
    rates["total"] = round(sum(kinds.values()) / (end - start), 2)
    return rates


def workflows(*loads: Load) -> dict[str, Any]:
    """Workflows started and completed, by kind and phase (a session slot whose phase ended
    before its first turn started none)."""
    out: dict[str, Any] = {"started": 0, "completed": 0}
    for load in loads:
        sessions = [s for s in load.sessions if s.sent]
        counts = {
            "chains": len(load.chains),
            "chains_full": sum(c.full for c in load.chains),
            "sessions": len(sessions),
            "completed": sum(c.result is not None for c in load.chains)
            + sum(s.end is not None for s in sessions),
        }
        out[load.phase] = counts
        out["started"] += counts["chains"] + counts["sessions"]
        out["completed"] += counts["completed"]
    return out


def recovery(faults: Faults, steps: list[float]) -> dict[str, dict[str, Any]]:
    """Per fault kind: seconds from the fault's end to the next step committed by a worker."""
    out: dict[str, list[float]] = {}
    for f in faults.records:
        if f.end is None:
            continue
        after = steps[bisect.bisect_left(steps, f.end) :]
        if after:
            out.setdefault(f.kind, []).append(after[0] - f.end)
    report: dict[str, dict[str, Any]] = {
        kind: {"n": len(v), "p50_s": percentile(v, 0.5), "p99_s": percentile(v, 0.99)}
        for kind, v in sorted(out.items())
    }
    # For scale: how far apart step commits are anyway (over the whole run).
    gaps = [b - a for a, b in itertools.pairwise(steps)]
    report["(any gap between step commits)"] = {
        "n": len(gaps),
        "p50_s": percentile(gaps, 0.5),
        "p99_s": percentile(gaps, 0.99),
    }
    return report


def _quiet_rpc_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # An update-with-start that fails (the dev server is down) leaves the same RPC error in
    # its start operation's future too; the load retries it, so that copy is noise.
    if isinstance(context.get("exception"), RPCError) and "never retrieved" in context["message"]:
        return
    loop.default_exception_handler(context)


class Soak:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args, self.tmp = args, tmp
        self.calls = tmp / "calls.log"
        self.fault_log = tmp / "faults.jsonl"
        self.proxy = Proxy()
        self.server = DevServer(tmp)

    async def phase(
        self, name: str, seconds: float, faults: Faults | None
    ) -> tuple[Load, dict[str, float]]:
        args = self.args
        load = Load(
            self.client,
            self.task_queue,
            self.writer_store,
            seed=args.seed + (1 if faults else 0),
            phase=name,
            chains=args.chains,
            sessions=args.sessions,
            users=args.users,
            writers=args.writers,
        )
        running = asyncio.create_task(load.run())
        injecting = asyncio.create_task(faults.run(load.stop)) if faults else None
        start = time.monotonic()
        print(f"[soak] {name}: {seconds:.0f}s of load{' with faults' if faults else ''}")
        await asyncio.sleep(seconds)
        load.stop.set()
        end = time.monotonic()
        if injecting is not None:
            await injecting  # every fault undone: workers running, proxy and server back
        load.deadline = time.monotonic() + DRAIN_SECONDS
        try:
            await asyncio.wait_for(running, DRAIN_SECONDS + 60)
        except TimeoutError:
            print(f"[soak] {name}: in-flight work did not finish within the drain")
        print(f"[soak] {name}: drained in {time.monotonic() - end:.0f}s")
        return load, throughput(load, start, end)

    async def run(self) -> dict[str, Any]:
        args = self.args
        asyncio.get_running_loop().set_exception_handler(_quiet_rpc_errors)
        schema, url = create_schema()
        try:
            store = await MemoryStore.open(url)  # migrated here; read directly by the checker
            await self.proxy.start()
            await self.server.start()
            self.client = await self.server.client(pydantic_data_converter)
            self.task_queue = f"soak-{uuid.uuid4().hex[:8]}"
            via_proxy = self.proxy.url(url)
            self.writer_store = await MemoryStore.open(via_proxy, pool_size=4, migrate=False)
            env = worker_env(self.server.address, self.task_queue, via_proxy, self.calls)
            workers = Workers(self.tmp, env)
            began = time.monotonic()
            await workers.start_all()
            print(f"[soak] {len(workers.procs)} workers ready in {time.monotonic() - began:.0f}s")
            faults = Faults(
                args.seed, workers, self.proxy, self.server, self.fault_log, kinds=args.kinds
            )
            try:
                base, base_rate = await self.phase("base", args.baseline, None)
                load, rate = await self.phase("faults", args.seconds, faults)
            finally:
                codes = await workers.stop_all()
                await self.writer_store.close()
            findings = await check(store, [base, load], self.calls, Findings())
            await store.close()
        finally:
            await self.proxy.close()
            await self.server.stop()
            drop_schema(schema)
        return self.report(base, load, faults, findings, base_rate, rate, codes)

    def report(
        self,
        base: Load,
        load: Load,
        faults: Faults,
        findings: Findings,
        base_rate: dict[str, float],
        rate: dict[str, float],
        codes: list[int | None],
    ) -> dict[str, Any]:
        return {
            "profile": {
                "seconds": self.args.seconds,
                "baseline_seconds": self.args.baseline,
                "seed": self.args.seed,
                "workers": len(codes),
                "load": {
                    k: getattr(self.args, k) for k in ("chains", "sessions", "users", "writers")
                },
            },
            "workflows": workflows(base, load),
            "steps": findings.steps,
            "turns": sum(len(s.replies) for s in (*base.sessions, *load.sessions)),
            "memory_ops": {
                "cas_ok": base.writes.cas.count("ok") + load.writes.cas.count("ok"),
                "cas_conflicts": base.writes.conflicts + load.writes.conflicts,
                "appends_ok": base.writes.events.count("ok") + load.writes.events.count("ok"),
                "unavailable_seen": base.writes.unavailable + load.writes.unavailable,
            },
            "model_calls": {
                "total": findings.calls,
                "without_commit": findings.calls_without_commit,
            },
            "faults": dict(Counter(f.kind for f in faults.records)),
            "proxy_connections": self.proxy.connections,
            "worker_starts": faults.workers.started,
            "recovery_after_fault": recovery(faults, findings.step_times),
            "throughput_per_s": {
                "fault_free": base_rate,
                "under_faults": rate,
                "ratio": {
                    kind: round(rate.get(kind, 0.0) / base, 3)
                    for kind, base in base_rate.items()
                    if base
                },
            },
            "approval_refusals": [*base.refusals, *load.refusals],
            "anomalies": len(findings.anomalies),
            "anomaly_list": findings.anomalies[:50],
            "fault_log": str(self.fault_log),
        }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__)
    parser.add_argument("--seconds", type=float, default=120, help="fault phase length")
    parser.add_argument("--full", action="store_true", help="ten minutes of faults")
    parser.add_argument("--baseline", type=float, default=None, help="fault-free phase length")
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument(
        "--kinds",
        type=lambda text: tuple(text.split(",")),
        default=KINDS,
        help=f"comma-separated fault kinds (default all: {','.join(KINDS)})",
    )
    parser.add_argument("--chains", type=int, default=24, help="concurrent chain drivers")
    parser.add_argument("--sessions", type=int, default=20, help="concurrent conversations")
    parser.add_argument("--users", type=int, default=2, help="users per session")
    parser.add_argument("--writers", type=int, default=4, help="direct memory writers")
    args = parser.parse_args()
    if args.full:
        args.seconds = 600
    if args.baseline is None:
        args.baseline = max(20.0, args.seconds / 4)
    # Faults make the clients' libraries log every retry; the report says what happened.
    logging.getLogger("psycopg.pool").setLevel(logging.CRITICAL)
    quiet = TelemetryFilter(core_level="ERROR", other_level="ERROR")
    Runtime.set_default(Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=quiet))))
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cairn-soak-") as tmp:
        try:
            report = asyncio.run(Soak(args, Path(tmp)).run())
        except NoPostgres as error:
            print(f"[soak] FAILED: {error}", file=sys.stderr)
            return 2
        log = Path(report.pop("fault_log"))
        report["fault_log_lines"] = log.read_text().splitlines() if log.exists() else []
    report["wall_seconds"] = round(time.monotonic() - began, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"soak-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2))
    shown = {k: v for k, v in report.items() if k != "fault_log_lines"}
    print(json.dumps(shown, indent=2))
    print(f"[soak] report: {out}")
    print(
        f"[soak] {report['workflows']['started']} workflows started, "
        f"{report['workflows']['completed']} completed; {report['steps']} steps, "
        f"{report['turns']} turns; faults {report['faults']}; "
        f"{report['anomalies']} anomalies; {report['wall_seconds']}s"
    )
    if report["anomalies"]:
        print(f"[soak] {report['anomalies']} anomalies", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
