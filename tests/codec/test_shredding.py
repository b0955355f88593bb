"""Forgetting a user shreds their session turns in Temporal histories (real dev server).

A canary planted in a user's turns is readable through the client before the forget, and
nowhere after it: not through the client, the codec server or the ``temporal`` CLI, while
another user's turns still decode.
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.enums.v1 import EventType
from temporalio.service import RPCError
from temporalio.worker import Replayer

from cairn.codec import EncryptionCodec
from cairn.codec_server import serve_codec
from cairn.subject_codec import (
    FORGOTTEN_METADATA_KEY,
    SUBJECT_ENCODING,
    SubjectCodec,
    subject_data_converter,
)
from cairn.ui import UIConfig
from cairn.ui.server import create_app
from memory import MemoryStore
from tests.codec.conftest import (
    MASTER,
    encrypted_client,
    history_of,
    payloads_of,
    shown_by_codec_server,
    subject_codec,
)
from tests.workflows.harness import TENANT, Team
from workflows.contracts import SessionInput
from workflows.session import SessionWorkflow
from workflows.teams import support_agent

TOKEN = "shred-test-token"
TEMPORAL = Path(sys.executable).parent / "temporal"


def session_input(user: str) -> SessionInput:
    return SessionInput(
        tenant=TENANT,
        session=f"s-{uuid.uuid4().hex[:8]}",
        user=user,
        agent=support_agent(model="scripted"),
    )


async def decoded_history(team: Team, inp: SessionInput, codec: SubjectCodec) -> bytes:
    """Every payload of the session's history, decoded, as one blob of bytes."""
    history = await history_of(team, inp)
    decoded = await codec.decode(payloads_of(history))
    return b"\n".join(p.SerializeToString() for p in decoded)


@pytest.fixture
async def forgotten(team: Team, codec: SubjectCodec) -> tuple[SessionInput, SessionInput, str]:
    """Two users' sessions; the first user's turns hold a canary and that user is forgotten."""
    canary = f"canary-{uuid.uuid4().hex}"
    ada, bob = session_input(f"u-{uuid.uuid4().hex[:6]}"), session_input("u-bob")
    async with team.worker():
        await team.send(ada, "m1", f"my secret is {canary}")
        await team.send(ada, "m2", f"repeat {canary} please")
        await team.send(bob, "m1", "bob-was-here")
    raw = (await history_of(team, ada)).SerializeToString()
    assert canary.encode() not in raw  # sealed in the history from the start
    assert canary.encode() in await decoded_history(team, ada, codec)
    counts = await team.store.forget((TENANT, "user", ada.user or ""), principal="dpo")
    assert counts["data_keys"] == 1
    return ada, bob, canary


async def test_forgetting_a_user_makes_their_turns_unreadable_through_the_client(
    team: Team, codec: SubjectCodec, forgotten: tuple[SessionInput, SessionInput, str]
) -> None:
    ada, bob, canary = forgotten
    history = await history_of(team, ada)
    payloads = payloads_of(history)
    sealed = [p for p in payloads if p.metadata.get("encoding") == SUBJECT_ENCODING]
    assert len(sealed) >= 6  # the input, two turns, two replies, step inputs and results
    decoded = await codec.decode(payloads)
    assert canary.encode() not in b"".join(p.SerializeToString() for p in decoded)
    markers = [p for p in decoded if FORGOTTEN_METADATA_KEY in p.metadata]
    assert len(markers) == len(sealed)
    assert b"forgotten" in markers[0].data
    assert b"bob-was-here" in await decoded_history(team, bob, codec)
    [audit] = [a for a in await team.store.audit_log() if a.action == "forget"]
    assert audit.detail["data_keys"] == 1


async def test_the_codec_server_shows_the_forgotten_marker_and_other_users_turns(
    team: Team, codec: SubjectCodec, forgotten: tuple[SessionInput, SessionInput, str]
) -> None:
    ada, bob, canary = forgotten
    with serve_codec(codec, port=0, token=TOKEN) as server, httpx.Client() as http:
        ada_data, bob_data = [
            await shown_by_codec_server(http, server.url, TOKEN, await history_of(team, inp))
            for inp in (ada, bob)
        ]
    assert canary.encode() not in ada_data and b"forgotten" in ada_data
    assert b"bob-was-here" in bob_data and b"forgotten" not in bob_data


async def test_the_temporal_cli_shows_no_canary_through_the_codec_server(
    team: Team, codec: SubjectCodec, forgotten: tuple[SessionInput, SessionInput, str]
) -> None:
    ada, _, canary = forgotten
    address = team.client.service_client.config.target_host
    handle = team.session(ada)
    with serve_codec(codec, port=0, token=TOKEN) as server:
        shown = await asyncio.to_thread(
            subprocess.run,
            [
                str(TEMPORAL),
                "workflow",
                "show",
                "--workflow-id",
                handle.id,
                "--address",
                address,
                "--output",
                "json",
                "--codec-endpoint",
                server.url,
                "--codec-auth",
                f"Bearer {TOKEN}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert shown.returncode == 0, shown.stderr
    assert canary not in shown.stdout
    assert "forgotten" in shown.stdout


async def test_a_forgotten_sessions_history_fails_replay_clearly(
    team: Team, codec: SubjectCodec, forgotten: tuple[SessionInput, SessionInput, str]
) -> None:
    ada, _, _ = forgotten
    history = await team.session(ada).fetch_history()
    replayer = Replayer(workflows=[SessionWorkflow], data_converter=subject_data_converter(codec))
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    failure = result.replay_failure
    assert failure is not None
    # The cause is named even though its message, sealed under the subject, is the marker.
    assert "SubjectForgottenError" in str(failure)


async def test_a_running_forgotten_session_fails_its_next_task_and_the_worker_lives(
    team: Team, codec: SubjectCodec, forgotten: tuple[SessionInput, SessionInput, str]
) -> None:
    ada, bob, _ = forgotten
    async with team.worker():
        # A fresh worker replays the session: its input is the marker now.
        with pytest.raises(RPCError, match="Workflow Task in failed state"):
            await team.send(ada, "m3", "are you still there?")
        still = await team.send(bob, "m2", "still here")
    assert still.turn == 2
    events = (await history_of(team, ada)).events
    [failed, *_] = [e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
    # The failure is sealed under the forgotten subject too: it decodes to the marker.
    decoded = await codec.decode(payloads_of(failed))
    assert decoded and all(FORGOTTEN_METADATA_KEY in p.metadata for p in decoded)


async def test_rotating_the_master_key_keeps_histories_readable(
    team: Team, sqlite_store: MemoryStore
) -> None:
    old = session_input("u-rot")
    async with team.worker():
        await team.send(old, "m1", "before-rotation")
    # The new master key first, the old one kept for the data keys it wrapped.
    rotated = subject_codec(sqlite_store, {"m2": os.urandom(32), **MASTER})
    after = Team(
        encrypted_client(team.client, rotated), team.task_queue, sqlite_store, team.registry
    )
    new = session_input("u-new")
    async with after.worker():
        await after.send(new, "m1", "after-rotation")
    assert b"before-rotation" in await decoded_history(after, old, rotated)
    assert b"after-rotation" in await decoded_history(after, new, rotated)
    old_key = await sqlite_store.data_key((TENANT, "session", old.session))
    new_key = await sqlite_store.data_key((TENANT, "session", new.session))
    assert old_key is not None and new_key is not None
    assert (old_key.master_key_id, new_key.master_key_id) == ("m1", "m2")


async def test_the_cairn_ui_codec_endpoint_shows_the_marker(
    team: Team, sqlite_store: MemoryStore, forgotten: tuple[SessionInput, SessionInput, str]
) -> None:
    ada, bob, canary = forgotten
    ui = "http://localhost:8233"
    # The UI is given the master codec, as `cairn ui` reads it from CAIRN_ENCRYPTION_KEYS.
    config = UIConfig(temporal_ui_url=ui, codec=EncryptionCodec(MASTER, "m1"))
    transport = httpx.ASGITransport(app=create_app(sqlite_store, config))
    shown = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://cairn-ui") as http:
        for name, inp in (("ada", ada), ("bob", bob)):
            history = await history_of(team, inp)
            body = {"payloads": [json_format.MessageToDict(p) for p in payloads_of(history)]}
            response = await http.post("/codec/default/decode", json=body, headers={"Origin": ui})
            assert response.status_code == 200
            shown[name] = b"".join(
                base64.b64decode(p.get("data", "")) for p in response.json()["payloads"]
            )
    assert canary.encode() not in shown["ada"] and b"forgotten" in shown["ada"]
    assert b"bob-was-here" in shown["bob"]
