"""PydanticAI under ``TemporalDurability``: history bytes each model-request activity carries.

One conversation of 200 turns runs twice on a real dev server: by value (PydanticAI's own way:
every run gets ``message_history``, and every model request carries all of it) and by reference
(`cairn.integrations.pydantic_ai.CairnHistory`: the conversation lives in Cairn, a request
carries a reference plus its newest exchange). Bytes are the model-request activity's input
payloads as recorded in the workflow history, at turns 1, 50 and 200. The model is PydanticAI's
`FunctionModel` with a reply of fixed size, so only the history grows.
"""

from __future__ import annotations

import uuid
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from activities.streams import StreamActivities
from bench.databases import scratch
from bench.devserver import RUN_TIMEOUT, dev_server, task_queue
from bench.runner import Profile, Row, benchmark
from memory import MemoryStore

TURNS = 200
REPORTED = (1, 50, 200)


async def model_request_bytes(handle: WorkflowHandle[Any, Any]) -> list[int]:
    """Input bytes of every model-request activity the run scheduled, in order."""
    sizes = []
    async for event in handle.fetch_history_events():
        if event.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            continue
        attrs = event.activity_task_scheduled_event_attributes
        name = attrs.activity_type.name
        if "model" in name and "request" in name:
            sizes.append(sum(len(p.data) for p in attrs.input.payloads))
    return sizes


@benchmark("pydantic_history", "PydanticAI: history bytes per model-request dispatch")
async def pydantic_history(profile: Profile) -> list[Row]:
    from pydantic_ai.durable_exec.temporal import PydanticAIPlugin

    from bench import pydantic_agents as pa

    rows: list[Row] = []
    async with dev_server() as base:
        target = base.service_client.config.target_host
        client = await Client.connect(
            target, namespace=base.namespace, plugins=[PydanticAIPlugin()]
        )
        with scratch(profile, "sqlite", "pydantic_history") as db:
            async with await MemoryStore.open(db.url) as store:
                pa.HISTORY.bind(store)
                acts = StreamActivities(store)
                queue = task_queue("pydantic")
                workflows = [pa.HistoryByReferenceWorkflow, pa.HistoryByValueWorkflow]
                async with Worker(
                    client,
                    task_queue=queue,
                    workflows=workflows,
                    activities=[acts.append_stream_items],
                ):
                    sides = {
                        "by value": pa.HistoryByValueWorkflow.run,
                        "Cairn reference": pa.HistoryByReferenceWorkflow.run,
                    }
                    sizes = {}
                    for side, run in sides.items():
                        handle = await client.start_workflow(
                            run,
                            pa.Turns(conversation_id=f"c-{uuid.uuid4().hex[:8]}", turns=TURNS),
                            id=f"bench-pydantic-{uuid.uuid4()}",
                            task_queue=queue,
                            execution_timeout=RUN_TIMEOUT,
                        )
                        await handle.result()
                        sizes[side] = await model_request_bytes(handle)
    for side, per_turn in sizes.items():
        row: Row = {"side": side}
        for turn in REPORTED:
            row[f"turn {turn} bytes"] = per_turn[turn - 1]
        row["turn 200 / turn 1"] = round(per_turn[TURNS - 1] / per_turn[0], 2)
        rows.append(row)
    return rows
