"""The README's examples run as written, by the `cairn` command, against a real dev server.

Model providers are replaced by a local server speaking their wire formats; everything else
(Temporal, the store, the command) is the real thing.
"""

from __future__ import annotations

import re
import shlex
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from activities.llm import ProviderSettings
from cairn.devserver import free_port
from cairn.runtime import Settings, build_worker, connect
from memory import MemoryStore
from tests.activities.fake_providers import FakeProvider, anthropic_message, openai_completion
from tests.cli.conftest import cairn, clean_env, start

README = (Path(__file__).parents[1] / "README.md").read_text()


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, re.S)


def block_after(marker: str, lang: str) -> str:
    """The first ``lang`` block after ``marker`` in the README."""
    rest = README[README.index(marker) :]
    found = re.search(rf"```{lang}\n(.*?)```", rest, re.S)
    assert found, marker
    return found[1]


def block_with(text: str, lang: str) -> str:
    """The ``lang`` block that contains ``text``."""
    found = [block for block in blocks(lang) if text in block]
    assert len(found) == 1, (text, len(found))
    return found[0]


def commands(block: str) -> list[list[str]]:
    """The command lines of a ``sh`` block, without comments, as argument lists."""
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]


@dataclass
class Place:
    """A worker's task queue, store and providers for the commands of one example."""

    env: dict[str, str]
    cwd: Path


@pytest.fixture
async def providers() -> AsyncIterator[tuple[FakeProvider, FakeProvider]]:
    openai, anthropic = FakeProvider(), FakeProvider()
    yield openai, anthropic
    openai.close()
    anthropic.close()


@pytest.fixture
async def place(
    temporal_env: WorkflowEnvironment,
    tmp_path: Path,
    providers: tuple[FakeProvider, FakeProvider],
) -> AsyncIterator[Place]:
    """A worker (OpenAI at the fake provider) and the environment the commands run in."""
    address = temporal_env.client.service_client.config.target_host
    settings = Settings(
        temporal={"target_host": address},
        task_queue=f"readme-{uuid.uuid4().hex[:8]}",
        memory_url=f"sqlite:///{tmp_path / 'memory.db'}",
        providers=ProviderSettings(
            openai_api_key=SecretStr("k"), openai_base_url=f"{providers[0].url}/v1"
        ),
    )
    client = await connect(settings)
    store = await MemoryStore.open(settings.memory_url)
    env = clean_env(
        TEMPORAL_ADDRESS=address,
        CAIRN_TASK_QUEUE=settings.task_queue,
        CAIRN_MEMORY_URL=settings.memory_url,
    )
    try:
        async with build_worker(client, store, settings):
            yield Place(env, tmp_path)
    finally:
        await store.close()


async def test_the_json_team_runs_and_its_approval_is_answered_from_the_command_line(
    place: Place, providers: tuple[FakeProvider, FakeProvider]
) -> None:
    for _ in range(6):
        providers[0].reply(200, openai_completion("Prices rose 5%.\nVERDICT: approve"))
    (place.cwd / "team.json").write_text(block_after("Save this as `team.json`", "json"))
    run, approve = commands(block_with("cairn run chain --input @team.json", "sh"))
    assert run[:2] == ["cairn", "run"] and approve[:2] == ["cairn", "approve"]
    workflow_id = f"brief-{uuid.uuid4().hex[:6]}"  # the README's brief-1, once per test run
    run = [workflow_id if arg == "brief-1" else arg for arg in run]
    running = await start(*run[1:], env=place.env, cwd=place.cwd)
    waiting = await running.wait_for_line("waiting for approval 'publish'")
    assert f"`cairn approve {workflow_id} publish`" in waiting
    approve = [workflow_id if arg == "brief-1" else arg for arg in approve]
    decided = await cairn(*approve[1:], env=place.env, cwd=place.cwd)
    assert decided.code == 0, decided.err
    code, out, err = await running.stop(0)
    assert code == 0, err
    assert f"{workflow_id}: completed" in out
    assert "approval 'publish': approved by" in out
    assert "edited by" in out and "editor (v2): Prices rise 5% in May" in out


async def test_the_python_workflow_runs_as_a_user_package_under_cairn_dev(
    temporal_env: WorkflowEnvironment,
    tmp_path: Path,
    providers: tuple[FakeProvider, FakeProvider],
) -> None:
    openai, anthropic = providers
    for draft in ("old pond / frog leaps in", "old pond / a frog leaps / the splash"):
        openai.reply(200, openai_completion(draft))
    for review in ("Too long.\nVERDICT: revise", "Lovely.\nVERDICT: approve"):
        anthropic.reply(200, anthropic_message(review))
    package = tmp_path / "myteam"
    package.mkdir()
    source = blocks("python")[0] + "\n\nworkflows = [HaikuWorkflow]\n"
    (package / "__init__.py").write_text(source)
    dev_line, run_line = commands(block_with("CAIRN_EXTENSIONS=myteam cairn dev", "sh"))
    assert dev_line == ["CAIRN_EXTENSIONS=myteam", "cairn", "dev"]
    env = clean_env(
        TEMPORAL_ADDRESS=temporal_env.client.service_client.config.target_host,
        CAIRN_TASK_QUEUE=f"haiku-{uuid.uuid4().hex[:8]}",
        CAIRN_EXTENSIONS="myteam",
        OPENAI_API_KEY="k",
        OPENAI_BASE_URL=f"{openai.url}/v1",
        ANTHROPIC_API_KEY="k",
        ANTHROPIC_BASE_URL=anthropic.url,
    )
    dev = await start(*dev_line[2:], env=env, cwd=tmp_path)
    try:
        await dev.wait_for_line("Ready.")
        done = await cairn(*run_line[1:], env=env, cwd=tmp_path)
        assert done.code == 0, done.err
        assert done.out.splitlines()[-1] == "old pond / a frog leaps / the splash"
        assert len(openai.requests) == 2 and len(anthropic.requests) == 2
    finally:
        code, _, err = await dev.stop(2)  # SIGINT, as Ctrl-C
        assert code == 0, err


async def test_the_memory_api_example_runs(tmp_path: Path) -> None:
    source = blocks("python")[1]
    assert "MemoryStore.open(" in source
    url = f"sqlite:///{tmp_path / 'memory.db'}"
    source = source.replace("sqlite:///.cairn/memory.db", url)
    body = "\n".join(f"    {line}" for line in source.splitlines())
    namespace: dict[str, object] = {}
    exec(f"async def example():\n{body}\n    return store, entry, hits\n", namespace)
    store, entry, hits = await namespace["example"]()  # type: ignore[operator]
    try:
        assert entry.value == {"steps": ["research", "write"]} and entry.version == 1  # type: ignore[attr-defined]
        assert [h.key for h in hits][:1] == ["plan"]  # type: ignore[attr-defined]
    finally:
        await store.close()  # type: ignore[attr-defined]


async def test_the_session_commands_run_and_a_new_session_recalls_the_user(place: Place) -> None:
    lines = commands(block_with('cairn session send s-1 "Hi, my name is Ada"', "sh"))
    # Names of this run's own: other tests talk to the same server's s-1.
    run = uuid.uuid4().hex[:6]
    names = {name: f"{name}-{run}" for name in ("s-1", "s-2", "u-7")}
    lines = [[names.get(arg, arg) for arg in line] for line in lines]
    outputs = []
    for line in lines:
        assert line[0] == "cairn"
        done = await cairn(*line[1:], env=place.env, cwd=place.cwd)
        assert done.code == 0, (line, done.err)
        outputs.append(done.out)
    assert "Thanks, I'll remember that" in outputs[0]
    assert "Welcome back, Ada!" in outputs[1]
    assert f"session acme/s-1-{run}: 1 turn" in outputs[2]
    assert "ended after 1 turn (ended)" in outputs[3]


def normalised(text: str) -> list[str]:
    """Demo output without what changes between runs: ids, ports, parallel steps' order."""
    text = re.sub(r"\b(\d+\.\d+\.\d+\.\d+|localhost):\d+", "HOST:PORT", text)
    text = re.sub(r"(research|support|ada|cairn-demo)-[0-9a-f]{6}", r"\1-RUN", text)
    text = re.sub(r"research-[123]\b", "research-N", text)
    text = re.sub(r"\(\d+ findings\):.*", "(N findings): ...", text)
    text = re.sub(r"commit \d+\)", "commit N)", text)
    lines = [line.rstrip() for line in text.splitlines()]
    out: list[str] = []
    in_panel = False
    for line in lines:
        if line.startswith("╭─ Final answer"):
            in_panel = True
        elif line.startswith("╰"):
            in_panel = False
            continue
        if not in_panel:
            out.append(line)
    # The three researchers run in parallel: their lines come in any order.
    steps = [i for i, line in enumerate(out) if line.startswith("  ✓ research-N")]
    if steps:
        out[steps[0] : steps[-1] + 1] = sorted(out[steps[0] : steps[-1] + 1])
    return out


async def test_the_demo_prints_what_the_readme_shows(tmp_path: Path) -> None:
    shown = block_after("`make demo` prints", "")
    assert shown.startswith("$ make demo\n")
    env = clean_env(TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}", CAIRN_UI_PORT="0")
    done = await cairn("demo", env=env, cwd=tmp_path, timeout=240)
    assert done.code == 0, done.err
    assert normalised(done.out) == normalised(shown.removeprefix("$ make demo\n"))
    again = await cairn("demo", env=env, cwd=tmp_path, timeout=240)
    assert "6 documents already there, unchanged" in again.out  # no new versions of them
    assert "acme/docs " not in again.out
