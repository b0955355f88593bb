"""Access policy: grants on namespace patterns, and a store handle that enforces them.

A pattern is a namespace written with ``/`` in which ``*`` stands for any one segment, e.g.
``acme/session/*``; it grants the namespaces it matches and everything beneath them. The first
segment (the tenant) must be literal and the same in every pattern, so a scoped handle is bound
to one tenant and can never reach another. Checks run before any query, so a denial looks the
same whether or not the data exists.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, JsonValue, field_validator

from memory.commit import Commit, check_provenance
from memory.errors import AccessDenied, InvalidInput, NotFound
from memory.namespace import Namespace, check_namespace, check_segment
from memory.namespace import matches as matches  # grants are patterns: their test lives there
from memory.records import (
    AuditRecord,
    CommitRecord,
    Entry,
    MemoryRef,
    Page,
    Provenance,
    SearchHit,
    StreamItem,
)
from memory.values import Merge

if TYPE_CHECKING:
    from memory.store import MemoryStore


def _pattern(text: str) -> tuple[str, ...]:
    segments = tuple(text.strip("/").split("/"))
    if not segments or segments[0] == "*":
        raise InvalidInput(f"grant {text!r} must start with a literal tenant")
    for s in segments:
        if s != "*":
            check_segment(s, "grant segment")
    return segments


class Grants(BaseModel):
    """What a principal may read and write. Write implies read."""

    model_config = ConfigDict(frozen=True)
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()

    @field_validator("read", "write")
    @classmethod
    def _valid(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for p in patterns:
            _pattern(p)
        return patterns

    @property
    def tenant(self) -> str:
        """The one tenant every pattern names."""
        tenants = {_pattern(p)[0] for p in (*self.read, *self.write)}
        if len(tenants) != 1:
            raise InvalidInput(f"grants must name exactly one tenant, got {sorted(tenants)}")
        return tenants.pop()

    def allows(self, action: str, namespace: Namespace) -> bool:
        """Whether ``action`` ("read" or "write") is granted on ``namespace``."""
        patterns = self.write if action == "write" else (*self.read, *self.write)
        return any(matches(_pattern(p), namespace) for p in patterns)


class ScopedCommit:
    """A `Commit` whose writes are checked against a scoped handle's grants as they are made.

    It wraps the store's commit and offers the same interface: a write that the grants refuse
    raises `AccessDenied` before it is buffered, so nothing of it can be written.
    """

    def __init__(self, commit: Commit, scope: ScopedStore) -> None:
        self._commit = commit
        self._scope = scope
        self._refused = False

    @property
    def key(self) -> str:
        """The commit's idempotency key."""
        return self._commit.key

    @property
    def provenance(self) -> Provenance:
        """The provenance the commit is written with (this handle's tenant)."""
        return self._commit.provenance

    @property
    def seq(self) -> int | None:
        """See `Commit.seq`."""
        return None if self._refused else self._commit.seq

    @property
    def replayed(self) -> bool:
        """See `Commit.replayed`."""
        return not self._refused and self._commit.replayed

    @property
    def writes(self) -> tuple[MemoryRef, ...]:
        """See `Commit.writes`."""
        return () if self._refused else self._commit.writes

    @property
    def result(self) -> JsonValue:
        """See `Commit.result`."""
        return None if self._refused else self._commit.result

    @result.setter
    def result(self, value: JsonValue) -> None:
        self._commit.result = value

    async def __aenter__(self) -> ScopedCommit:
        await self._commit.__aenter__()
        self._own_tenant()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._commit.__aexit__(exc_type, exc, tb)
        if exc_type is None:
            self._own_tenant()

    def _own_tenant(self) -> None:
        # Commit keys are unique across tenants: replaying another tenant's commit would hand
        # this handle that tenant's stored result, so it is refused, and hidden, instead.
        if self._commit.replayed and self._commit.tenant != self._scope.tenant:
            self._refused = True
            raise self._scope.reused_key(self.key)

    def put(
        self,
        namespace: Sequence[str],
        key: str,
        value: object,
        *,
        expected_version: int | None = None,
        tags: Sequence[str] | None = None,
        ttl: timedelta | float | None = None,
        merge: Merge = "replace",
    ) -> None:
        """Check the write grant, then `Commit.put`."""
        self._scope.check("write", namespace)
        self._commit.put(
            namespace,
            key,
            value,
            expected_version=expected_version,
            tags=tags,
            ttl=ttl,
            merge=merge,
        )

    def delete(
        self, namespace: Sequence[str], key: str, *, expected_version: int | None = None
    ) -> None:
        """Check the write grant, then `Commit.delete`."""
        self._scope.check("write", namespace)
        self._commit.delete(namespace, key, expected_version=expected_version)

    def append(self, namespace: Sequence[str], stream: str, item: object) -> None:
        """Check the write grant, then `Commit.append`."""
        self._scope.check("write", namespace)
        self._commit.append(namespace, stream, item)


class ScopedStore:
    """The `MemoryStore` API for one principal, limited to its grants and its tenant."""

    def __init__(self, store: MemoryStore, principal: str, grants: Grants) -> None:
        if not isinstance(grants, Grants):
            raise InvalidInput(f"grants must be a Grants, got {type(grants).__name__}")
        self.store = store
        self.principal = principal
        self.grants = grants
        self.tenant = grants.tenant

    def check(self, action: str, namespace: Sequence[str]) -> Namespace:
        """Validate ``namespace`` and raise `AccessDenied` unless ``action`` is granted on it."""
        ns = check_namespace(namespace)
        if ns[0] != self.tenant or not self.grants.allows(action, ns):
            raise AccessDenied(self.principal, ns, action)
        return ns

    def reused_key(self, key: str) -> AccessDenied:
        """The error for a commit key that another tenant's commit already holds."""
        return AccessDenied(self.principal, (self.tenant,), f"reuse commit key {key!r} in")

    def commit(
        self, *, key: str | None = None, provenance: Provenance | None = None
    ) -> ScopedCommit:
        """Like `MemoryStore.commit`; the provenance names this tenant and, by default, agent.

        Raises:
            AccessDenied: On entry (or exit), when ``key`` belongs to another tenant's commit.
        """
        prov = check_provenance(provenance).model_copy(update={"tenant": self.tenant})
        if prov.agent is None:
            prov = prov.model_copy(update={"agent": self.principal})
        return ScopedCommit(self.store.commit(key=key, provenance=prov), self)

    async def get(self, namespace: Sequence[str], key: str, **kw: Any) -> Any:
        """`MemoryStore.get` within the read grants."""
        return await self.store.get(self.check("read", namespace), key, **kw)

    async def history(self, namespace: Sequence[str], key: str, **kw: Any) -> builtins.list[Entry]:
        """`MemoryStore.history` within the read grants."""
        return await self.store.history(self.check("read", namespace), key, **kw)

    async def list(self, prefix: Sequence[str], **kw: Any) -> Page:
        """`MemoryStore.list` within the read grants."""
        return await self.store.list(self.check("read", prefix), **kw)

    async def tail(
        self, namespace: Sequence[str], stream: str, n: int = 20
    ) -> builtins.list[StreamItem]:
        """`MemoryStore.tail` within the read grants."""
        return await self.store.tail(self.check("read", namespace), stream, n)

    async def read_stream(
        self, namespace: Sequence[str], stream: str, **kw: Any
    ) -> builtins.list[StreamItem]:
        """`MemoryStore.read_stream` within the read grants."""
        return await self.store.read_stream(self.check("read", namespace), stream, **kw)

    async def search(self, prefix: Sequence[str], text: str, **kw: Any) -> builtins.list[SearchHit]:
        """`MemoryStore.search` within the read grants."""
        return await self.store.search(self.check("read", prefix), text, **kw)

    async def fork(
        self,
        src: Sequence[str],
        dst: Sequence[str],
        *,
        as_of: int | None = None,
        key: str | None = None,
        provenance: Provenance | None = None,
    ) -> CommitRecord:
        """`MemoryStore.fork`: needs read on ``src`` and write on ``dst``."""
        src_ns, dst_ns = self.check("read", src), self.check("write", dst)
        prov = check_provenance(provenance).model_copy(update={"tenant": self.tenant})
        if prov.agent is None:
            prov = prov.model_copy(update={"agent": self.principal})
        record = await self.store.fork(src_ns, dst_ns, as_of=as_of, key=key, provenance=prov)
        if record.provenance.tenant != self.tenant:
            raise self.reused_key(record.key)
        return record

    async def forget(self, prefix: Sequence[str]) -> dict[str, int]:
        """`MemoryStore.forget`, needing write on ``prefix``; audited under this principal."""
        return await self.store.forget(self.check("write", prefix), principal=self.principal)

    async def get_commit(self, key: str) -> CommitRecord:
        """A commit of this tenant; another tenant's looks exactly like a missing one."""
        try:
            record = await self.store.get_commit(key)
        except NotFound:
            record = None
        if record is None or record.provenance.tenant != self.tenant:
            raise NotFound(f"commit {key!r}")
        return record

    async def list_commits(self, **kw: Any) -> builtins.list[CommitRecord]:
        """`MemoryStore.list_commits` of this tenant only."""
        return await self.store.list_commits(**{**kw, "tenant": self.tenant})

    async def audit_log(self, **kw: Any) -> builtins.list[AuditRecord]:
        """Not available to a scoped handle: the audit log spans tenants."""
        raise AccessDenied(self.principal, (self.tenant,), "read the audit log of")
