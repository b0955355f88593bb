"""Replay every recorded history against today's workflow code (see record_histories.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from tests.workflows.nondeterministic import ChainWorkflowWithoutIngest
from workflows.chain import ChainWorkflow
from workflows.session import SessionWorkflow

HISTORIES = Path(__file__).parent / "histories"
RECORDED = sorted(HISTORIES.glob("*.json"))


def load(path: Path) -> WorkflowHistory:
    """A recorded history, under the workflow id it ran with (ids shape child ids)."""
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    started = history.events[0].workflow_execution_started_event_attributes
    return WorkflowHistory(started.workflow_id, history.events)


def test_every_scenario_has_a_recorded_history() -> None:
    assert {p.stem for p in RECORDED} >= {
        "chain_completed",
        "chain_continued",
        "chain_sub_team",
        "chain_waiting",
        "chain_failed",
        "session_continued",
        "session_ended",
    }


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: p.stem)
async def test_recorded_history_replays(path: Path) -> None:
    replayer = Replayer(
        workflows=[ChainWorkflow, SessionWorkflow], data_converter=pydantic_data_converter
    )
    result = await replayer.replay_workflow(load(path), raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


async def test_an_incompatible_change_is_caught() -> None:
    replayer = Replayer(
        workflows=[ChainWorkflowWithoutIngest, SessionWorkflow],
        data_converter=pydantic_data_converter,
    )
    result = await replayer.replay_workflow(
        load(HISTORIES / "chain_completed.json"), raise_on_replay_failure=False
    )
    assert isinstance(result.replay_failure, NondeterminismError)
    assert "write_memory" in str(result.replay_failure)
