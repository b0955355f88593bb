"""Human approvals from the command line: ``cairn approve`` and what a chain's summary shows.

A chain waiting at an `Approval` node is answered by its ``decide`` update; the workflow
records each decision (and any edit, as a new version of the edited output) in the run's
namespace, where the summary of ``cairn run chain`` reads them back.
"""

from __future__ import annotations

import shlex

from rich.text import Text
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError

from activities.contracts import run_namespace
from cairn.cli.errors import innermost_failure, workflow_must_exist
from cairn.cli.memory import View
from memory import MemoryStore, MemoryStoreError
from workflows.chain import ChainWorkflow
from workflows.contracts import Decision

APPROVAL_KEY = "approval:"
"""The key prefix under which a chain records each decision in its run namespace."""


def approve_command(workflow_id: str, approval: str) -> str:
    """The command that approves ``approval`` of ``workflow_id`` (shell-quoted)."""
    return f"cairn approve {shlex.quote(workflow_id)} {shlex.quote(approval)}"


def waiting_line(workflow_id: str, approval: str) -> str:
    """What ``cairn run chain`` prints while the chain waits for a person."""
    command = approve_command(workflow_id, approval)
    return f"waiting for approval {approval!r}: run `{command}` (or add --reject, --edit TEXT)"


async def decide(client: Client, workflow_id: str, decision: Decision) -> View:
    """Send ``decision`` to the chain ``workflow_id`` and wait for it to be accepted."""
    handle = client.get_workflow_handle_for(ChainWorkflow.run, workflow_id)
    with workflow_must_exist(workflow_id, client.namespace):
        described = await handle.describe()
        if described.status != WorkflowExecutionStatus.RUNNING:
            status = described.status.name.lower() if described.status else "closed"
            raise ValueError(f"{workflow_id} is {status}: nothing waits for a decision")
        try:
            ack = await handle.execute_update(ChainWorkflow.decide, decision)
        except WorkflowUpdateFailedError as error:
            refusal = innermost_failure(error)
            # temporalio 1.35 validates an update before it applies the step completion that
            # arrived in the same workflow task, so a decision can be refused as "no pending
            # approval" while the chain is reaching that very approval. Once the chain says it
            # waits for it, a resend lands in a task of its own and is judged on the real state
            # (tests/workflows/test_approval_race.py).
            progress = await handle.query(ChainWorkflow.progress)
            if "no pending approval" not in refusal or progress.waiting_for != decision.approval:
                raise ValueError(f"{workflow_id} did not accept the decision: {refusal}") from None
            try:
                ack = await handle.execute_update(ChainWorkflow.decide, decision)
            except WorkflowUpdateFailedError as again:
                raise ValueError(
                    f"{workflow_id} did not accept the decision: {innermost_failure(again)}"
                ) from None
    verb = "approved" if ack.approved else "rejected"
    edited = " with an edit" if decision.edit is not None else ""
    data = {"workflow_id": workflow_id, **ack.model_dump(mode="json"), "edit": decision.edit}
    return data, Text(f"{verb} {ack.approval!r} of {workflow_id}{edited}")


async def recorded_decisions(store: MemoryStore, tenant: str, workflow_id: str) -> list[str]:
    """One line per decision a chain recorded, and one per output a person edited."""
    page = await store.list(run_namespace(tenant, workflow_id), limit=1000)
    lines: list[str] = []
    for entry in page.entries:
        value = entry.value
        if not isinstance(value, dict):
            continue
        if entry.key.startswith(APPROVAL_KEY):
            verb = "approved" if value.get("approved") else "rejected"
            name = entry.key[len(APPROVAL_KEY) :]
            lines.append(f"approval {name!r}: {verb} by {value.get('by', 'someone')}")
        elif entry.key.startswith("output:") and value.get("edited"):
            text = " ".join(str(value.get("text", "")).split())
            step = entry.key.removeprefix("output:")
            lines.append(
                f"edited by {value.get('agent', 'someone')}: {step} (v{entry.version}): {text}"
            )
    return lines


async def read_decisions(memory_url: str, tenant: str, workflow_id: str) -> list[str]:
    """`recorded_decisions` from the store at ``memory_url``; none when it cannot be read."""
    from cairn.cli.memory import open_store

    try:
        store = await open_store(memory_url, create=False)
    except (FileNotFoundError, MemoryStoreError):
        return []  # the summary goes without them; the run itself is done
    try:
        return await recorded_decisions(store, tenant, workflow_id)
    except MemoryStoreError:
        return []
    finally:
        await store.close()
