"""Errors raised by the memory layer.

Every error the store raises derives from one base class, and each formats its own message::

    MemoryStoreError
    ├── InvalidInput (also a ValueError)      bad namespace, key, value, tag or argument
    │   └── ValueTooLarge                     a value over the store's size cap
    ├── ConflictError                         expected_version did not match; nothing applied
    ├── AccessDenied                          a scoped handle reached outside its grants
    ├── NotFound (also a KeyError)            no such entry, commit or namespace
    ├── StoreMismatch                         a workflow's step met another store than its first
    └── StoreUnavailable                      the database could not be reached; safe to retry

`StoreUnavailable` is the only transient error: callers (Temporal activities) retry it. The others
are caller mistakes and retrying them changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence


def _ns(namespace: Sequence[str]) -> str:
    return "/".join(namespace)


class MemoryStoreError(Exception):
    """Base class of every error raised by the memory layer."""


class InvalidInput(MemoryStoreError, ValueError):
    """An argument was malformed: nothing was read or written."""


class ValueTooLarge(InvalidInput):
    """A value's JSON encoding exceeds the store's size cap."""

    def __init__(self, namespace: Sequence[str], key: str, size: int, limit: int) -> None:
        self.namespace = tuple(namespace)
        self.key = key
        self.size = size
        self.limit = limit
        super().__init__(
            f"value for {_ns(namespace)!r} key {key!r} is {size} bytes; the limit is {limit} bytes"
        )


class ConflictError(MemoryStoreError):
    """A compare-and-set write found another version than it expected."""

    def __init__(
        self, namespace: Sequence[str], key: str, expected: int, actual: int | None
    ) -> None:
        self.namespace = tuple(namespace)
        self.key = key
        self.expected = expected
        self.actual = actual
        current = "no entry" if not actual else f"version {actual}"
        super().__init__(
            f"conflict on {_ns(namespace)!r} key {key!r}: expected version {expected}, "
            f"found {current}; nothing in this commit was applied"
        )


class AccessDenied(MemoryStoreError):
    """A principal tried an action its grants do not allow."""

    def __init__(self, principal: str, namespace: Sequence[str], action: str) -> None:
        self.principal = principal
        self.namespace = tuple(namespace)
        self.action = action
        super().__init__(f"{principal!r} may not {action} {_ns(namespace)!r}")


class NotFound(MemoryStoreError, KeyError):
    """The entry, commit or namespace asked for does not exist (or has expired)."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(what)

    def __str__(self) -> str:
        return f"not found: {self.what}"


class StoreMismatch(MemoryStoreError):
    """A workflow that began on one memory store ran a step on a worker with another.

    ``expected`` and ``actual`` are the two stores (`memory.records.StoreIdentity`, or any
    object whose text names a store without credentials).
    """

    def __init__(self, expected: object, actual: object) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"this workflow began on memory store {expected}, but this worker's memory store is "
            f"{actual}: workers of one task queue must share one memory store "
            "(check CAIRN_MEMORY_URL on every worker)"
        )


class StoreUnavailable(MemoryStoreError):
    """The database could not be reached or timed out; the operation may be retried."""
