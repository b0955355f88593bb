"""Validation of namespaces, keys, stream names and tags, and their storage encoding.

A namespace is a tuple of segments, tenant first. It is stored as the segments joined by ``/``
(a character no segment may contain), so a namespace prefix is a contiguous range of that
column under byte-order collation and prefix queries never need ``LIKE`` or escaping.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from memory.errors import InvalidInput

Namespace = tuple[str, ...]

MAX_DEPTH = 8
MAX_SEGMENT = 64
MAX_KEY = 512
MAX_COMMIT_KEY = 2000
MAX_TAGS = 16

_SEGMENT_RE = rf"(?!\.+(?:/|$))[A-Za-z0-9._:\-]{{1,{MAX_SEGMENT}}}"
_SEGMENT = re.compile(_SEGMENT_RE)
_SEP = "/"
# A whole namespace, its segments joined by "/": one match validates all of them at once.
_NAMESPACE = re.compile(rf"{_SEGMENT_RE}(?:/{_SEGMENT_RE}){{0,{MAX_DEPTH - 1}}}")
# C0 and C1 control characters and DEL.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
# The character right after "/" in byte order: every namespace under "a/b" sorts in
# ["a/b/", "a/b0").
_SEP_NEXT = chr(ord(_SEP) + 1)


def check_segment(segment: object, what: str = "namespace segment") -> str:
    """Return ``segment`` if it is a valid segment, else raise `InvalidInput` naming it."""
    if not isinstance(segment, str):
        raise InvalidInput(f"{what} must be a string, got {type(segment).__name__}")
    if not _SEGMENT.fullmatch(segment):
        raise InvalidInput(
            f"invalid {what} {segment[:80]!r}: use 1-{MAX_SEGMENT} letters, digits or ._:- "
            "(and not only dots)"
        )
    return segment


def check_namespace(namespace: object, *, allow_empty: bool = False) -> Namespace:
    """Validate a namespace tuple (tenant first) and return it as a tuple.

    Raises:
        InvalidInput: naming the offending segment, when the namespace is not a tuple or list of
            valid segments, or is empty or deeper than `MAX_DEPTH`.
    """
    if type(namespace) is tuple and namespace:
        # The common case, checked in one regex match (and no segment may hold the "/" that
        # joins them); the checks below name what is wrong.
        try:
            joined = _SEP.join(namespace)
        except TypeError:
            joined = ""
        if joined.count(_SEP) == len(namespace) - 1 and _NAMESPACE.fullmatch(joined):
            return namespace
    if isinstance(namespace, str) or not isinstance(namespace, (tuple, list)):
        raise InvalidInput(
            f"namespace must be a tuple of strings such as ('acme', 'session', 's-42'), "
            f"got {type(namespace).__name__}"
        )
    if not namespace and not allow_empty:
        raise InvalidInput("namespace must have at least one segment (the tenant)")
    if len(namespace) > MAX_DEPTH:
        raise InvalidInput(f"namespace is {len(namespace)} segments deep; the limit is {MAX_DEPTH}")
    return tuple(check_segment(s) for s in namespace)


def check_key(
    key: object, what: str = "key", *, max_length: int = MAX_KEY, max_bytes: int | None = None
) -> str:
    """Validate an entry key: 1-512 characters of valid Unicode, no control characters.

    With ``max_bytes``, its UTF-8 encoding must also fit in that many bytes.
    """
    if not isinstance(key, str):
        raise InvalidInput(f"{what} must be a string, got {type(key).__name__}")
    if not 0 < len(key) <= max_length:
        raise InvalidInput(f"{what} must be 1-{max_length} characters, got {len(key)}")
    if _CONTROL.search(key):
        raise InvalidInput(f"{what} {key[:80]!r} contains a control character")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidInput(f"{what} {key[:80]!r} is not valid Unicode") from None
    if max_bytes is not None and size > max_bytes:
        raise InvalidInput(f"{what} is {size} bytes of UTF-8; the limit is {max_bytes}")
    return key


def check_commit_key(key: object) -> str:
    """Validate a commit's idempotency key: like an entry key, but up to 2,000 characters.

    It must also fit in 2,000 bytes of UTF-8: enough for keys built from Temporal workflow and
    activity ids, and small enough for a PostgreSQL btree index entry.
    """
    return check_key(key, "commit key", max_length=MAX_COMMIT_KEY, max_bytes=MAX_COMMIT_KEY)


def check_tags(tags: Sequence[str] | None) -> tuple[str, ...]:
    """Validate tags (each like a namespace segment), returning them sorted and unique."""
    if tags is None:
        return ()
    if isinstance(tags, str):
        raise InvalidInput("tags must be a list of strings, not one string")
    if len(tags) > MAX_TAGS:
        raise InvalidInput(f"{len(tags)} tags given; the limit is {MAX_TAGS}")
    return tuple(sorted({check_segment(t, "tag") for t in tags}))


def encode(namespace: Namespace) -> str:
    """Storage form of a validated namespace."""
    return _SEP.join(namespace)


def decode(stored: str) -> Namespace:
    """Namespace tuple from its storage form."""
    return tuple(stored.split(_SEP))


def prefix_bounds(prefix: Namespace) -> tuple[str, str, str]:
    """``(exact, low, high)`` bounds of the namespaces at or under ``prefix``.

    A namespace is under ``prefix`` iff it equals ``exact`` or lies in ``[low, high)``.
    """
    exact = encode(prefix)
    return exact, exact + _SEP, exact + _SEP_NEXT


def parse(text: str) -> Namespace:
    """Parse the command-line form ``acme/session/s-42`` into a validated namespace."""
    return check_namespace(tuple(s for s in text.strip().strip(_SEP).split(_SEP)))


def matches(pattern: Sequence[str], namespace: Namespace) -> bool:
    """Whether ``pattern`` covers ``namespace`` (it matches the namespace or an ancestor).

    A pattern is segments, ``*`` for any one segment: access grants and embedding configs.
    """
    return len(namespace) >= len(pattern) and all(
        p in ("*", n) for p, n in zip(pattern, namespace, strict=False)
    )


# The longest search query accepted (characters); context assembly cuts a longer task to it.
MAX_QUERY_CHARS = 16_000
