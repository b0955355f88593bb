"""Values: the checks a value passes before it is written, its JSON encoding, and merge policies.

Pure functions over JSON values; nothing here touches the database, so the write side
(`memory.commit`, `memory.writer`) and the read side (`memory.reader`) share one codec.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, Literal

from pydantic import BaseModel, JsonValue
from pydantic_core import from_json

from memory.errors import InvalidInput, ValueTooLarge
from memory.namespace import Namespace

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


def encode_result(key: str, result: object) -> str:
    """Validate and encode a commit's result, enforcing `MAX_RESULT_BYTES`."""
    encoded = "null" if result is None else to_json(result, f"result of commit {key!r}")
    size = len(encoded.encode("utf-8"))
    if size > MAX_RESULT_BYTES:
        raise ValueTooLarge(("commit",), key, size, MAX_RESULT_BYTES)
    return encoded


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
