"""Importing the workflows loads no database layer (DESIGN.md: layers)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def loaded_after(statement: str, modules: set[str]) -> set[str]:
    """Which of ``modules`` a fresh interpreter has loaded after running ``statement``."""
    check = f"import sys; {statement}; print(' '.join(sorted({modules!r} & set(sys.modules))))"
    done = subprocess.run(
        [sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(done.stdout.split())


def test_importing_the_workflows_loads_no_database_driver() -> None:
    assert loaded_after("import workflows.chain", {"sqlalchemy", "psycopg"}) == set()


def test_importing_the_memory_models_loads_no_database_driver() -> None:
    statement = "from memory import Entry, Grants, Provenance, ScopedStore"
    assert loaded_after(statement, {"sqlalchemy", "psycopg"}) == set()


def test_the_store_is_still_importable_from_memory() -> None:
    statement = "from memory import MemoryStore; assert MemoryStore.__name__ == 'MemoryStore'"
    assert "sqlalchemy" in loaded_after(statement, {"sqlalchemy"})
