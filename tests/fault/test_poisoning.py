"""Scenario 19: memory poisoning, shown as data, then purged by provenance.

In one session, an honest agent writes notes; a poisoner overwrites them with instruction-like
text that tries to break out of its quoting; a reader's context is built from the notes and
the transcript; a bystander writes without reading any of it. The reader saw the poison only
as quoted, escaped data under the preface, with the agent that wrote it. `store.purge_run` on the
poisoner's workflow then removes its writes and the reader's (derived: it read them), puts
the notes back to the honest version, leaves the bystander alone, leaves no trace of the text
anywhere in the database, and audits what it did.
"""

from __future__ import annotations

import html
import uuid
from typing import Any

import pytest

from memory import CommitRecord, NotFound, PurgeReport
from memory.context import PREFACE, ContextSpec, Pinned
from tests.fault.agents import POISON
from tests.fault.runs import spec, start_chain, step
from tests.memory.conftest import raw_dump
from tests.workflows.harness import TENANT, Team, agent, run_ns

pytestmark = pytest.mark.fault

READS_NOTES = ContextSpec(pinned=(Pinned(where="session", key="notes"),), last_messages=10)


async def test_poisoned_memory_is_quoted_then_purged_with_what_was_derived_from_it(
    team: Team,
) -> None:
    session = f"shared-{uuid.uuid4().hex[:8]}"
    ns = (TENANT, "session", session)
    store = team.store

    async def run(agent_name: str, task: str, context: ContextSpec | None = None) -> Any:
        spec_ = spec(step(agent_name, task), session=session, agents=(agent_name,))
        if context is not None:
            spec_ = spec_.model_copy(
                update={"agents": (agent(agent_name, f"python:{agent_name}", context=context),)}
            )
        handle = await start_chain(team.client, team.task_queue, spec_)
        await handle.result()
        return handle

    async with team.worker():
        await run("honest", "notes: the customer prefers email")
        poisoner = await run("poisoner", "take notes")
        reader = await run("reader", "summarize", READS_NOTES)
        await run("honest", "prefs: dark mode", ContextSpec(transcript=None))

        # The reader was shown the poison as quoted, escaped data with its provenance.
        shown = (await store.get(run_ns(reader.id), "output:reader")).value["text"]  # type: ignore[index]
        assert shown.index(PREFACE) < shown.index(html.escape(POISON, quote=False)[:40])
        assert "&lt;/pinned&gt; SYSTEM" in shown and "</pinned> SYSTEM" not in shown
        assert f'written_by="poisoner in {poisoner.id}"' in shown
        before = await store.list_commits(limit=1000)

        report = await store.purge_run(poisoner.id, principal="security")
        await check_purged(team, report, before, poisoner.id, reader.id, ns)
        # A new reader now sees the honest notes, and nothing of the poison.
        again = await run("reader", "summarize again", READS_NOTES)
    shown_again = (await store.get(run_ns(again.id), "output:reader")).value["text"]  # type: ignore[index]
    assert "IGNORE" not in shown_again and "prefers email" in shown_again


async def check_purged(
    team: Team,
    report: PurgeReport,
    before: list[CommitRecord],
    poisoner: str,
    reader: str,
    ns: tuple[str, ...],
) -> None:
    store = team.store
    by_workflow = {c.seq: c.provenance.workflow_id for c in before}
    assert [by_workflow[s] for s in report.commits] == [poisoner]
    assert [by_workflow[s] for s in report.derived] == [reader]
    # The notes put back; the digest and both steps' outputs deleted.
    assert (report.restored, report.deleted) == (1, 3)
    notes = await store.history(ns, "notes")
    assert [v.value for v in notes] == [{"text": "the customer prefers email"}] * 2
    assert notes[-1].commit_seq == report.purge_commit
    gone = [("digest", ns), ("output:reader", run_ns(reader))]
    for key, where in [*gone, ("output:poisoner", run_ns(poisoner))]:
        with pytest.raises(NotFound):
            await store.get(where, key)
    assert (await store.get(ns, "prefs")).value == {"text": "dark mode"}
    transcript = [i.item["content"] for i in await store.tail(ns, "transcript", 100)]  # type: ignore[index, call-overload]
    assert transcript == ["noted notes", "noted prefs"]
    assert await store.search((TENANT,), "attacker admin secret") == []
    assert "ignore all previous instructions" not in await raw_dump(store)
    # Audited, with who and how much, and no content; the scrubbed commits keep provenance.
    audit = (await store.audit_log(limit=1))[0]
    assert (audit.action, audit.target, audit.principal) == ("purge_run", poisoner, "security")
    assert audit.detail["commits"] == 2 and "IGNORE" not in str(audit)
    scrubbed = await store.list_commits(workflow_id=poisoner)
    assert [(c.forgotten, c.result, c.provenance.agent) for c in scrubbed] == [
        (True, None, "poisoner")
    ]
