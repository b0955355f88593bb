"""LangGraph's checkpointer conformance suite (langgraph-checkpoint-conformance) against
`CairnSaver` on SQLite and PostgreSQL, and against LangGraph's own savers for comparison."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import Capability
from langgraph.checkpoint.conformance.report import CapabilityReport
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from cairn.integrations.langgraph.saver import CairnSaver
from memory import MemoryStore
from tests.integrations.langgraph.conftest import libpq


def _summary(report: CapabilityReport) -> dict[str, tuple[int, int]]:
    return {
        name: (r.tests_passed, r.tests_passed + r.tests_failed)
        for name, r in report.results.items()
        if r.detected
    }


async def test_cairn_saver_passes_every_capability(module_store_url: str) -> None:
    @checkpointer_test(name="CairnSaver")
    async def factory() -> AsyncIterator[CairnSaver]:
        memory = await MemoryStore.open(module_store_url)
        saver = CairnSaver(memory, namespace=("acme", "checkpoints"))
        yield saver
        saver.close()
        await memory.close()

    report = await validate(factory)
    report.print_report()
    summary = _summary(report)
    assert set(summary) == {c.value for c in Capability}, summary
    failures = {n: r.failures for n, r in report.results.items() if r.tests_failed}
    assert not failures, failures
    print("CairnSaver", summary)


@pytest.mark.parametrize("saver", ["InMemorySaver", "AsyncSqliteSaver", "AsyncPostgresSaver"])
async def test_langgraph_savers_for_comparison(
    saver: str, tmp_path: Path, postgres_schema_url: str
) -> None:
    @checkpointer_test(name=saver)
    async def factory() -> AsyncIterator[object]:
        if saver == "InMemorySaver":
            yield InMemorySaver()
        elif saver == "AsyncSqliteSaver":
            async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "lg.db")) as s:
                yield s
        else:
            async with AsyncPostgresSaver.from_conn_string(libpq(postgres_schema_url)) as s:
                await s.setup()
                yield s

    report = await validate(factory)
    assert report.passed_all_base(), _summary(report)
    print(saver, _summary(report))
