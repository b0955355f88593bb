"""Scenario 20: canary secrets stay out of workflow history, failure messages, logs and spans.

A worker process with payload encryption on (``CAIRN_ENCRYPTION_KEYS``) and spans printed to
its output (``OTEL_TRACES_EXPORTER=console``) runs three chains, each planting a canary:

- ``stored``: the agent writes the canary to memory and echoes it in its reply;
- ``quoted``: the agent's output fails validation, and pydantic's error quotes the canary;
- ``raised``: the agent raises an error whose message is the canary.

Without the key, the histories, the failures, the worker's logs and its spans show none of
them. The same run without encryption is the positive control: there the scan finds them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError

from cairn.codec import EncryptionCodec, data_converter_with_codec
from tests.fault.conftest import FAULT_AGENTS
from tests.fault.runs import spec, start_chain, step
from tests.workflows.test_worker_crash import Workers

pytestmark = pytest.mark.fault

TEMPORAL_SPANS = {"RunActivity:agent_step"}
"""Spans made by Temporal's tracing interceptor, not by Cairn."""


class Canaries:
    """One canary per planting, and where an outsider (no key) found each."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex
        self.stored, self.quoted, self.raised = (f"CANARY{k}{tag}" for k in ("S", "Q", "R"))
        self.found: dict[str, set[str]] = {c: set() for c in self.all}

    @property
    def all(self) -> tuple[str, str, str]:
        return self.stored, self.quoted, self.raised

    def scan(self, where: str, data: bytes | str) -> None:
        raw = data.encode() if isinstance(data, str) else data
        for canary in self.all:
            if canary.encode() in raw:
                self.found[canary].add(where)


def worker_output(workers: Workers) -> tuple[str, list[dict[str, Any]]]:
    """The worker processes' log lines, and the spans the console exporter printed."""
    logs: list[str] = []
    spans: list[dict[str, Any]] = []
    block: list[str] | None = None
    for path in sorted(workers.tmp.glob("worker-*.log")):
        for line in path.read_text().splitlines():
            if line == "{":  # the console exporter prints each span as indented JSON
                block = []
            if block is None:
                logs.append(line)
                continue
            block.append(line)
            if line == "}":
                spans.append(json.loads("\n".join(block)))
                block = None
    assert spans, "the worker printed no spans"
    return "\n".join(logs), spans


async def run_and_scan(
    workers: Workers, owner: Client, outsider: Client, canaries: Canaries, **env: str
) -> dict[str, Any]:
    """Run the chains on a worker process with ``env``; scan what an outsider can see.

    Returns what the owner saw: the stored chain's result and the failures of the others.
    """
    chains = {
        "stored": canaries.stored,
        "quoted": f"fail {canaries.quoted}",
        "raised": f"raise {canaries.raised}",
    }
    seen: dict[str, Any] = {}
    async with workers.process(
        CAIRN_EXTENSIONS=FAULT_AGENTS, OTEL_TRACES_EXPORTER="console", **env
    ) as proc:
        handles = {
            name: await start_chain(
                owner, workers.task_queue, spec(step("canary", task), agents=("canary",))
            )
            for name, task in chains.items()
        }
        seen["stored"] = await asyncio.wait_for(handles["stored"].result(), 60)
        for name in ("quoted", "raised"):
            with pytest.raises(WorkflowFailureError) as failed:
                await asyncio.wait_for(handles[name].result(), 60)
            seen[name] = _chain(failed.value)
        proc.terminate()  # spans are flushed as the worker stops
        assert await asyncio.wait_for(proc.wait(), 30) == 0, workers.worker_logs()
    for name, handle in handles.items():
        theirs = outsider.get_workflow_handle(handle.id)
        history = await theirs.fetch_history()
        canaries.scan("history", b"".join(e.SerializeToString() for e in history.events))
        canaries.scan("describe", str(await theirs.describe()))
        if name != "stored":
            with pytest.raises(WorkflowFailureError) as failed:
                await theirs.result()
            canaries.scan("failure", _chain(failed.value))
    logs, spans = worker_output(workers)
    canaries.scan("logs", logs)
    for span in spans:
        origin = "temporal spans" if span["name"] in TEMPORAL_SPANS else "cairn spans"
        canaries.scan(origin, json.dumps(span))
    return seen


def _chain(error: BaseException | None) -> str:
    parts = []
    while error is not None:
        parts.append(f"{type(error).__name__}: {error}")
        error = getattr(error, "cause", None) or error.__cause__
    return "\n".join(parts)


async def test_no_canary_reaches_history_failures_logs_or_spans_when_encrypted(
    client: Client, tmp_path: Path
) -> None:
    key = os.urandom(32)
    owner = await Client.connect(
        client.service_client.config.target_host,
        data_converter=data_converter_with_codec(EncryptionCodec({"k1": key}, "k1")),
    )
    canaries = Canaries()
    env = {"CAIRN_ENCRYPTION_KEYS": f"k1:{base64.b64encode(key).decode()}"}
    seen = await run_and_scan(Workers(client, tmp_path), owner, client, canaries, **env)

    # The key's owner sees the reply and the raised error's message...
    assert canaries.stored in seen["stored"].final.preview
    assert canaries.raised in seen["raised"]
    # ...and the validation failure by field and problem, without the input it quoted.
    assert "note: Extra inputs are not permitted" in seen["quoted"]
    assert canaries.quoted not in seen["quoted"]
    leaks = {c: places for c, places in canaries.found.items() if places}
    assert leaks == {}


async def test_positive_control_without_encryption_the_scan_finds_the_canaries(
    client: Client, tmp_path: Path
) -> None:
    canaries = Canaries()
    await run_and_scan(Workers(client, tmp_path), client, client, canaries)
    assert canaries.found[canaries.stored] == {"history"}
    assert {"history", "failure", "logs"} <= canaries.found[canaries.raised]
    # Spans carry exception types only unless content capture is on, and validation failures
    # never quote their input, with or without encryption: the quoted canary is in the
    # history only as part of the chain's own input.
    assert not {"temporal spans", "cairn spans"} & canaries.found[canaries.raised]
    assert canaries.found[canaries.quoted] == {"history"}


async def test_positive_control_content_capture_puts_messages_in_spans(
    client: Client, tmp_path: Path
) -> None:
    canaries = Canaries()
    capture = {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"}
    await run_and_scan(Workers(client, tmp_path), client, client, canaries, **capture)
    assert "temporal spans" in canaries.found[canaries.raised]
