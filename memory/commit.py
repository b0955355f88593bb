"""The write side's unit of work: a `Commit` collects validated operations, then applies them.

``async with store.commit(key=..., provenance=...) as c`` checks the idempotency key on entry
(so a replayed step can skip its work), buffers `put`, `append` and `delete` (validating each
at once, so a bad value fails before anything is written), and applies all of them in one
database transaction on a clean exit. Nothing is applied when the body raises.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, JsonValue

from memory.errors import InvalidInput, ValueTooLarge
from memory.models import MemoryRef, Provenance
from memory.namespace import Namespace, check_key, check_namespace, check_segment, check_tags

if TYPE_CHECKING:
    from memory.store import MemoryStore

Reducer = Callable[[JsonValue, JsonValue], JsonValue]
Merge = Literal["replace", "append"] | Reducer
"""How a put combines with the current value: ``"replace"`` (last writer wins), ``"append"``
(the current value is a list and the new value is added to it), or a reducer
``(current, new) -> merged`` run inside the write lock, so concurrent merges lose nothing."""

MAX_RESULT_BYTES = 64 * 1024


def dumps(value: object) -> str:
    """Compact JSON for storage; pydantic models are dumped in JSON mode first."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def encode_value(namespace: Namespace, key: str, value: object, limit: int) -> str:
    """Validate and encode a value, enforcing the size cap before anything is written."""
    try:
        text = dumps(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"value for {'/'.join(namespace)!r} key {key!r} is not JSON-serializable: {exc}"
        ) from None
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise ValueTooLarge(namespace, key, size, limit)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(
            f"value for {'/'.join(namespace)!r} key {key!r} contains invalid Unicode"
        ) from None
    return text


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

    @property
    def order(self) -> tuple[int, str, str]:
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


class Commit:
    """Collects one step's writes; see the module docstring. Create with `MemoryStore.commit`.

    After a clean exit, `seq`, `replayed`, `result` and `writes` describe the applied commit.
    `replayed` is already known on entry: when True, the key was committed before, `result`
    holds the stored result, and writes made in the body are ignored.
    """

    def __init__(self, store: MemoryStore, key: str, provenance: Provenance) -> None:
        self._store = store
        self.key = key
        self.provenance = provenance
        self.ops: list[Op] = []
        self.result: JsonValue = None
        self.seq: int | None = None
        self.replayed = False
        self.writes: tuple[MemoryRef, ...] = ()

    async def __aenter__(self) -> Commit:
        previous = await self._store._find_commit(self.key)
        if previous is not None:
            self._done(previous)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None or self.replayed:
            return
        result = self.result.model_dump(mode="json") if isinstance(self.result, BaseModel) else self.result
        encoded = dumps(result)
        if len(encoded.encode()) > MAX_RESULT_BYTES:
            raise ValueTooLarge(("commit",), self.key, len(encoded.encode()), MAX_RESULT_BYTES)
        ops = sorted(self.ops, key=lambda op: op.order)
        self._done(await self._store._apply(self.key, self.provenance, ops, encoded))

    def _done(self, applied: Applied) -> None:
        self.seq = applied.seq
        self.replayed = applied.replayed
        self.result = applied.result
        self.writes = applied.writes

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

        Raises:
            InvalidInput: A malformed namespace, key, tag, ttl or value.
            ValueTooLarge: The value's JSON exceeds the store's size cap.
        """
        ns = check_namespace(namespace)
        check_key(key)
        if expected_version is not None and (
            isinstance(expected_version, bool)
            or not isinstance(expected_version, int)
            or expected_version < 0
        ):
            raise InvalidInput(f"expected_version must be an int >= 0, got {expected_version!r}")
        if merge not in ("replace", "append") and not callable(merge):
            raise InvalidInput(f"merge must be 'replace', 'append' or a function, got {merge!r}")
        if isinstance(ttl, (int, float)) and not isinstance(ttl, bool):
            ttl = timedelta(seconds=ttl)
        if ttl is not None and (not isinstance(ttl, timedelta) or ttl <= timedelta(0)):
            raise InvalidInput(f"ttl must be a positive number of seconds, got {ttl!r}")
        self._add(
            Op(
                "put",
                ns,
                key,
                encode_value(ns, key, value, self._store.max_value_bytes),
                check_tags(tags),
                ttl,
                expected_version,
                merge,
            )
        )

    def delete(
        self, namespace: Sequence[str], key: str, *, expected_version: int | None = None
    ) -> None:
        """Delete ``(namespace, key)``: a tombstone version; history keeps the earlier ones."""
        ns = check_namespace(namespace)
        self._add(Op("delete", ns, check_key(key), expected_version=expected_version))

    def append(self, namespace: Sequence[str], stream: str, item: object) -> None:
        """Append ``item`` to the stream ``(namespace, stream)``; streams never conflict."""
        ns = check_namespace(namespace)
        check_segment(stream, "stream name")
        self._add(
            Op("append", ns, stream, encode_value(ns, stream, item, self._store.max_value_bytes))
        )

    def _add(self, op: Op) -> None:
        if self.seq is not None and not self.replayed:
            raise InvalidInput("this commit was already applied; open a new one")
        self.ops.append(op)


def reduce(merge: Merge, current: JsonValue, new: JsonValue) -> JsonValue:
    """Combine a put's value with the current one under its merge policy."""
    if merge == "replace":
        return new
    if merge == "append":
        if current is None:
            return [new]
        if not isinstance(current, list):
            raise InvalidInput("merge='append' needs the current value to be a list")
        return [*current, new]
    return merge(current, new)


def loads(text: str | None) -> Any:
    """Decode stored JSON (None stays None)."""
    return None if text is None else json.loads(text)
