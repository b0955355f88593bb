"""Which embedder serves which namespaces, and which part of a value it embeds.

An `EmbeddingConfig` names a namespace pattern (segments, ``*`` for any one segment; like a
grant, it covers the namespaces it matches and everything beneath them), an embedder, and the
fields of a value to embed::

    EmbeddingConfig(pattern=("acme", "*", "notes"), embedder=WordLlamaEmbedder(),
                    fields=("title", "$.body.text", "$.comments[*].text"))

A field is ``$`` (the whole value), a key (``title``), or a JSON path of keys from ``$``, where
``[*]`` takes every item of a list. `extract_text` turns a value into the text to embed: strings
as they are, numbers and booleans written out, lists and objects as their parts' texts on
separate lines (object keys are not included), ``null`` and missing fields skipped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from memory.embedding.base import Embedder
from memory.errors import InvalidInput
from memory.namespace import MAX_DEPTH, Namespace, check_segment, matches

# A path step: a key of letters, digits, "_" or "-", optionally followed by [*].
_STEP = re.compile(r"([A-Za-z0-9_\-]+)(\[\*\])?")


def _parse_field(text: str) -> tuple[tuple[str, bool], ...]:
    """A field as its steps ``(key, every item)``; ``$`` is no step at all."""
    if not isinstance(text, str) or not text:
        raise InvalidInput(f"embedding field must be a non-empty string, got {text!r}")
    path = text[2:] if text.startswith("$.") else "" if text == "$" else text
    steps: list[tuple[str, bool]] = []
    for part in path.split(".") if path else []:
        match = _STEP.fullmatch(part)
        if match is None:
            raise InvalidInput(
                f"embedding field {text!r}: {part!r} is not a key (letters, digits, _ or -, "
                "optionally followed by [*])"
            )
        steps.append((match[1], match[2] is not None))
    return tuple(steps)


@dataclass(frozen=True)
class EmbeddingConfig:
    """An embedder for the namespaces matching ``pattern``, and the fields it embeds.

    Raises:
        InvalidInput: when the pattern or a field is malformed.
    """

    pattern: tuple[str, ...]
    embedder: Embedder
    fields: tuple[str, ...] = ("$",)
    _paths: tuple[tuple[tuple[str, bool], ...], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.pattern, str) or not 0 < len(self.pattern) <= MAX_DEPTH:
            raise InvalidInput(
                f"embedding pattern must be a tuple of 1-{MAX_DEPTH} segments such as "
                f"('acme', '*', 'notes'), got {self.pattern!r}"
            )
        for segment in self.pattern:
            if segment != "*":
                check_segment(segment, "embedding pattern segment")
        if isinstance(self.fields, str) or not self.fields:
            raise InvalidInput(f"embedding fields must be a non-empty tuple, got {self.fields!r}")
        object.__setattr__(self, "pattern", tuple(self.pattern))
        object.__setattr__(self, "_paths", tuple(_parse_field(f) for f in self.fields))

    def matches(self, namespace: Namespace) -> bool:
        """Whether this config covers ``namespace``."""
        return matches(self.pattern, namespace)

    def text(self, value: object) -> str | None:
        """The text of ``value`` to embed under this config; None when it has none."""
        return _extract(value, self._paths)


def select_config(
    configs: Sequence[EmbeddingConfig], namespace: Namespace
) -> EmbeddingConfig | None:
    """The most specific config covering ``namespace`` (longest pattern, then fewest ``*``)."""
    covering = [c for c in configs if c.matches(namespace)]
    if not covering:
        return None
    return max(covering, key=lambda c: (len(c.pattern), -c.pattern.count("*")))


def extract_text(value: object, fields: Sequence[str] = ("$",)) -> str | None:
    """The text to embed from a JSON ``value``, given ``fields`` (see the module docstring)."""
    if isinstance(fields, str):
        raise InvalidInput("embedding fields must be a list of strings, not one string")
    return _extract(value, [_parse_field(f) for f in fields])


def _extract(value: object, paths: Sequence[tuple[tuple[str, bool], ...]]) -> str | None:
    parts = [_text(found) for path in paths for found in _select(value, path)]
    joined = "\n".join(p for p in parts if p)
    return joined if joined.strip() else None


def _select(value: object, path: tuple[tuple[str, bool], ...]) -> list[object]:
    current = [value]
    for key, every in path:
        nxt: list[object] = []
        for node in current:
            if isinstance(node, dict) and key in node:
                child = node[key]
                if every and isinstance(child, list):
                    nxt.extend(child)
                elif not every:
                    nxt.append(child)
        current = nxt
    return current


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    if isinstance(value, list):
        return "\n".join(t for t in map(_text, value) if t)
    if isinstance(value, dict):
        return "\n".join(t for t in map(_text, value.values()) if t)
    raise InvalidInput(f"cannot embed a value of type {type(value).__name__}")
