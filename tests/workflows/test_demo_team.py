"""The demo's research team reports the same findings in every run, on either backend."""

from __future__ import annotations

import pytest

from memory import MemoryStore
from tests.workflows.harness import TENANT, Team, run_ns
from workflows.teams import research_team

QUESTION = "How do agent teams keep their context durable?"


@pytest.mark.parametrize("backend", ["sqlite_url", "postgres_schema_url"])
async def test_every_run_writes_the_same_report(
    team: Team, backend: str, request: pytest.FixtureRequest
) -> None:
    # One store for all runs, as `cairn demo` keeps one: each run's outputs join the index
    # the next run searches, and its researchers commit in whatever order they finish.
    async with await MemoryStore.open(request.getfixturevalue(backend)) as store:
        reports = []
        async with team.worker(store):
            for _ in range(3):
                handle, result = await team.run(research_team(TENANT, QUESTION, model="scripted"))
                assert result.status == "completed"
                report = await store.get(run_ns(handle.id), "output:writer")
                reports.append(report.value["text"])  # type: ignore[index,call-overload]
    assert reports[0].startswith("[scripted] Revised report (5 findings)")
    assert reports[1:] == reports[:-1]
