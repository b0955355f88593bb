"""Every side effect of a Cairn workflow: agent steps, model calls, memory writes, compaction.

Workflows import `activities.contracts` only (types and activity names); `worker.py` registers
the activity classes below as bound methods.

Public submodules: `activities.contracts` (what workflows pass to activities),
`activities.registry` (Python agents, scripts and tools), `activities.llm` (the model
adapters), `activities.failures` (how errors become Temporal failures) and `activities.demo`
(the demo agents' scripted behaviours). The others are this package's internals.
"""

from activities.contracts import AgentSpec, StepInput, StepResult
from activities.registry import AgentContext, AgentOutput, AgentRegistry, Tool, ToolContext
from activities.steps import AgentActivities
from activities.writes import MemoryActivities

__all__ = [
    "AgentActivities",
    "AgentContext",
    "AgentOutput",
    "AgentRegistry",
    "AgentSpec",
    "MemoryActivities",
    "StepInput",
    "StepResult",
    "Tool",
    "ToolContext",
]
