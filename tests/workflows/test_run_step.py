"""A user's own workflow built on `run_step` carries the search attributes the README filters by."""

from __future__ import annotations

import uuid

from temporalio.api.enums.v1 import EventType

from cairn.runtime import Settings, build_worker
from tests.workflows.harness import TENANT, Team, agent, history_events
from tests.workflows.user_workflows import Ask, AskTwice
from workflows.search_attributes import AGENT, SESSION, TEAM
from workflows.search_attributes import TENANT as TENANT_KEY


async def test_run_step_sets_tenant_agent_and_session_once(team: Team) -> None:
    ask = Ask(
        tenant=TENANT,
        session=f"s-{uuid.uuid4().hex[:8]}",
        agent=agent("helper"),
        questions=("What is Cairn?", "And Temporal?"),
    )
    settings = Settings(task_queue=team.task_queue, shutdown_grace=1)
    async with build_worker(team.client, team.store, settings, team.registry, [AskTwice]):
        handle = await team.client.start_workflow(
            AskTwice.run, ask, id=f"ask-{uuid.uuid4().hex[:8]}", task_queue=team.task_queue
        )
        results = await handle.result()
    assert [r.step for r in results] == ["ask-1", "ask-2"]
    attributes = (await handle.describe()).typed_search_attributes
    assert attributes.get(TENANT_KEY) == TENANT
    assert attributes.get(AGENT) == "helper"
    assert attributes.get(SESSION) == ask.session
    assert attributes.get(TEAM) is None
    upserts = EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
    fields = [
        set(e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields)
        for e in await history_events(handle, upserts)
    ]
    # Set once, on the first step (the patch marker's TemporalChangeVersion aside).
    assert [f - {"TemporalChangeVersion"} for f in fields if f != {"TemporalChangeVersion"}] == [
        {"CairnTenant", "CairnAgent", "CairnSession"}
    ]
