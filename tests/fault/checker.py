"""A small history checker: did a fault lose, duplicate or invent anything?

A test records each operation it attempted under a unique id, with what the caller saw:

- ``ok``: the call returned success, so the operation must be present exactly once;
- ``failed``: the call raised an error that guarantees nothing was applied, so it is absent;
- ``unknown``: the call's outcome was not seen (a timeout, a dropped connection), so it is
  present at most once.

Reads record the values they saw. `History.check` then compares all of it with what is
actually stored (a list of operation ids, duplicates included): nothing unexpected may be
present, and no read may have seen a value that no operation wrote.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Literal

Outcome = Literal["ok", "failed", "unknown"]


@dataclass
class History:
    """Operations attempted and values read during a test."""

    outcomes: dict[Hashable, Outcome] = field(default_factory=dict)
    reads: list[Hashable] = field(default_factory=list)

    def record(self, op: Hashable, outcome: Outcome) -> None:
        """Record the outcome the caller saw of operation ``op`` (ids are unique)."""
        if op in self.outcomes:
            raise ValueError(f"operation {op!r} recorded twice")
        self.outcomes[op] = outcome

    def read(self, value: Hashable) -> None:
        """Record that a read saw ``value`` (an operation id, or ``None`` for nothing)."""
        self.reads.append(value)

    def problems(self, present: Iterable[Hashable]) -> list[str]:
        """Everything wrong with ``present`` (stored operation ids, duplicates included)."""
        seen = Counter(present)
        out: list[str] = []
        for op, outcome in self.outcomes.items():
            n = seen.get(op, 0)
            if outcome == "ok" and n != 1:
                out.append(f"{op!r} succeeded but is present {n} times")
            elif outcome == "failed" and n:
                out.append(f"{op!r} failed but is present {n} times")
            elif outcome == "unknown" and n > 1:
                out.append(f"{op!r} (outcome unknown) is present {n} times")
        out += [f"{op!r} is present but was never attempted" for op in seen if op not in self]
        written = {op for op, outcome in self.outcomes.items() if outcome != "failed"}
        out += [
            f"a read saw {v!r}, which no operation wrote"
            for v in dict.fromkeys(self.reads)
            if v is not None and v not in written
        ]
        return out

    def check(self, present: Iterable[Hashable]) -> None:
        """Raise `AssertionError` listing every problem `problems` finds."""
        found = self.problems(present)
        if found:
            shown = "\n  ".join(found[:20])
            raise AssertionError(f"{len(found)} history problems:\n  {shown}")

    def count(self, outcome: Outcome) -> int:
        """How many operations ended with ``outcome``."""
        return sum(1 for o in self.outcomes.values() if o == outcome)

    def __contains__(self, op: object) -> bool:
        return op in self.outcomes
