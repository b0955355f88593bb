"""`cairn.runtime.load_extensions`: what a ``CAIRN_EXTENSIONS`` module may hand the worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from activities import AgentActivities, AgentRegistry
from cairn.runtime import Settings, load_extensions
from tests.activities.fault_points import FaultyAgentActivities


def extension(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, body: str) -> str:
    (tmp_path / f"{name}.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_without_extensions_steps_run_on_agent_activities() -> None:
    loaded = load_extensions(Settings(), AgentRegistry())
    assert loaded.agent_activities is AgentActivities
    assert loaded.workflows == ()


def test_an_extension_module_provides_the_agent_activities_class() -> None:
    loaded = load_extensions(
        Settings(extensions=("tests.activities.fault_points",)), AgentRegistry()
    )
    assert issubclass(loaded.agent_activities, FaultyAgentActivities)


def test_agent_activities_that_is_not_a_subclass_is_refused_by_module_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = extension(tmp_path, monkeypatch, "ext_not_a_subclass", "agent_activities = object\n")
    with pytest.raises(ValueError, match=r"ext_not_a_subclass\.agent_activities must be"):
        load_extensions(Settings(extensions=(name,)), AgentRegistry())


def test_two_modules_defining_agent_activities_are_refused_naming_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = extension(
        tmp_path,
        monkeypatch,
        "ext_second_activities",
        "from activities import AgentActivities\n"
        "class Mine(AgentActivities):\n    pass\n"
        "agent_activities = Mine\n",
    )
    settings = Settings(extensions=("tests.activities.fault_points", other))
    with pytest.raises(ValueError, match=r"both tests\.activities\.fault_points and ext_second"):
        load_extensions(settings, AgentRegistry())


def test_an_unknown_fault_point_is_named() -> None:
    from tests.activities.fault_points import with_faults

    with pytest.raises(ValueError, match="crash_sometime"):
        with_faults({"crash_sometime"})
