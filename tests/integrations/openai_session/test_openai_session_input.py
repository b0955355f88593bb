"""`CairnSession` is the SDK's `Session`, and refuses bad input naming it, writing nothing."""

from __future__ import annotations

from typing import Any

import pytest

from cairn.integrations.openai_agents import CairnSession
from memory import InvalidInput, MemoryStore, ValueTooLarge


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ({"role": "user", "content": object()}, InvalidInput),
        ({"role": "user", "content": "x" * 70_000}, ValueTooLarge),
    ],
    ids=["not-json", "too-large"],
)
async def test_a_bad_item_is_refused_and_nothing_is_written(
    store: MemoryStore, tenant: str, bad: Any, error: type[Exception]
):
    s = CairnSession("s-bad", tenant=tenant, store=store, max_item_bytes=64 * 1024)
    with pytest.raises(error, match=r"items\[1\]"):
        await s.add_items([{"role": "user", "content": "fine"}, bad])
    assert await store.list_commits(tenant=tenant) == []


@pytest.mark.parametrize("session_id", ["has space", "a/b", "", "x" * 65])
def test_a_session_id_that_is_not_a_namespace_segment_is_refused(session_id: str):
    with pytest.raises(InvalidInput, match="session id"):
        CairnSession(session_id, tenant="acme")


def test_it_is_the_sdks_session_and_takes_the_run_context():
    from agents.memory.session import Session, _session_accepts_wrapper

    session = CairnSession("s-1", tenant="acme")
    assert isinstance(session, Session)
    # The SDK passes the run context (``wrapper=``) only to sessions whose four methods take it.
    assert _session_accepts_wrapper(session)
