"""The OpenAI Agents SDK's tests: skipped without the ``openai-agents`` extra; no trace export."""

from __future__ import annotations

import pytest

agents = pytest.importorskip("agents")
pytest.importorskip("temporalio.openai_agents")


@pytest.fixture(scope="session", autouse=True)
def _no_trace_export() -> None:
    # The Agents SDK exports traces to api.openai.com by default; nothing may leave the machine.
    agents.set_tracing_disabled(True)
