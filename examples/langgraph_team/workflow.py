"""The team workflow: runs the registered ``team`` graph (deterministic; nodes are activities)."""

from __future__ import annotations

from temporalio import workflow
from temporalio.langgraph import graph


@workflow.defn
class TeamWorkflow:
    """One team run on one topic."""

    @workflow.run
    async def run(self, topic: str) -> list[str]:
        """Run the graph; return its notes."""
        result = await graph("team").compile().ainvoke({"topic": topic, "notes": []})
        return list(result["notes"])
