"""What one ``cairn mcp`` server is bound to: a tenant, grant patterns, a principal, a token.

The grants are `memory.policy.Grants`, the same patterns agents are given, so an MCP client
reaches exactly what an agent with those grants would. Without explicit grants a server may
read its whole tenant and write nothing.
"""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from memory import Grants
from memory.namespace import check_segment

DEFAULT_PRINCIPAL = "mcp"
LOOPBACK_NAMES = frozenset({"localhost"})


def split_patterns(text: str | None) -> tuple[str, ...]:
    """Grant patterns from ``a/b,a/c/*`` (commas or whitespace between them)."""
    if not text:
        return ()
    return tuple(p for p in text.replace(",", " ").split() if p)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class McpConfig(BaseModel):
    """A server's binding: whose memory, which parts of it, and who is asking.

    Attributes:
        tenant: The one tenant every read and write stays in.
        read: Grant patterns readable (``acme/user/*``); the whole tenant when neither
            ``read`` nor ``write`` is given.
        write: Grant patterns writable (write implies read).
        principal: The name denials and provenance give this server (``mcp`` by default).
        token: The bearer token the HTTP transport requires, if any.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant: str
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()
    principal: str = Field(default=DEFAULT_PRINCIPAL, min_length=1, max_length=100)
    token: SecretStr | None = None

    @field_validator("tenant")
    @classmethod
    def _tenant(cls, tenant: str) -> str:
        return check_segment(tenant, "tenant")

    @field_validator("token")
    @classmethod
    def _token(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None and len(token.get_secret_value()) < 16:
            raise ValueError("the bearer token must be at least 16 characters")
        return token

    @model_validator(mode="after")
    def _in_tenant(self) -> McpConfig:
        for pattern in (*self.read, *self.write):
            if pattern.strip("/").split("/")[0] != self.tenant:
                raise ValueError(
                    f"grant {pattern!r} is outside tenant {self.tenant!r}: every pattern must "
                    f"start with {self.tenant}/"
                )
        Grants(read=self.read, write=self.write)  # each pattern is checked here
        return self

    @property
    def grants(self) -> Grants:
        """The `Grants` this server acts under."""
        if not self.read and not self.write:
            return Grants(read=(self.tenant,))
        return Grants(read=self.read, write=self.write)
