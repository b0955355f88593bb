"""How crypto-shredding is switched on: the runtime's converter, and `cairn memory forget`."""

from __future__ import annotations

import base64

import pytest
from pydantic import SecretStr
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import WorkflowSerializationContext

from cairn.cli.memory_commands import UNENCRYPTED_HISTORY_WARNING
from cairn.runtime import Settings, data_converter
from cairn.subject_codec import SUBJECT_ENCODING, SUBJECT_METADATA_KEY
from memory import MemoryStore
from tests.cli.conftest import cairn, clean_env
from tests.codec.conftest import MASTER

KEYS = f"m1:{base64.b64encode(MASTER['m1']).decode()}"


async def test_the_runtime_seals_sessions_under_data_keys_in_its_memory(sqlite_url: str) -> None:
    settings = Settings(encryption_keys=SecretStr(KEYS), memory_url=sqlite_url)
    codec = data_converter(settings).payload_codec
    assert codec is not None
    [turn] = pydantic_data_converter.payload_converter.to_payloads(["hello"])
    session = WorkflowSerializationContext(namespace="default", workflow_id="session:acme:s-9")
    chain = WorkflowSerializationContext(namespace="default", workflow_id="report-1")

    [sealed] = await codec.with_context(session).encode([turn])
    [other] = await codec.with_context(chain).encode([turn])

    assert sealed.metadata["encoding"] == SUBJECT_ENCODING
    assert sealed.metadata[SUBJECT_METADATA_KEY] == b"acme/session/s-9"
    assert other.metadata["encoding"] == b"binary/encrypted"
    async with await MemoryStore.open(sqlite_url) as store:
        key = await store.data_key(("acme", "session", "s-9"))
    assert key is not None and key.master_key_id == "m1"
    assert await codec.decode([sealed, other]) == [turn, turn]


@pytest.mark.parametrize("encrypted", [False, True])
async def test_forget_warns_that_histories_keep_the_text_only_without_encryption(
    sqlite_store: MemoryStore, sqlite_url: str, encrypted: bool
) -> None:
    env = clean_env(CAIRN_MEMORY_URL=sqlite_url)
    if encrypted:
        env["CAIRN_ENCRYPTION_KEYS"] = KEYS
    done = await cairn("memory", "forget", "acme/user/u-1", "--yes", env=env)
    assert done.code == 0, done.err
    warned = "stays readable in their workflow histories" in done.err
    assert warned is not encrypted
    assert "forgot acme/user/u-1" in done.out
    assert UNENCRYPTED_HISTORY_WARNING.startswith("cairn: warning: payload encryption is off")
