"""Forgetting a user shreds the chains that acted for them (real dev server).

A chain started with a user has an id carrying it (`workflows.ids.chain_workflow_id`), so its
payloads, the approval's edit included, are sealed under the user's data key. After the user is
forgotten a canary in the edit reads nowhere (client, codec server), while another user's
chain still decodes.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from temporalio.api.history.v1 import History
from temporalio.client import WorkflowHandle

from cairn.codec_server import serve_codec
from cairn.subject_codec import (
    FORGOTTEN_METADATA_KEY,
    SUBJECT_ENCODING,
    SUBJECT_METADATA_KEY,
    SubjectCodec,
    SubjectForgottenError,
)
from tests.codec.conftest import payloads_of, shown_by_codec_server
from tests.workflows.harness import TENANT, Team, agent, wait_until
from workflows.chain import ChainWorkflow
from workflows.contracts import Approval, ChainSpec, Decision, Step
from workflows.ids import chain_workflow_id

TOKEN = "chain-shred-token"


def release(user: str, canary: str) -> ChainSpec:
    """A draft, then an approval that edits it, acting for ``user``."""
    return ChainSpec(
        name="release",
        tenant=TENANT,
        user=user,
        input=f"announce {canary}",
        agents=(agent("drafter"),),
        nodes=(Step(agent="drafter"), Approval(edits="drafter")),
    )


async def approve_with_edit(team: Team, spec: ChainSpec, edit: str) -> WorkflowHandle[Any, Any]:
    """Run ``spec`` to its approval, approve it with ``edit`` and wait for the result."""
    assert spec.user is not None
    workflow_id = chain_workflow_id(TENANT, spec.name, uuid.uuid4().hex[:8], user=spec.user)
    handle = await team.start(spec, id=workflow_id)

    async def waiting() -> bool:
        return (await handle.query(ChainWorkflow.progress)).waiting_for == "approval"

    await wait_until(waiting)
    await handle.execute_update(ChainWorkflow.decide, Decision(approve=True, edit=edit, by="ops"))
    assert (await handle.result()).status == "completed"
    return handle


async def decoded(handle: WorkflowHandle[Any, Any], codec: SubjectCodec) -> bytes:
    history = History(events=(await handle.fetch_history()).events)
    return b"\n".join(p.SerializeToString() for p in await codec.decode(payloads_of(history)))


@pytest.fixture
async def forgotten(
    team: Team, codec: SubjectCodec
) -> tuple[WorkflowHandle[Any, Any], WorkflowHandle[Any, Any], str]:
    """Chains of u-7 and u-8; u-7's input and approval edit hold a canary; u-7 is forgotten."""
    canary = f"canary-{uuid.uuid4().hex}"
    team.registry.script("drafter")(lambda system, messages, tools: "Draft: prices rise.")
    async with team.worker():
        ada, bob = await asyncio.gather(
            approve_with_edit(team, release("u-7", canary), f"edited {canary}"),
            approve_with_edit(team, release("u-8", "nothing"), "bob-edit-here"),
        )
    raw = History(events=(await ada.fetch_history()).events).SerializeToString()
    assert canary.encode() not in raw  # sealed in the history from the start
    assert f"edited {canary}".encode() in await decoded(ada, codec)
    key = await team.store.data_key((TENANT, "user", "u-7"))
    assert key is not None and not key.forgotten
    counts = await team.store.forget((TENANT, "user", "u-7"), principal="dpo")
    assert counts["data_keys"] == 1
    return ada, bob, canary


async def test_forgetting_the_user_shreds_their_chains_approval_edit(
    codec: SubjectCodec,
    forgotten: tuple[WorkflowHandle[Any, Any], WorkflowHandle[Any, Any], str],
) -> None:
    ada, bob, canary = forgotten
    history = History(events=(await ada.fetch_history()).events)
    payloads = payloads_of(history)
    sealed = [p for p in payloads if p.metadata.get("encoding") == SUBJECT_ENCODING]
    # The input, the step's input and result, the edit, its write and the chain's result.
    assert len(sealed) >= 6
    assert {p.metadata[SUBJECT_METADATA_KEY] for p in sealed} == {b"acme/user/u-7"}
    opened = await codec.decode(payloads)
    assert canary.encode() not in b"".join(p.SerializeToString() for p in opened)
    assert sum(FORGOTTEN_METADATA_KEY in p.metadata for p in opened) == len(sealed)
    with pytest.raises(SubjectForgottenError, match="acme/user/u-7"):
        await ada.result()
    assert b"bob-edit-here" in await decoded(bob, codec)
    assert (await bob.result()).status == "completed"


async def test_the_codec_server_shows_the_marker_for_the_forgotten_users_chain(
    codec: SubjectCodec,
    forgotten: tuple[WorkflowHandle[Any, Any], WorkflowHandle[Any, Any], str],
) -> None:
    ada, bob, canary = forgotten
    with serve_codec(codec, port=0, token=TOKEN) as server, httpx.Client() as http:
        shown = {
            name: await shown_by_codec_server(
                http, server.url, TOKEN, History(events=(await handle.fetch_history()).events)
            )
            for name, handle in (("ada", ada), ("bob", bob))
        }
    assert canary.encode() not in shown["ada"] and b"forgotten" in shown["ada"]
    assert b"bob-edit-here" in shown["bob"] and b"forgotten" not in shown["bob"]
