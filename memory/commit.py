"""The write side's unit of work: a `Commit` collects validated operations, then applies them.

``async with store.commit(key=..., provenance=...) as c`` checks the caller's idempotency key
on entry (so a replayed step can skip its work), buffers `put`, `append` and `delete` (validating
each at once, so a bad value fails before anything is written), and applies all of them in one
database transaction on a clean exit. Nothing is applied when the body raises.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, JsonValue
from pydantic_core import from_json

from memory.errors import InvalidInput, ValueTooLarge
from memory.namespace import Namespace, check_key, check_namespace, check_segment, check_tags
from memory.records import MemoryRef, Provenance

if TYPE_CHECKING:
    from memory.store import MemoryStore

Reducer = Callable[[JsonValue, JsonValue], JsonValue]
Merge = Literal["replace", "append"] | Reducer
"""How a put combines with the current value: ``"replace"`` (last writer wins), ``"append"``
(the current value is a list and the new value is added to it), or a reducer
``(current, new) -> merged`` run inside the write lock, so concurrent merges lose nothing."""

MAX_RESULT_BYTES = 64 * 1024

MAX_VALUE_DEPTH = 100
"""How deeply lists and objects may nest in a value (pydantic cannot read much deeper ones)."""


def dumps(value: object) -> str:
    """Compact JSON for storage; pydantic models are dumped in JSON mode first."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _shape_problem(value: object) -> str | None:
    """What makes ``value`` unfit to store as JSON that reads back unchanged, if anything.

    Iterative, so a pathologically deep value cannot exhaust the stack.
    """
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            children: Iterable[object] = v.values()
            bad = next((k for k in v if not isinstance(k, str)), None)
            if bad is not None:
                return f"has a non-string object key {bad!r} (JSON object keys are strings)"
        elif isinstance(v, (list, tuple)):
            children = v
        else:
            continue
        if depth > MAX_VALUE_DEPTH:
            return f"nests lists and objects more than {MAX_VALUE_DEPTH} levels deep"
        stack.extend((child, depth + 1) for child in children)
    return None


def to_json(value: object, what: str | Callable[[], str]) -> str:
    """Encode a value for storage, or raise `InvalidInput` saying what is wrong with it.

    ``what`` names the value in the message (e.g. ``"value for 'acme/s' key 'plan'"``), or is
    a function that does, called only when there is a message to write.
    """
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    problem = _shape_problem(value)
    if problem is None:
        try:
            text = dumps(value)
        except (TypeError, ValueError, RecursionError) as exc:
            problem = f"is not JSON-serializable: {exc}"
    if problem is None:
        try:
            text.encode("utf-8")
            return text
        except UnicodeEncodeError:
            problem = "contains invalid Unicode (a lone surrogate)"
    raise InvalidInput(f"{what if isinstance(what, str) else what()} {problem}")


def encode_value(namespace: Namespace, key: str, value: object, limit: int) -> str:
    """Validate and encode a value, enforcing the size cap before anything is written."""
    text = to_json(value, lambda: f"value for {'/'.join(namespace)!r} key {key!r}")
    # Characters are at most 4 bytes of UTF-8: most values need no count.
    size = len(text) if text.isascii() else len(text.encode("utf-8"))
    if size > limit:
        raise ValueTooLarge(namespace, key, size, limit)
    return text


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


class Commit:
    """Collects one step's writes; see the module docstring. Create with `MemoryStore.commit`.

    After a clean exit, `seq`, `replayed`, `result` and `writes` describe the applied commit.
    `replayed` is already known on entry: when True, the key was committed before, `result`
    holds the stored result, and writes made in the body are ignored.
    """

    def __init__(
        self, store: MemoryStore, key: str, provenance: Provenance, *, check_replay: bool = True
    ) -> None:
        self._store = store
        self._check_replay = check_replay
        self.key = key
        self.provenance = provenance
        self.ops: list[Op] = []
        self.result: JsonValue = None
        self.seq: int | None = None
        self.replayed = False
        self.writes: tuple[MemoryRef, ...] = ()
        self._applied: Applied | None = None

    async def __aenter__(self) -> Commit:
        # A generated key (``adhoc:<uuid4>``) cannot have been applied yet, so looking it up
        # would cost a transaction for nothing; the claim's ON CONFLICT still guards the write.
        if self._check_replay:
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
        if exc_type is not None:
            return
        if self._applied is not None and self._applied.replayed:
            # The body may have assigned `result`; a replay reports the stored one.
            self._done(self._applied)
            return
        result = self.result
        encoded = "null" if result is None else to_json(result, f"result of commit {self.key!r}")
        size = len(encoded.encode("utf-8"))
        if size > MAX_RESULT_BYTES:
            raise ValueTooLarge(("commit",), self.key, size, MAX_RESULT_BYTES)
        ops = sorted(self.ops, key=lambda op: op.order)
        self._done(await self._store._apply(self.key, self.provenance, ops, encoded))

    def _done(self, applied: Applied) -> None:
        self._applied = applied
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
        check_expected_version(expected_version)
        if merge not in ("replace", "append") and not callable(merge):
            raise InvalidInput(f"merge must be 'replace', 'append' or a function, got {merge!r}")
        ttl = check_ttl(ttl)
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
        check_key(key)
        self._add(Op("delete", ns, key, expected_version=check_expected_version(expected_version)))

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
    """Decode stored JSON (None stays None).

    pydantic-core's parser reads it three times faster than the standard library, big
    integers included (orjson would turn those into floats); what it refuses (a lone
    surrogate escape) the standard library reads.
    """
    if text is None:
        return None
    try:
        return from_json(text)
    except ValueError:
        return json.loads(text)
