"""Who wrote an activity's commit, on which store, and the idempotency key it commits under.

Both come from ``activity.info()``: workflow id, run id (activity ids restart after
continue-as-new) and activity id, so a retried activity finds its own earlier commit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio import activity

from memory import Provenance, StoreIdentity, StoreMismatch

if TYPE_CHECKING:
    from memory.store import MemoryStore


def check_store(store: MemoryStore, expected: StoreIdentity | None) -> StoreIdentity:
    """``store``'s identity, once it is the one the workflow began on (when it knows that).

    Raises:
        StoreMismatch: The workflow began on another store (a worker of the same task queue
            is configured with another memory).
    """
    identity = store.identity
    if expected is not None and expected.id != identity.id:
        raise StoreMismatch(expected, identity)
    return identity


def activity_provenance(tenant: str, agent: str) -> Provenance:
    """The provenance of a commit made by the running activity on behalf of ``agent``."""
    info = activity.info()
    return Provenance(
        tenant=tenant,
        workflow_id=info.workflow_id,
        run_id=info.workflow_run_id,
        activity_id=info.activity_id,
        attempt=info.attempt,
        agent=agent,
    )


def activity_commit_key(kind: str) -> str:
    """``<kind>:<workflow id>:<run id>:<activity id>``: one commit per activity execution."""
    info = activity.info()
    return f"{kind}:{info.workflow_id}:{info.workflow_run_id}:{info.activity_id}"
