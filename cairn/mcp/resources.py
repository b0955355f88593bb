"""The memory as MCP resources: ``cairn://<namespace>/<key>`` and listings under a prefix.

- ``cairn://acme/user/u-7/favorite-color`` is an entry's current version and
  ``cairn://acme/user/u-7/favorite-color?version=2`` one earlier version (the key
  percent-encoded, so a ``/`` in it is ``%2F``). The content is the version quoted with its
  source, as the tools quote it.
- ``cairn://acme/user/u-7/`` (a trailing slash) lists the readable entries at or under that
  namespace as JSON: their URIs, versions and who wrote them.
- ``resources/list`` lists the readable entries of the tenant (the first `LISTED`).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote as percent

from mcp.server.mcpserver import MCPServer, ResourceSecurity
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.types import Resource

from cairn.mcp import views
from cairn.mcp.access import readable_entries
from memory import Entry, MemoryStoreError, NotFound, ScopedStore
from memory.context import PREFACE, SEPARATOR
from memory.namespace import parse

SCHEME = "cairn"
ENTRY_TEMPLATE = "cairn://{+namespace}/{key}{?version}"
LISTING_TEMPLATE = "cairn://{+prefix}/"
LISTED = 200
"""How many entries ``resources/list`` and a listing show at most."""
# Keys are opaque text, never paths: ".." or a leading "/" in one is just a key.
_OPAQUE = ResourceSecurity(exempt_params={"namespace", "key", "prefix"})


def entry_uri(entry: Entry, *, pinned: bool = False) -> str:
    """The URI of an entry (with ``?version=`` when ``pinned``)."""
    uri = f"{SCHEME}://{'/'.join(entry.namespace)}/{percent(entry.key, safe='')}"
    return f"{uri}?version={entry.version}" if pinned else uri


class EntryResources:
    """Resource templates and the resource list of one server, bound to its scoped memory."""

    def __init__(self, memory: ScopedStore) -> None:
        self.memory = memory

    def register(self, server: MCPServer[Any]) -> None:
        """Add the templates to ``server`` (the listing first: it matches a trailing slash)."""
        server.resource(
            LISTING_TEMPLATE,
            name="listing",
            description="The readable entries at or under a namespace (note the trailing /).",
            mime_type="application/json",
            security=_OPAQUE,
        )(self.listing)
        server.resource(
            ENTRY_TEMPLATE,
            name="entry",
            description="An entry's current version, or ?version=N; the key percent-encoded.",
            mime_type="text/plain",
            security=_OPAQUE,
        )(self.entry)

    async def entry(self, namespace: str, key: str, version: str | None = None) -> str:
        """One version of an entry, quoted with its source."""
        try:
            ns = parse(namespace)
            if version is None:
                found = await self.memory.get(ns, key)
            else:
                found = await self._version(ns, key, version)
        except NotFound as error:
            raise ResourceNotFoundError(str(error)) from error
        except MemoryStoreError as error:
            raise ResourceError(str(error)) from error
        return SEPARATOR.join([PREFACE, views.quoted_entry(found)])

    async def _version(self, ns: tuple[str, ...], key: str, version: str) -> Entry:
        if not version.isdigit() or not 0 < int(version) < 2**31:
            raise ResourceError(f"version must be a positive integer, got {version[:20]!r}")
        wanted = int(version)
        for entry in await self.memory.history(ns, key, limit=min(wanted, 100_000)):
            if entry.version == wanted:
                return entry
        raise NotFound(f"{'/'.join(ns)!r} key {key!r} version {wanted}")

    async def listing(self, prefix: str) -> str:
        """The readable entries at or under ``prefix``, as JSON."""
        try:
            entries, truncated = await readable_entries(self.memory, parse(prefix))
        except MemoryStoreError as error:
            raise ResourceError(str(error)) from error
        shown = entries[:LISTED]
        rows = [
            {
                "uri": entry_uri(e),
                "namespace": "/".join(e.namespace),
                "key": e.key,
                "version": e.version,
                "written_by": views.author(e.provenance),
            }
            for e in shown
        ]
        more = truncated or len(entries) > LISTED
        return json.dumps({"prefix": prefix, "entries": rows, "truncated": more})

    async def listed(self) -> list[Resource]:
        """The tenant's readable entries as resources (for ``resources/list``)."""
        entries, _ = await readable_entries(self.memory, (self.memory.tenant,))
        return [
            Resource(
                uri=entry_uri(e),
                name=f"{'/'.join(e.namespace)} {e.key}",
                description=f"v{e.version}, written by {views.author(e.provenance) or 'unknown'}",
                mime_type="text/plain",
            )
            for e in entries[:LISTED]
        ]
