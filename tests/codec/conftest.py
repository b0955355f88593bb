"""Fixtures for crypto-shredding: a client and worker whose payloads are sealed per subject."""

from __future__ import annotations

import asyncio
import base64
import os
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import History
from temporalio.client import Client

from activities import AgentRegistry
from cairn.codec import EncryptionCodec
from cairn.subject_codec import SubjectCodec, subject_data_converter
from memory import MemoryStore
from tests.workflows.harness import Team
from workflows.contracts import SessionInput

MASTER = {"m1": os.urandom(32)}


def subject_codec(store: MemoryStore, keys: dict[str, bytes] | None = None) -> SubjectCodec:
    """A codec on ``store``; no caching across calls, so a forget shows at once."""
    keys = keys or MASTER
    return SubjectCodec(EncryptionCodec(keys, next(iter(keys))), store, cache_ttl=0)


def encrypted_client(client: Client, codec: SubjectCodec) -> Client:
    """The dev server's client with ``codec`` (and the converter refusing forgotten markers)."""
    return Client(**{**client.config(), "data_converter": subject_data_converter(codec)})


@pytest.fixture
def codec(sqlite_store: MemoryStore) -> SubjectCodec:
    return subject_codec(sqlite_store)


@pytest.fixture
def team(client: Client, codec: SubjectCodec, task_queue: str, sqlite_store: MemoryStore) -> Team:
    return Team(encrypted_client(client, codec), task_queue, sqlite_store, AgentRegistry())


async def history_of(team: Team, inp: SessionInput) -> History:
    """The session's latest run's history, as one protobuf message."""
    return History(events=(await team.session(inp).fetch_history()).events)


def payloads_of(message: Message) -> list[Payload]:
    """Every payload anywhere in ``message`` (a history, an event, a failure)."""
    found: list[Payload] = []
    if isinstance(message, Payload):
        return [message]
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        values: Any = value
        if field.message_type.GetOptions().map_entry:
            values = value.values()
        elif isinstance(value, Message):
            values = [value]
        for item in values:
            if isinstance(item, Message):
                found.extend(payloads_of(item))
    return found


async def shown_by_codec_server(
    http: httpx.Client, url: str, token: str, history: History
) -> bytes:
    """The data of every payload of ``history`` as the codec server at ``url`` decodes it."""
    body = {"payloads": [json_format.MessageToDict(p) for p in payloads_of(history)]}
    response = await asyncio.to_thread(
        http.post, f"{url}/default/decode", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    return b"".join(base64.b64decode(p.get("data", "")) for p in response.json()["payloads"])
