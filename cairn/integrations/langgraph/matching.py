"""LangGraph's filter and namespace-condition semantics, applied to values read from Cairn.

Search filters compare a stored value the way LangGraph's stores do (PostgreSQL JSONB
containment): nested dicts match key by key, lists element by element, and a dict of
``$eq``/``$ne``/``$gt``/``$gte``/``$lt``/``$lte`` applies those operators. Namespace
conditions match a prefix or suffix of labels, ``"*"`` matching any one label.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langgraph.store.base import MatchCondition

_ORDER = {
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
}


def _operator(value: Any, op: str, operand: Any) -> bool:
    if op == "$eq":
        return bool(value == operand)
    if op == "$ne":
        return bool(value != operand)
    if op in _ORDER:
        try:
            return bool(_ORDER[op](float(value), float(operand)))
        except (TypeError, ValueError):
            return False
    raise ValueError(f"unsupported filter operator {op!r}: use $eq, $ne, $gt, $gte, $lt or $lte")


def value_matches(value: Any, wanted: Any) -> bool:
    """Whether a stored ``value`` satisfies the filter value ``wanted``."""
    if isinstance(wanted, Mapping):
        if any(isinstance(k, str) and k.startswith("$") for k in wanted):
            return all(_operator(value, op, operand) for op, operand in wanted.items())
        return isinstance(value, Mapping) and all(
            value_matches(value.get(k), v) for k, v in wanted.items()
        )
    if isinstance(wanted, (list, tuple)):
        return (
            isinstance(value, (list, tuple))
            and len(value) == len(wanted)
            and all(value_matches(a, b) for a, b in zip(value, wanted, strict=True))
        )
    return bool(value == wanted)


def filter_matches(value: Mapping[str, Any], filter: Mapping[str, Any] | None) -> bool:
    """Whether an item's value passes a search ``filter`` (None or empty passes all)."""
    return not filter or all(value_matches(value.get(k), v) for k, v in filter.items())


def namespace_matches(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    """Whether ``namespace`` meets one ``list_namespaces`` condition."""
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    if condition.match_type == "prefix":
        pairs = zip(namespace, path, strict=False)
    elif condition.match_type == "suffix":
        pairs = zip(reversed(namespace), reversed(path), strict=False)
    else:
        raise ValueError(f"unsupported match type {condition.match_type!r}: use prefix or suffix")
    return all(p == "*" or n == p for n, p in pairs)


def literal_prefix(conditions: tuple[MatchCondition, ...] | None) -> tuple[str, ...]:
    """The longest wildcard-free leading labels that every match must start with."""
    best: tuple[str, ...] = ()
    for condition in conditions or ():
        if condition.match_type != "prefix":
            continue
        labels: list[str] = []
        for label in condition.path:
            if label == "*":
                break
            labels.append(label)
        if len(labels) > len(best):
            best = tuple(labels)
    return best
