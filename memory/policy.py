"""Access policy: grants on namespace patterns, and a store handle that enforces them.

A pattern is a namespace written with ``/`` in which ``*`` stands for any one segment, e.g.
``acme/session/*``; it grants the namespaces it matches and everything beneath them. The first
segment (the tenant) must be literal and the same in every pattern, so a scoped handle is bound
to one tenant and can never reach another. Checks run before any query, so a denial looks the
same whether or not the data exists.

Commit keys are unique across the store, but a scoped handle must not learn which keys other
tenants hold: when its key is another tenant's, its commit is stored under `tenant_key` (the
key qualified by this tenant) instead, and the handle reports and finds it by the key it gave.
Reusing another tenant's key therefore behaves exactly like using a fresh one.
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


_REDIRECTS = 4
"""How many tenant-qualified keys a commit tries before giving up (each can only be taken by a
tenant forging this tenant's qualified keys on purpose)."""


def tenant_key(key: str, tenant: str) -> str:
    """The key ``tenant``'s commit is stored under when another tenant holds ``key``."""
    return f"{key}{_QUALIFIER}{tenant}"


# An invisible separator (U+2063) before the tenant: allowed in keys, unlikely in chosen ones.
_QUALIFIER = "\u2063@"


def caller_key(stored: str, tenant: str) -> str:
    """The key a scoped caller gave for the commit stored under ``stored``."""
    suffix = f"{_QUALIFIER}{tenant}"
    while stored.endswith(suffix):
        stored = stored.removesuffix(suffix)
    return stored


class ScopedCommit:
    """A `Commit` whose writes are checked against a scoped handle's grants as they are made.

    It wraps the store's commit and offers the same interface: a write that the grants refuse
    raises `AccessDenied` before it is buffered, so nothing of it can be written. A key another
    tenant holds moves the commit to this tenant's `tenant_key`, on entry or, when the other
    tenant applied it meanwhile, on exit with the same writes.
    """

    def __init__(self, scope: ScopedStore, key: str | None, provenance: Provenance) -> None:
        self._scope = scope
        self._provenance = provenance
        self._commit = scope.store.commit(key=key, provenance=provenance)
        self._key = self._commit.key

    @property
    def key(self) -> str:
        """The commit's idempotency key, as the caller gave it."""
        return self._key

    @property
    def provenance(self) -> Provenance:
        """The provenance the commit is written with (this handle's tenant)."""
        return self._commit.provenance

    @property
    def seq(self) -> int | None:
        """See `Commit.seq`."""
        return self._commit.seq

    @property
    def replayed(self) -> bool:
        """See `Commit.replayed`."""
        return self._commit.replayed

    @property
    def writes(self) -> tuple[MemoryRef, ...]:
        """See `Commit.writes`."""
        return self._commit.writes

    @property
    def result(self) -> JsonValue:
        """See `Commit.result`."""
        return self._commit.result

    @result.setter
    def result(self, value: JsonValue) -> None:
        self._commit.result = value

    async def __aenter__(self) -> ScopedCommit:
        await self._commit.__aenter__()
        for _ in range(_REDIRECTS):
            if not self._foreign():
                return self
            self._commit = self._next_commit()
            await self._commit.__aenter__()
        raise self._scope.reused_key()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        result = self._commit.result
        await self._commit.__aexit__(exc_type, exc, tb)
        if exc_type is not None:
            return
        for _ in range(_REDIRECTS):
            if not self._foreign():
                return
            # Another tenant applied the key between our lookup and our write: apply the same
            # writes under this tenant's key instead.
            ops, self._commit = self._commit.ops, self._next_commit()
            await self._commit.__aenter__()
            if not self._commit.replayed:
                self._commit.ops = ops
                self._commit.result = result
            await self._commit.__aexit__(None, None, None)
        raise self._scope.reused_key()

    def _foreign(self) -> bool:
        return self._commit.replayed and self._commit.tenant != self._scope.tenant

    def _next_commit(self) -> Commit:
        key = tenant_key(self._commit.key, self._scope.tenant)
        return self._scope.store.commit(key=key, provenance=self._provenance)

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

    def reused_key(self) -> AccessDenied:
        """The error when every key a commit could take is held by other tenants' commits."""
        return AccessDenied(self.principal, (self.tenant,), "commit in")

    def commit(
        self, *, key: str | None = None, provenance: Provenance | None = None
    ) -> ScopedCommit:
        """Like `MemoryStore.commit`; the provenance names this tenant and, by default, agent.

        A ``key`` another tenant holds behaves as a fresh one (see the module docstring).
        """
        return ScopedCommit(self, key, self._provenance(provenance))

    def _provenance(self, provenance: Provenance | None) -> Provenance:
        prov = check_provenance(provenance).model_copy(update={"tenant": self.tenant})
        if prov.agent is None:
            prov = prov.model_copy(update={"agent": self.principal})
        return prov

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
        prov = self._provenance(provenance)
        for _ in range(_REDIRECTS):
            record = await self.store.fork(src_ns, dst_ns, as_of=as_of, key=key, provenance=prov)
            if record.provenance.tenant == self.tenant:
                return record.model_copy(update={"key": caller_key(record.key, self.tenant)})
            key = tenant_key(record.key, self.tenant)
        raise self.reused_key()

    async def forget(self, prefix: Sequence[str]) -> dict[str, int]:
        """`MemoryStore.forget`, needing write on ``prefix``; audited under this principal."""
        return await self.store.forget(self.check("write", prefix), principal=self.principal)

    async def get_commit(self, key: str) -> CommitRecord:
        """A commit of this tenant; another tenant's looks exactly like a missing one."""
        stored = key
        for _ in range(_REDIRECTS):
            try:
                record = await self.store.get_commit(stored)
            except NotFound:
                break
            if record.provenance.tenant == self.tenant:
                return record.model_copy(update={"key": key})
            stored = tenant_key(stored, self.tenant)
        raise NotFound(f"commit {key!r}")

    async def list_commits(self, **kw: Any) -> builtins.list[CommitRecord]:
        """`MemoryStore.list_commits` of this tenant only, by the keys its callers gave."""
        records = await self.store.list_commits(**{**kw, "tenant": self.tenant})
        return [
            r.model_copy(update={"key": caller_key(r.key, self.tenant)})
            if r.key != caller_key(r.key, self.tenant)
            else r
            for r in records
        ]

    async def audit_log(self, **kw: Any) -> builtins.list[AuditRecord]:
        """Not available to a scoped handle: the audit log spans tenants."""
        raise AccessDenied(self.principal, (self.tenant,), "read the audit log of")
