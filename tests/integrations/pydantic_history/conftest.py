"""PydanticAI's tests: skipped without the ``pydantic-ai`` extra."""

from __future__ import annotations

import pytest

pytest.importorskip("pydantic_ai.durable_exec.temporal")
