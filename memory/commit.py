"""The write side's unit of work: a `Commit` collects validated operations, then applies them.

``async with store.commit(key=..., provenance=...) as c`` checks the caller's idempotency key
on entry (so a replayed step can skip its work), buffers `put`, `append` and `delete` (validating
each at once, so a bad value fails before anything is written), and applies all of them in one
database transaction on a clean exit. Nothing is applied when the body raises.

A `Commit` knows nothing of the store: it is handed the two things it needs, a way to find an
applied commit by key and a way to apply operations (`FindCommit`, `ApplyCommit`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Literal

from pydantic import JsonValue

from memory.errors import InvalidInput
from memory.namespace import Namespace, check_key, check_namespace, check_segment, check_tags
from memory.records import MemoryRef, Provenance
from memory.values import Merge, encode_result, encode_value

MAX_TTL = timedelta(days=100 * 365)


def check_ttl(ttl: object) -> timedelta | None:
    """Validate a time to live (seconds or a timedelta, positive, at most `MAX_TTL`)."""
    if ttl is None:
        return None
    seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else ttl
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or not 0 < seconds <= MAX_TTL.total_seconds()
    ):
        raise InvalidInput(
            f"ttl must be a positive number of seconds up to {MAX_TTL.days} days, got {ttl!r}"
        )
    return ttl if isinstance(ttl, timedelta) else timedelta(seconds=seconds)


# The widths of the provenance columns (memory.schema.CommitRow).
_PROVENANCE_LIMITS = {
    "workflow_id": 1000,
    "run_id": 100,
    "activity_id": 200,
    "agent": 200,
    "trace_id": 64,
}
_MAX_ATTEMPT = 2**31 - 1


def check_text(value: object, what: str, max_length: int) -> str:
    """Validate a free-text label (principal, provenance field): Unicode, no control characters.

    At most ``max_length`` characters and 2,000 bytes of UTF-8 (an indexed column's entry must
    fit in a PostgreSQL btree page).
    """
    return check_key(value, what, max_length=max_length, max_bytes=2000)


def check_provenance(provenance: object) -> Provenance:
    """Validate a commit's provenance so that every field fits its column."""
    if provenance is None:
        return Provenance()
    if not isinstance(provenance, Provenance):
        raise InvalidInput(f"provenance must be a Provenance, got {type(provenance).__name__}")
    if provenance.tenant is not None:
        check_segment(provenance.tenant, "provenance tenant")
    for field, limit in _PROVENANCE_LIMITS.items():
        value = getattr(provenance, field)
        if value is not None:
            check_text(value, f"provenance {field}", limit)
    attempt = provenance.attempt
    if attempt is not None and not 0 <= attempt <= _MAX_ATTEMPT:
        raise InvalidInput(f"provenance attempt must be from 0 to {_MAX_ATTEMPT}, got {attempt}")
    return provenance


def check_expected_version(expected_version: object) -> int | None:
    """Validate a compare-and-set ``expected_version`` (None, or an int >= 0)."""
    if expected_version is not None and (
        isinstance(expected_version, bool)
        or not isinstance(expected_version, int)
        or expected_version < 0
    ):
        raise InvalidInput(f"expected_version must be an int >= 0, got {expected_version!r}")
    return expected_version


@dataclass(frozen=True, slots=True)
class Op:
    """One buffered write. ``value`` is encoded JSON (None for a delete)."""

    kind: Literal["put", "delete", "append"]
    namespace: Namespace
    key: str
    value: str | None = None
    tags: tuple[str, ...] = ()
    ttl: timedelta | None = None
    expected_version: int | None = None
    merge: Merge = "replace"
    index: bool = True

    @property
    def order(self) -> tuple[int, str, str]:
        """The position of this write in the global lock order."""
        # Every transaction locks head rows in one global order, so concurrent commits on
        # PostgreSQL cannot deadlock on each other.
        return (0 if self.kind != "append" else 1, "/".join(self.namespace), self.key)


@dataclass(frozen=True, slots=True)
class Applied:
    """What applying a commit produced (or, for a replay, what the first application did)."""

    seq: int
    replayed: bool
    result: JsonValue
    writes: tuple[MemoryRef, ...]
    tenant: str | None = None


FindCommit = Callable[[str], Awaitable[Applied | None]]
"""Look up the commit applied under an idempotency key, if any."""
ApplyCommit = Callable[[str, Provenance, list[Op], str], Awaitable[Applied]]
"""Apply ``(key, provenance, ops in lock order, encoded result)`` in one transaction."""


class Commit:
    """Collects one step's writes; see the module docstring. Create with `MemoryStore.commit`.

    After a clean exit, `seq`, `replayed`, `result` and `writes` describe the applied commit.
    `replayed` is already known on entry: when True, the key was committed before, `result`
    holds the stored result, and writes made in the body are ignored.
    """

    def __init__(
        self,
        key: str,
        provenance: Provenance,
        *,
        apply: ApplyCommit,
        find: FindCommit | None,
        max_value_bytes: int,
    ) -> None:
        self._apply = apply
        # A generated key (``adhoc:<uuid4>``) cannot have been applied yet, so looking it up
        # would cost a transaction for nothing (``find=None``); the claim's ON CONFLICT still
        # guards the write.
        self._find = find
        self._max_value_bytes = max_value_bytes
        self.key = key
        self.provenance = provenance
        self.ops: list[Op] = []
        self.result: JsonValue = None
        self.seq: int | None = None
        self.replayed = False
        self.writes: tuple[MemoryRef, ...] = ()
        self.tenant: str | None = None
        """The tenant of the applied commit (for a replay, of the commit first applied)."""
        self._applied: Applied | None = None

    async def __aenter__(self) -> Commit:
        if self._find is not None:
            previous = await self._find(self.key)
            if previous is not None:
                self._done(previous)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            return
        if self._applied is not None and self._applied.replayed:
            # The body may have assigned `result`; a replay reports the stored one.
            self._done(self._applied)
            return
        encoded = encode_result(self.key, self.result)
        ops = sorted(self.ops, key=lambda op: op.order)
        self._done(await self._apply(self.key, self.provenance, ops, encoded))

    def _done(self, applied: Applied) -> None:
        self._applied = applied
        self.seq = applied.seq
        self.replayed = applied.replayed
        self.result = applied.result
        self.writes = applied.writes
        self.tenant = applied.tenant

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
        index: bool = True,
    ) -> None:
        """Write a new version of ``(namespace, key)``.

        Args:
            namespace: Tenant-first namespace tuple.
            key: The entry's key.
            value: Any JSON value or pydantic model.
            expected_version: Compare-and-set: the version the caller last read (0 for "must not
                exist"); a mismatch raises `ConflictError` on exit and applies nothing.
            tags: Labels for search filters.
            ttl: Time to live (seconds or timedelta); expired entries are hidden at once.
            merge: How the value combines with the current one (see `Merge`).
            index: False keeps this version out of search (no text or vector index entry):
                for opaque values such as serialized checkpoints.

        Raises:
            InvalidInput: A malformed namespace, key, tag, ttl or value.
            ValueTooLarge: The value's JSON exceeds the store's size cap.
        """
        ns = check_namespace(namespace)
        check_key(key)
        check_expected_version(expected_version)
        if merge not in ("replace", "append") and not callable(merge):
            raise InvalidInput(f"merge must be 'replace', 'append' or a function, got {merge!r}")
        ttl = check_ttl(ttl)
        self._add(
            Op(
                "put",
                ns,
                key,
                encode_value(ns, key, value, self._max_value_bytes),
                check_tags(tags),
                ttl,
                expected_version,
                merge,
                index is not False,
            )
        )

    def delete(
        self, namespace: Sequence[str], key: str, *, expected_version: int | None = None
    ) -> None:
        """Delete ``(namespace, key)``: a tombstone version; history keeps the earlier ones."""
        ns = check_namespace(namespace)
        check_key(key)
        self._add(Op("delete", ns, key, expected_version=check_expected_version(expected_version)))

    def append(self, namespace: Sequence[str], stream: str, item: object) -> None:
        """Append ``item`` to the stream ``(namespace, stream)``; streams never conflict."""
        ns = check_namespace(namespace)
        check_segment(stream, "stream name")
        self._add(Op("append", ns, stream, encode_value(ns, stream, item, self._max_value_bytes)))

    def _add(self, op: Op) -> None:
        if self.seq is not None and not self.replayed:
            raise InvalidInput("this commit was already applied; open a new one")
        self.ops.append(op)
