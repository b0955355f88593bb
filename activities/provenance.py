"""Who wrote an activity's commit, and the idempotency key it commits under.

Both come from ``activity.info()``: workflow id, run id (activity ids restart after
continue-as-new) and activity id, so a retried activity finds its own earlier commit.
"""

from __future__ import annotations

from temporalio import activity

from memory import Provenance


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
