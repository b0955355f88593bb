"""Deterministic orchestration: teams as chains, long-lived sessions, approvals, sub-teams."""

from workflows.chain import ChainWorkflow, team_search_attributes
from workflows.contracts import (
    Approval,
    ChainProgress,
    ChainResult,
    ChainResume,
    ChainSpec,
    Decision,
    DecisionAck,
    Handoff,
    Loop,
    Parallel,
    Reply,
    SessionEnd,
    SessionInput,
    SessionState,
    Step,
    SubTeam,
    Turn,
    Write,
)
from workflows.ids import chain_workflow_id, session_workflow_id, workflow_subject
from workflows.session import SessionWorkflow, session_search_attributes
from workflows.steps import run_step

__all__ = [
    "Approval",
    "ChainProgress",
    "ChainResult",
    "ChainResume",
    "ChainSpec",
    "ChainWorkflow",
    "Decision",
    "DecisionAck",
    "Handoff",
    "Loop",
    "Parallel",
    "Reply",
    "SessionEnd",
    "SessionInput",
    "SessionState",
    "SessionWorkflow",
    "Step",
    "SubTeam",
    "Turn",
    "Write",
    "chain_workflow_id",
    "run_step",
    "session_search_attributes",
    "session_workflow_id",
    "team_search_attributes",
    "workflow_subject",
]
