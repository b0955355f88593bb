"""Links from a workflow's current details in the Temporal UI to its page in the Cairn UI.

Deterministic: string formatting only. The base URL travels in the workflow's input
(``ui_url``), set by whoever starts it (``CAIRN_UI_URL``), so no search attribute is needed.
"""

from __future__ import annotations

from urllib.parse import quote

DEFAULT_UI_URL = "http://127.0.0.1:8234"
"""Where `cairn ui` (and the inspector `cairn dev` starts) listens by default."""


def inspector_url(ui_url: str, workflow_id: str) -> str:
    """The workflow's lineage page in the Cairn UI at ``ui_url``."""
    return f"{ui_url.rstrip('/')}/workflows/{quote(workflow_id, safe='')}"


def inspector_link(ui_url: str | None, workflow_id: str) -> str:
    """A Markdown link to the workflow's lineage page, or "" when links are off."""
    if not ui_url:
        return ""
    return f"\n\n[Memory of this workflow in the Cairn UI]({inspector_url(ui_url, workflow_id)})"
