"""``cairn ui``: a web inspector of the memory, beside the Temporal UI and linked with it.

Public submodules: `cairn.ui.config` (`UIConfig`), `cairn.ui.server` (`create_app`, `serve`).
The rest (pages, actions, views, security, the codec endpoint) is the app's inside.
"""

from cairn.ui.config import DEFAULT_PORT, DEFAULT_URL, UIConfig
from cairn.ui.server import create_app, serve

__all__ = ["DEFAULT_PORT", "DEFAULT_URL", "UIConfig", "create_app", "serve"]
