"""The history checker itself: it must catch each kind of problem it is there to catch."""

from __future__ import annotations

import pytest

from tests.fault.checker import History

pytestmark = pytest.mark.fault


def history() -> History:
    h = History()
    h.record("ok", "ok")
    h.record("failed", "failed")
    h.record("unknown", "unknown")
    return h


def test_a_consistent_history_passes() -> None:
    history().check(["ok"])
    history().check(["ok", "unknown"])
    h = history()
    h.read("ok")
    h.read("unknown")
    h.read(None)
    h.check(["ok", "unknown"])


@pytest.mark.parametrize(
    ("present", "read", "problem"),
    [
        ([], None, "'ok' succeeded but is present 0 times"),
        (["ok", "ok"], None, "'ok' succeeded but is present 2 times"),
        (["ok", "failed"], None, "'failed' failed but is present 1 times"),
        (["ok", "unknown", "unknown"], None, "'unknown' (outcome unknown) is present 2 times"),
        (["ok", "ghost"], None, "'ghost' is present but was never attempted"),
        (["ok"], "failed", "a read saw 'failed', which no operation wrote"),
        (["ok"], "ghost", "a read saw 'ghost', which no operation wrote"),
    ],
)
def test_each_kind_of_problem_is_caught(present: list[str], read: str | None, problem: str) -> None:
    h = history()
    if read is not None:
        h.read(read)
    assert h.problems(present) == [problem]
    with pytest.raises(AssertionError, match="1 history problems"):
        h.check(present)


def test_an_operation_is_recorded_once() -> None:
    with pytest.raises(ValueError, match="recorded twice"):
        history().record("ok", "failed")
