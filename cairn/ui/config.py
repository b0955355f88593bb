"""What a `cairn ui` server is allowed to do, and where it links to: one frozen settings object.

The rules it enforces: loopback binds by default, any other bind needs a token, and the store
is read-only unless write access is configured.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from temporalio.converter import PayloadCodec

from workflows.links import DEFAULT_UI_URL

DEFAULT_URL = DEFAULT_UI_URL
"""Where the Temporal UI's links to Cairn point unless ``CAIRN_UI_URL`` says otherwise."""

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = int(DEFAULT_URL.rsplit(":", 1)[1])


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def origin_of(url: str) -> str:
    """The browser origin (``scheme://host:port``) of a URL; `ValueError` when it has none."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{url!r} is not an http(s) URL such as http://127.0.0.1:8233")
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class UIConfig:
    """How one inspector server behaves.

    Args:
        host: The interface it binds; beyond loopback only with ``token``.
        token: The secret every request must carry (bearer header, or the cookie set by
            opening ``/?token=...`` once); None on loopback means no authentication.
        write: Allow ``fork`` and ``forget`` (confirmed POSTs with a CSRF token).
        temporal_ui_url: The Temporal UI to link workflows to; None hides those links.
        temporal_namespace: The Temporal namespace of those workflows.
        codec: Decrypts payloads for the Temporal UI's codec calls (``CAIRN_ENCRYPTION_KEYS``).
        page_size: Entries per page of a namespace.
    """

    host: str = DEFAULT_HOST
    token: str | None = None
    write: bool = False
    temporal_ui_url: str | None = None
    temporal_namespace: str = "default"
    codec: PayloadCodec | None = None
    page_size: int = 50
    csrf_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    def __post_init__(self) -> None:
        if self.token is not None and (
            len(self.token) < 16 or not self.token.isascii() or not self.token.isprintable()
        ):
            raise ValueError("the UI token (CAIRN_UI_TOKEN) must be 16+ printable ASCII characters")
        if self.token is None and not is_loopback(self.host):
            raise ValueError(
                f"refusing to serve the UI on {self.host} without a token: set CAIRN_UI_TOKEN, "
                "or bind to 127.0.0.1"
            )
        if self.temporal_ui_url is not None:
            origin_of(self.temporal_ui_url)
        if not 1 <= self.page_size <= 1000:
            raise ValueError(f"page_size must be from 1 to 1000, got {self.page_size}")

    @property
    def temporal_ui_origins(self) -> frozenset[str]:
        """The browser origins whose codec calls are answered: the Temporal UI's only.

        A loopback UI is the same page whether opened as ``localhost`` or ``127.0.0.1``.
        """
        if not self.temporal_ui_url:
            return frozenset()
        origin = origin_of(self.temporal_ui_url)
        parts = urlsplit(origin)
        if parts.hostname in ("localhost", "127.0.0.1") and parts.port is not None:
            return frozenset(
                f"{parts.scheme}://{host}:{parts.port}" for host in ("localhost", "127.0.0.1")
            )
        return frozenset({origin})
