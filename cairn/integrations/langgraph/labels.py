"""The reversible mapping between LangGraph namespace labels and Cairn namespace segments.

LangGraph labels are arbitrary non-empty strings (without ``.``); Cairn segments are 1-64
letters, digits or ``._:-``. A label keeps its letters, digits, ``_``, ``:`` and ``-``; every
other character becomes ``.`` followed by the two upper-case hex digits of each byte of its
UTF-8 encoding (``"a b"`` -> ``"a.20b"``, ``"é"`` -> ``".C3.A9"``). ``.`` is the escape
because LangGraph forbids it in labels, so the mapping is one to one and decoding is exact.
An encoded label longer than 64 characters is a `LabelError`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from memory.namespace import MAX_DEPTH, MAX_SEGMENT, Namespace, check_namespace

_PLAIN = re.compile(r"[A-Za-z0-9_:\-]")
_ESCAPED = re.compile(r"(?:\.[0-9A-F]{2})+")


class LabelError(ValueError):
    """A LangGraph namespace label or namespace that Cairn cannot hold, saying why."""


def encode_label(label: str) -> str:
    """The Cairn segment for one LangGraph label."""
    if not isinstance(label, str) or not label:
        raise LabelError(f"namespace labels must be non-empty strings, got {label!r}")
    out = "".join(
        ch if _PLAIN.fullmatch(ch) else "".join(f".{b:02X}" for b in ch.encode("utf-8"))
        for ch in label
    )
    if len(out) > MAX_SEGMENT:
        raise LabelError(
            f"namespace label {label[:40]!r} encodes to {len(out)} characters; Cairn's limit "
            f"is {MAX_SEGMENT} (letters, digits, '_', ':' and '-' count 1, others 3 per byte)"
        )
    return out


def decode_label(segment: str) -> str:
    """The LangGraph label a Cairn segment encodes."""
    return _ESCAPED.sub(
        lambda m: bytes.fromhex(m.group(0).replace(".", "")).decode("utf-8"), segment
    )


class LabelMap:
    """Maps LangGraph namespaces under a Cairn ``root`` namespace (tenant first) and back."""

    def __init__(self, root: Sequence[str]) -> None:
        self.root: Namespace = check_namespace(tuple(root))
        self.max_depth = MAX_DEPTH - len(self.root)
        if self.max_depth < 1:
            raise LabelError(f"root namespace {self.root!r} leaves no room for LangGraph labels")

    def to_cairn(self, namespace: Sequence[str]) -> Namespace:
        """The Cairn namespace holding LangGraph ``namespace`` (which may be a prefix, or empty)."""
        if len(namespace) > self.max_depth:
            raise LabelError(
                f"namespace {tuple(namespace)!r} is {len(namespace)} labels deep; under root "
                f"{self.root!r} the limit is {self.max_depth}"
            )
        return self.root + tuple(encode_label(label) for label in namespace)

    def to_langgraph(self, namespace: Sequence[str]) -> tuple[str, ...]:
        """The LangGraph namespace of a Cairn namespace under the root."""
        return tuple(decode_label(s) for s in namespace[len(self.root) :])
