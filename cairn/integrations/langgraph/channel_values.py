"""How `CairnSaver` stores a channel value: LangGraph's serializer, and lists as deltas.

A value is serialized with the saver's serde to ``[type, base64]``. A blob (one channel at
one version) is ``{"t": "empty"}`` for an absent channel, ``{"t": <type>, "b": <base64>}``
for any value but a list, and for a list ``{"t": "list", "items": [...]}`` (each item
serialized on its own) or, when the list extends a stored version, ``{"t": "list", "base":
<version>, "n": <items kept from the base>, "items": [<the new items>]}``.
"""

from __future__ import annotations

import base64
import collections
from typing import Any

from langgraph.checkpoint.serde.base import SerializerProtocol

Blob = dict[str, Any]
Items = list[list[str]]
"""A list value's items, each serialized as ``[type, base64]``."""

EMPTY: Blob = {"t": "empty"}


def serialize(serde: SerializerProtocol, value: Any) -> list[str]:
    """``[type, base64 of the bytes]`` of one value."""
    kind, data = serde.dumps_typed(value)
    return [kind, base64.b64encode(data).decode("ascii")]


def deserialize(serde: SerializerProtocol, pair: list[str]) -> Any:
    """The value `serialize` made ``pair`` from."""
    kind, b64 = pair
    return serde.loads_typed((kind, base64.b64decode(b64)))


def plain(serde: SerializerProtocol, value: Any) -> Blob:
    """The blob of a value stored whole."""
    kind, b64 = serialize(serde, value)
    return {"t": kind, "b": b64}


def extends(items: Items, base: Items) -> bool:
    """Whether ``items`` starts with every item of a non-empty ``base``."""
    return 0 < len(base) <= len(items) and items[: len(base)] == base


def whole_list(items: Items) -> Blob:
    """The blob of a list stored whole."""
    return {"t": "list", "items": items}


def list_delta(items: Items, base_version: str, base: Items) -> Blob:
    """The blob of a list that `extends` the list stored as ``base_version``."""
    return {"t": "list", "base": base_version, "n": len(base), "items": items[len(base) :]}


def base_of(blob: Blob) -> str | None:
    """The version a delta blob builds on; None for a blob that stands alone."""
    return str(blob["base"]) if blob["t"] == "list" and "base" in blob else None


def rebuild(chain: list[Blob]) -> Items:
    """A list's items from its delta chain: newest blob first, a standalone list last."""
    items: Items = []
    for blob in reversed(chain):
        items = items[: blob.get("n", 0)] + list(blob["items"])
    return items


class ListCache:
    """The latest known items of each list channel, by (thread, checkpoint ns, channel).

    They are the base a new version's delta is taken against, and where reading a delta
    chain can stop. Bounded: the least recently used channels are dropped.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._known: collections.OrderedDict[tuple[str, str, str], tuple[str, Items]] = (
            collections.OrderedDict()
        )

    def get(self, key: tuple[str, str, str]) -> tuple[str, Items] | None:
        """``(version, items)`` last seen for a channel."""
        return self._known.get(key)

    def remember(self, key: tuple[str, str, str], version: str, items: Items) -> None:
        """Record a channel's items at ``version``."""
        self._known.pop(key, None)
        self._known[key] = (version, items)
        while len(self._known) > self._size:
            self._known.popitem(last=False)

    def forget_thread(self, thread_id: str) -> None:
        """Drop every channel of a thread (deleted or pruned)."""
        for key in [k for k in self._known if k[0] == thread_id]:
            del self._known[key]
