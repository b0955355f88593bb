"""The README's examples for the agent-framework integrations, as code the tests run."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

README = (Path(__file__).parents[2] / "README.md").read_text()
SECTION = README.split("## Agent frameworks on Temporal", 1)[1].split("\n## ", 1)[0]


def python_blocks() -> list[str]:
    """The section's ``python`` blocks, in order."""
    return re.findall(r"```python\n(.*?)```", SECTION, re.S)


async def run_async(source: str, **names: Any) -> dict[str, Any]:
    """Run ``source`` (which may ``await`` at top level) with ``names`` defined; its globals."""
    scope: dict[str, Any] = dict(names)
    body = textwrap.indent(source, "    ")
    exec(f"async def __example__():\n{body}\n    return locals()", scope)
    scope.update(await scope["__example__"]())
    return scope
